"""Waking waiting jobs: what the sweeper (shared/jobs/sweeper.py) calls every minute.

    for run_id in due_waiting_jobs(db, now):
        wake_and_hand_off(db, run_id, now, settings, dispatcher)

(`wake` alone when the caller dispatches itself, as the sweeper does: it returns the hand-off.)

`wake` is a compare-and-set commit on the job: only a job still `waiting` whose
`wakeAt` has come moves to `running`, with a fresh lease whose owner is the hand-off
the next worker claims (shared/jobs/lease.acquire). Two sweepers racing on one job:
one commit lands, the other reads `running` and returns None, so exactly one worker
starts. A job paused or cancelled meanwhile is left alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import auth, clock
from shared.jobs import state
from shared.jobs.checkpoint import diagnostic, kept_diagnostics, note_dispatch_failure
from shared.jobs.lease import new_owner, restart_fields
from shared.jobs.dispatch import Dispatcher, default_dispatcher
from shared.settings import Settings
from shared.store import runs as repo
from shared.store.client import read_args, write_if_unchanged

MAX_WAKE_PER_SWEEP = 500


@dataclasses.dataclass(frozen=True)
class Woken:
    run_id: str
    owner: str  # the hand-off (X-Worker-Lease) the dispatched worker claims
    token: str  # the job's worker token (X-Worker-Token)


def due_waiting_jobs(db: Any, now: dt.datetime, limit: int = MAX_WAKE_PER_SWEEP) -> list[str]:
    """Run ids of waiting jobs whose wakeAt is at or before `now`, earliest first.

    A collection-group query on jobs (status ==, wakeAt <=): the composite index is in
    firestore.indexes.json."""
    query = (
        db.collection_group(repo.JOBS)
        .where(filter=FieldFilter("status", "==", state.WAITING))
        .where(filter=FieldFilter("wakeAt", "<=", now))
        .order_by("wakeAt")
        .limit(limit)
    )
    return [snapshot.reference.parent.parent.id for snapshot in query.stream(**read_args())]


def wake(db: Any, run_id: str, now: dt.datetime | None, settings: Settings) -> Woken | None:
    """waiting -> running with a fresh lease, if the job is still waiting and due; else None."""
    ref = repo.job_ref(db, run_id)
    owner = new_owner("s")

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> Woken | None:
        job = repo.as_dict(snapshot)
        at = now or clock.now()
        if job is None or job.get("status") != state.WAITING:
            return None
        wake_at = job.get("wakeAt")
        if isinstance(wake_at, dt.datetime) and wake_at > at:
            return None
        target = state.next_status("wake", job["status"])
        reason = job.get("waitReason") or "waiting"
        note = diagnostic("woken", f"woken at {clock.rfc3339(at)} after waiting ({reason})")
        # Only the token's hash is stored, so a woken job starts a new chain with a new
        # token, as resume does; a foreground run that had to wait continues in the background.
        token = auth.new_worker_token()
        batch.update(ref, {
            **restart_fields(token, owner, at, settings),
            "status": target,
            "wakeAt": None,
            "waitReason": None,
            "updatedAt": at,
            "diagnostics": kept_diagnostics(job, [note]),
            "writes": firestore.Increment(1),
        }, option=unchanged)
        batch.update(repo.run_ref(db, run_id), {"status": target, "updatedAt": at})
        return Woken(run_id, owner, token)

    return write_if_unchanged(db, ref, apply)


def wake_and_hand_off(
    db: Any, run_id: str, now: dt.datetime | None, settings: Settings, dispatcher: Dispatcher | None = None
) -> bool:
    """wake(), then invoke the worker with the hand-off; True when this call woke the job.

    A failed dispatch is noted on the job as the worker's own hand-offs are; the lease
    then lapses and the sweeper's stalled-job pass restarts it."""
    woken = wake(db, run_id, now, settings)
    if woken is None:
        return False
    if not (dispatcher or default_dispatcher(settings))(run_id, woken.token, woken.owner):
        note_dispatch_failure(db, run_id, woken.owner)
    return True
