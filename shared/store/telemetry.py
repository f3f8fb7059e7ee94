"""telemetry_errors/{fingerprint}, its events/{reportId}, and telemetry_rate_limits.

The only module that knows these paths and document shapes (docs/telemetry.md).

A group's `count` moves by an atomic Increment committed in the same batch as the
event it counts, so the count always equals the number of events, however many
reports of one bug arrive at once, and no transaction can abort under contention.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud.firestore import ArrayUnion, Increment

if TYPE_CHECKING:
    from google.cloud import firestore

GROUPS = "telemetry_errors"
EVENTS = "events"
RATE_LIMITS = "telemetry_rate_limits"

# A rate-limit window document is useless once its window has passed; Firestore's
# TTL policy on `expireAt` (docs/telemetry.md) deletes it a day later.
RATE_DOC_TTL = dt.timedelta(days=1)


def group_ref(db: "firestore.Client", fingerprint: str) -> "firestore.DocumentReference":
    return db.collection(GROUPS).document(fingerprint)


def event_ref(db: "firestore.Client", fingerprint: str, report_id: str) -> "firestore.DocumentReference":
    return group_ref(db, fingerprint).collection(EVENTS).document(report_id)


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
    """Stores one report and counts it in its group, atomically.

    The common case (the group exists) is one commit: update the group, create
    the event. The first report of a bug creates the group instead; if two
    first reports race, the loser finds the group created and updates it.
    """
    source = event["source"]
    changes: dict[str, Any] = {
        "count": Increment(1),
        "lastSeen": received_at,
        "lastReportId": report_id,
        "sources": ArrayUnion([source]),
    }
    if event.get("runId"):
        changes["lastRunId"] = event["runId"]
    for attempt in range(3):
        batch = db.batch()
        if attempt % 2 == 0:
            batch.update(group_ref(db, fingerprint), changes)
        else:
            batch.create(
                group_ref(db, fingerprint),
                {
                    **group,
                    "count": 1,
                    "firstSeen": received_at,
                    "lastSeen": received_at,
                    "lastReportId": report_id,
                    "sources": [source],
                    "lastRunId": event.get("runId"),
                },
            )
        batch.create(event_ref(db, fingerprint, report_id), event)
        try:
            batch.commit()
            return
        except (gexc.NotFound, gexc.AlreadyExists):
            continue  # group missing (create it) or just created by a racing report (update it)
    raise RuntimeError(f"telemetry group {fingerprint} could be neither updated nor created")


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
            "expireAt": window_start + dt.timedelta(seconds=window_seconds) + RATE_DOC_TTL,
        },
        merge=True,
    )
    return int(result.transform_results[0].integer_value)

