"""The receipts read model: a view of what the jobs API and the worker write.

A page of receipts costs at most three Firestore queries, whatever its size:
  1. the run and its job document, in one batched get;
  2. one query for the page of leads (index order, optionally one status);
  3. one collection-group query on `actions` for all of those leads
     (`runId ==` and `leadIndex` in the page's range, or `in` the page's indexes).
An empty page skips the third, an unknown run stops after the first.

Documents are read field by field from docs/data-model.md's names, tolerating
missing or mistyped fields (a reader must not 500 because a writer left a field
out), and nothing is copied that is not named here: that is how `workerToken`
never reaches a response.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from shared import clock, ids, logs, pagination
from shared.errors import NotFound
from shared.jobs import views
from shared.jobs.models import JobSummary
from shared.jobs.views import read_counts, read_int, read_str, read_time
from shared.receipts.models import (
    Action,
    Lead,
    Receipts,
    Run,
    RunList,
)
from shared.store import receipts as repo

logger = logging.getLogger("mission_control.receipts")

RUNS_SCOPE = "lead-runs"


# --- field readers: tolerant of what a writer left out (shared/jobs/views.py) ---------

_int, _str, _time, _counts = read_int, read_str, read_time, read_counts


def _json_safe(value: Any) -> Any:
    """Free-form maps (lead fields, provider ids) as JSON: times in RFC 3339, the unknown as text."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dt.datetime):
        return clock.rfc3339(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _map(value: Any) -> dict[str, Any]:
    return _json_safe(value) if isinstance(value, dict) else {}


# --- views -------------------------------------------------------------------------


def run_view(doc: dict[str, Any]) -> Run:
    return Run(
        id=doc["id"],
        name=_str(doc.get("name")) or doc["id"],
        status=_str(doc.get("status")) or "idle",
        total_leads=_int(doc.get("totalLeads")),
        template_id=_str(doc.get("templateId"), None),
        counts=_counts(doc.get("counts")),
        created_at=_time(doc.get("createdAt")),
        updated_at=_time(doc.get("updatedAt")),
    )


def job_view(doc: dict[str, Any], now: dt.datetime, lease_seconds: float) -> JobSummary:
    """An allow-list of the job's fields (shared/jobs/views.py, shared with the jobs API)."""
    return views.summary(doc, now, lease_seconds)


def action_view(doc: dict[str, Any]) -> Action:
    return Action(
        id=doc["id"],
        type=_str(doc.get("type")),
        status=_str(doc.get("status")),
        at=_time(doc.get("at")),
        attempt=_int(doc.get("attempt"), None),
        summary=_str(doc.get("summary")),
        error=_str(doc.get("error"), None),
        provider_ids=_map(doc.get("providerIds")),
        idempotency_key=_str(doc.get("idempotencyKey"), None),
    )


def newest_first(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By `at`, newest first; undated ones last; the id keeps the order stable."""
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def key(doc: dict[str, Any]) -> tuple[dt.datetime, str]:
        at = doc.get("at")
        return (at if isinstance(at, dt.datetime) else epoch, doc["id"])

    return sorted(actions, key=key, reverse=True)


def lead_view(doc: dict[str, Any], actions: list[dict[str, Any]]) -> Lead:
    return Lead(
        id=doc["id"],
        index=_int(doc.get("index")),
        email=_str(doc.get("email")),
        first_name=_str(doc.get("firstName")),
        last_name=_str(doc.get("lastName")),
        company=_str(doc.get("company")),
        time_zone=_str(doc.get("timeZone")),
        fields=_map(doc.get("fields")),
        status=_str(doc.get("status")) or "pending",
        attempts=_int(doc.get("attempts")),
        last_error=_str(doc.get("lastError"), None),
        updated_at=_time(doc.get("updatedAt")),
        actions=[action_view(a) for a in newest_first(actions)],
    )


# --- paging ------------------------------------------------------------------------


def receipts_scope(run_id: str, status: str | None) -> str:
    """A receipts token is good for one run and one filter only."""
    return f"lead-runs/{run_id}/receipts?status={status or ''}"


def plan_actions_read(indexes: list[int]) -> tuple[int, dict[str, Any]]:
    """How many leads of a page to keep, and the one actions query that covers them.

    Unfiltered pages are contiguous indexes: one range query reads exactly their
    actions. A filtered page can be scattered (5 failed leads among 1,000); a range
    would then read every lead's actions in between, so it is answered with an `in`
    query instead, which Firestore caps at 30 values: such a page keeps its first 30
    leads and the next page token continues after them.
    """
    first, last = indexes[0], indexes[-1]
    if last - first + 1 <= 2 * len(indexes):
        return len(indexes), {"first": first, "last": last}
    kept = indexes[: repo.IN_LIMIT]
    return len(kept), {"indexes": kept}


def list_runs(db: Any, limit: int, page_token: str | None) -> RunList:
    after = pagination.decode_newest_first(page_token, RUNS_SCOPE)
    page, token = pagination.split_newest_first(repo.list_runs(db, limit + 1, after), limit, RUNS_SCOPE)
    return RunList(runs=[run_view(d) for d in page], next_page_token=token)


def read_receipts(
    db: Any, run_id: str, page_size: int, page_token: str | None, status: str | None,
    *, lease_seconds: float, now: dt.datetime | None = None,
) -> Receipts:
    ids.check_id(run_id, "runId")
    after, scope = None, receipts_scope(run_id, status)
    if page_token:
        position = pagination.decode(page_token, scope)
        index, lead_id = position.get("index"), position.get("id")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0 or not ids.is_valid_id(lead_id):
            raise pagination.bad_token()
        after = (index, lead_id)

    began = time.perf_counter()
    with repo.counting() as tally:
        run, job = repo.get_run_and_job(db, run_id)
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        docs = repo.list_leads(db, run_id, page_size + 1, after, status)
        page, more = docs[:page_size], len(docs) > page_size
        grouped: dict[str, list[dict[str, Any]]] = {}
        if page:
            keep, plan = plan_actions_read([_int(d.get("index")) for d in page])
            if keep < len(page):
                page, more = page[:keep], True
            grouped = repo.list_actions(db, run_id, **plan)

    logs.log(
        logger, logging.INFO, "receipts page read",
        runId=run_id, status=status, leads=len(page), actions=sum(len(v) for v in grouped.values()),
        firestoreQueries=tally.queries, documentsRead=tally.documents,
        elapsedMs=round((time.perf_counter() - began) * 1000, 1),
    )
    token = None
    if more:
        last = page[-1]
        token = pagination.encode(scope, {"index": _int(last.get("index")), "id": last["id"]})
    return Receipts(
        run=run_view(run),
        job=job_view(job, now or clock.now(), lease_seconds) if job is not None else None,
        leads=[lead_view(d, grouped.get(d["id"], [])) for d in page],
        next_page_token=token,
    )
