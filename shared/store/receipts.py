"""Read queries of the receipts view: recent runs, a page of leads, and their actions.

Paths come from shared/store/runs.py; field names from docs/data-model.md. Every
function here is exactly one Firestore round trip, and each one adds itself to
the active `counting()` tallies, so the service can log, and a test or the
benchmark can check, how many queries a page cost.

The composite indexes these queries need are in firestore.indexes.json;
tests/unit/test_receipts_indexes.py builds each query below and fails if its
index is missing from that file (the emulator does not enforce indexes).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from google.cloud.firestore_v1.base_query import BaseQuery, FieldFilter

from shared.store import runs as paths
from shared.store.client import newest_first, read_args

if TYPE_CHECKING:
    from google.cloud import firestore

# Firestore allows at most 30 values in an `in` filter.
IN_LIMIT = 30


# --- counting -------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    queries: int = 0
    documents: int = 0


_tallies: contextvars.ContextVar[tuple[Tally, ...]] = contextvars.ContextVar("receipt_tallies", default=())


@contextlib.contextmanager
def counting() -> Iterator[Tally]:
    """Counts the round trips (and documents read) made by this module inside the block.

    Blocks nest: the service counts one request while a benchmark counts a whole read.
    """
    tally = Tally()
    reset = _tallies.set(_tallies.get() + (tally,))
    try:
        yield tally
    finally:
        _tallies.reset(reset)


def _counted(documents: int) -> None:
    for tally in _tallies.get():
        tally.queries += 1
        tally.documents += documents


# --- query builders (also used by the index test) --------------------------------


def runs_query(db: "firestore.Client", limit: int, after: tuple[dt.datetime, str] | None) -> BaseQuery:
    return newest_first(paths.runs(db), after).limit(limit)


def leads_query(
    db: "firestore.Client", run_id: str, limit: int, after: tuple[int, str] | None, status: str | None
) -> BaseQuery:
    """Leads in processing order, optionally only those in one status."""
    query: Any = paths.leads(db, run_id)
    if status is not None:
        query = query.where(filter=FieldFilter("status", "==", status))
    query = query.order_by("index").order_by("__name__")
    if after is not None:
        query = query.start_after({"index": after[0], "__name__": paths.lead_ref(db, run_id, after[1])})
    return query.limit(limit)


def actions_query(
    db: "firestore.Client", run_id: str, *, first: int | None = None, last: int | None = None,
    indexes: Sequence[int] | None = None,
) -> BaseQuery:
    """One collection-group query for the actions of many leads of a run.

    Either a contiguous range of lead indexes (`first`..`last`), or up to IN_LIMIT
    named ones (`indexes`), for a filtered page whose leads are far apart.
    """
    query = db.collection_group(paths.ACTIONS).where(filter=FieldFilter("runId", "==", run_id))
    if indexes is not None:
        if not 0 < len(indexes) <= IN_LIMIT:
            raise ValueError(f"between 1 and {IN_LIMIT} lead indexes, not {len(indexes)}")
        return query.where(filter=FieldFilter("leadIndex", "in", list(indexes)))
    if first is None or last is None:
        raise ValueError("name a range (first, last) or a list of indexes")
    return query.where(filter=FieldFilter("leadIndex", ">=", first)).where(
        filter=FieldFilter("leadIndex", "<=", last)
    )


# --- reads: one round trip each ---------------------------------------------------


def get_run_and_job(db: "firestore.Client", run_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The run document and its job document in one batched get."""
    run, job = paths.get_run_and_job(db, run_id)
    _counted((run is not None) + (job is not None))
    return run, job


def list_runs(db: "firestore.Client", limit: int, after: tuple[dt.datetime, str] | None) -> list[dict[str, Any]]:
    docs = [paths.as_dict(s) for s in runs_query(db, limit, after).stream(**read_args())]
    _counted(len(docs))
    return docs


def list_leads(
    db: "firestore.Client", run_id: str, limit: int, after: tuple[int, str] | None, status: str | None
) -> list[dict[str, Any]]:
    docs = [paths.as_dict(s) for s in leads_query(db, run_id, limit, after, status).stream(**read_args())]
    _counted(len(docs))
    return docs


def list_actions(
    db: "firestore.Client", run_id: str, *, first: int | None = None, last: int | None = None,
    indexes: Sequence[int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Actions grouped by the id of the lead document they live under.

    The lead comes from each action's path, not its denormalised fields, and an
    action whose path is not under this run is dropped: a wrong `runId` written by
    a buggy writer cannot show one run's receipts in another.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for snapshot in actions_query(db, run_id, first=first, last=last, indexes=indexes).stream(**read_args()):
        count += 1
        lead_ref = snapshot.reference.parent.parent
        if lead_ref is None or lead_ref.parent.id != paths.LEADS:
            continue
        run_ref = lead_ref.parent.parent
        if run_ref is None or run_ref.id != run_id or run_ref.parent.id != paths.RUNS:
            continue
        grouped.setdefault(lead_ref.id, []).append(paths.as_dict(snapshot))
    _counted(count)
    return grouped
