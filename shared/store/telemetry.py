"""telemetry_errors/{fingerprint}, its events, shards and folds, and telemetry_rate_limits.

The only module that knows these paths and document shapes (docs/telemetry.md).

Counting a storm of one bug. Firestore sustains about one write a second to one
document, so the group document is not written per report. Each report commits,
in ONE batch, the creation of its event and an Increment of one of SHARD_COUNT
shard documents (Google's "distributed counter"). The two are atomic: a commit
Firestore's client retries because its answer was lost finds the event already
created, so the whole batch is refused and the report is not counted twice.
The group's own `count` (and lastSeen, lastReportId, sources, lastRunId) is the
fold of its shards, written at most once a second: each whole second has one
fold, done by the report that claims it first (a `folds/{second}` document,
created once). A report claims the current second and folds at once, or else
the next second and waits for it to begin; when both are claimed it returns at
once, its count sure to be read by the next second's fold, which reads after
that second began and so after this commit. A fold is a compare-and-set of the
group, so an older fold can never overwrite a newer one.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud.firestore import ArrayUnion, Increment

from shared.store.client import commit_args, read_args, write_if_unchanged

if TYPE_CHECKING:
    from google.cloud import firestore

GROUPS = "telemetry_errors"
EVENTS = "events"
SHARDS = "shards"
FOLDS = "folds"
RATE_LIMITS = "telemetry_rate_limits"

# Ten shards take ten sustained reports a second of one bug; the per-client rate
# limit keeps one browser far below that.
SHARD_COUNT = 10

# A rate-limit window or a fold claim is useless once its second or window has
# passed; Firestore's TTL policy on `expireAt` (docs/telemetry.md) deletes it a day later.
SHORT_LIVED_TTL = dt.timedelta(days=1)

# What a fold copies from the shards onto the group.
FOLDED = ("count", "lastSeen", "lastReportId", "sources", "lastRunId")


def group_ref(db: "firestore.Client", fingerprint: str) -> "firestore.DocumentReference":
    return db.collection(GROUPS).document(fingerprint)


def event_ref(db: "firestore.Client", fingerprint: str, report_id: str) -> "firestore.DocumentReference":
    return group_ref(db, fingerprint).collection(EVENTS).document(report_id)


def shard_ref(db: "firestore.Client", fingerprint: str, shard: int | str) -> "firestore.DocumentReference":
    return group_ref(db, fingerprint).collection(SHARDS).document(str(shard))


def fold_ref(db: "firestore.Client", fingerprint: str, second: int) -> "firestore.DocumentReference":
    return group_ref(db, fingerprint).collection(FOLDS).document(str(second))


def rate_ref(db: "firestore.Client", client_key: str, window: int) -> "firestore.DocumentReference":
    return db.collection(RATE_LIMITS).document(f"{client_key}-{window}")


def record_event(
    db: "firestore.Client",
    *,
    fingerprint: str,
    report_id: str,
    event: dict[str, Any],
    group: dict[str, Any],
    received_at: dt.datetime,
) -> None:
    """Stores one report and counts it in its group, exactly once (see the module's docstring).

    `event` carries its own `expireAt`. The first report of a bug creates the group
    already folded; if two first reports race, the loser counts like any other report.
    """
    tally: dict[str, Any] = {
        "count": Increment(1),
        "lastSeen": received_at,
        "lastReportId": report_id,
        "sources": ArrayUnion([event["source"]]),
    }
    if event.get("runId"):
        tally.update(lastRunId=event["runId"], lastRunAt=received_at)
    shard = shard_ref(db, fingerprint, random.randrange(SHARD_COUNT))

    if not group_ref(db, fingerprint).get(**read_args()).exists:
        first = {
            **group,
            "count": 1,
            "firstSeen": received_at,
            "lastSeen": received_at,
            "lastReportId": report_id,
            "sources": [event["source"]],
            "lastRunId": event.get("runId"),
            "foldedAt": received_at,
        }
        if _commit_once(db, fingerprint, report_id, event, shard, tally, first):
            return
    if _commit_once(db, fingerprint, report_id, event, shard, tally, None):
        fold_soon(db, fingerprint)


def _commit_once(
    db: "firestore.Client",
    fingerprint: str,
    report_id: str,
    event: dict[str, Any],
    shard: Any,
    tally: dict[str, Any],
    new_group: dict[str, Any] | None,
) -> bool:
    """Creates the event and counts it in one commit. True when it is stored, by this
    commit or by an earlier one whose answer was lost; False when `new_group` was
    created first by another report (count this one as a later report instead)."""
    batch = db.batch()
    if new_group is not None:
        batch.create(group_ref(db, fingerprint), new_group)
    batch.create(event_ref(db, fingerprint, report_id), event)
    batch.set(shard, tally, merge=True)
    try:
        batch.commit(**commit_args())
        return True
    except gexc.AlreadyExists:
        if event_ref(db, fingerprint, report_id).get(**read_args()).exists:
            return True  # a retried commit: the first one landed, event and count together
        if new_group is None:
            raise
        return False


def fold_soon(db: "firestore.Client", fingerprint: str) -> None:
    """Makes sure a fold reads the shards after this moment, with one fold a second at most.

    Each whole second has one fold, by whoever claims it first. This second's, when
    still free, is done at once; else the next one's, waiting for that second to begin;
    when both are taken, the next second's fold reads after this moment anyway.
    """
    now = time.time()
    for second in (math.floor(now), math.floor(now) + 1):
        try:
            fold_ref(db, fingerprint, second).create(
                {"expireAt": dt.datetime.fromtimestamp(second, dt.timezone.utc) + SHORT_LIVED_TTL},
                **commit_args(),
            )
        except gexc.AlreadyExists:
            continue
        time.sleep(max(0.0, second - time.time()))
        fold(db, fingerprint)
        return


def fold(db: "firestore.Client", fingerprint: str) -> dict[str, Any]:
    """Writes the sum of the shards onto the group, unless the group already says it."""

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        shards = [s.to_dict() for s in group_ref(db, fingerprint).collection(SHARDS).stream(**read_args())]
        current = snapshot.to_dict() or {}
        if snapshot.exists and "foldedAt" not in current:
            # A group counted before shards existed: its own tally becomes one more shard,
            # created in the same commit as the fold that first includes it.
            base = {key: current.get(key) for key in FOLDED}
            base["lastRunAt"] = current.get("lastSeen") if current.get("lastRunId") else None
            batch.create(shard_ref(db, fingerprint, "base"), base)
            shards.append(base)
        summary = summarize(shards)
        if snapshot.exists and any(current.get(key) != summary[key] for key in FOLDED):
            batch.update(snapshot.reference, {**summary, "foldedAt": dt.datetime.now(dt.timezone.utc)}, option=unchanged)
        return summary

    return write_if_unchanged(db, group_ref(db, fingerprint), apply)


def summarize(shards: Any) -> dict[str, Any]:
    shards = list(shards)
    newest = max(shards, key=lambda s: s["lastSeen"], default={})
    with_run = [s for s in shards if s.get("lastRunAt")]
    newest_run = max(with_run, key=lambda s: s["lastRunAt"], default={})
    return {
        "count": sum(int(s.get("count", 0)) for s in shards),
        "lastSeen": newest.get("lastSeen"),
        "lastReportId": newest.get("lastReportId"),
        "sources": sorted({source for s in shards for source in s.get("sources") or []}),
        "lastRunId": newest_run.get("lastRunId"),
    }


def count_request(
    db: "firestore.Client", client_key: str, window: int, window_start: dt.datetime, window_seconds: int
) -> int:
    """Counts one request in the client's fixed window and returns the count so far.

    The Increment is applied by Firestore and its result comes back in the same
    commit (WriteResult.transform_results), so concurrent requests on several
    instances each see a distinct count without a transaction.
    """
    result = rate_ref(db, client_key, window).set(
        {
            "count": Increment(1),
            "windowStart": window_start,
            "expireAt": window_start + dt.timedelta(seconds=window_seconds) + SHORT_LIVED_TTL,
        },
        merge=True,
        **commit_args(),
    )
    return int(result.transform_results[0].integer_value)
