"""The job state machine (docs/jobs.md "Transitions": queued → running → (paused ⇄ running) → completed |
completed_with_errors | cancelled | failed), and when a job looks stalled.

Pure functions: the service and the worker apply them in compare-and-set commits
(store/client.write_if_unchanged).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.errors import Conflict

QUEUED = "queued"
RUNNING = "running"
PAUSED = "paused"
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
CANCELLED = "cancelled"
FAILED = "failed"

ACTIVE = frozenset({QUEUED, RUNNING})  # a worker may process leads
LIVE = ACTIVE | {PAUSED}  # a job that has not ended
FINISHED = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED})
STATUSES = LIVE | FINISHED

# action → {current status: next status}. resume from an active status is only legal
# when the job is stalled (see `next_status`).
TRANSITIONS: dict[str, dict[str, str]] = {
    "pause": {QUEUED: PAUSED, RUNNING: PAUSED, PAUSED: PAUSED},
    "resume": {PAUSED: RUNNING, QUEUED: RUNNING, RUNNING: RUNNING},
    "retry": {COMPLETED_WITH_ERRORS: RUNNING, FAILED: RUNNING},
    "cancel": {QUEUED: CANCELLED, RUNNING: CANCELLED, PAUSED: CANCELLED, CANCELLED: CANCELLED},
}


class IllegalTransition(Conflict):
    def __init__(self, action: str, status: str, hint: str = ""):
        super().__init__(
            f"cannot {action} a job that is {status}" + (f": {hint}" if hint else ""),
            [{"field": "action", "action": action, "status": status}],
        )
        self.status = status


_HINTS = {
    ("resume", RUNNING): "its worker is alive (resume restarts only a stalled job)",
    ("resume", QUEUED): "its worker has not had time to start (resume restarts only a stalled job)",
    ("retry", COMPLETED): "no lead failed",
    ("retry", PAUSED): "resume it; retry re-queues failed leads once the job has finished",
    ("retry", RUNNING): "retry re-queues failed leads once the job has finished",
}


def next_status(action: str, status: str, stalled: bool = False) -> str:
    """The status `action` moves a `status` job to, or IllegalTransition (409) naming `status`."""
    target = TRANSITIONS[action].get(status)
    if target is None or (action == "resume" and status in ACTIVE and not stalled):
        raise IllegalTransition(action, status, _HINTS.get((action, status), ""))
    return target


def is_noop(action: str, status: str) -> bool:
    """Pausing a paused job or cancelling a cancelled one changes nothing and is not an error."""
    return (action, status) in {("pause", PAUSED), ("cancel", CANCELLED)}


def final_status(failed_leads: int) -> str:
    return COMPLETED_WITH_ERRORS if failed_leads else COMPLETED


def stall_grace_seconds(lease_seconds: float) -> float:
    """How long past its lease a job may go quiet before it is reported stalled."""
    return max(1.0, lease_seconds / 4)


def is_stalled(job: dict[str, Any], now: dt.datetime, lease_seconds: float) -> bool:
    """Active, and nobody is making progress: the lease expired beyond the grace period,
    or there is no lease and nothing was written for longer than a lease.

    The jobs status and the receipts read model both answer `stalled` from here. It
    reads a stored document, so a field of the wrong type counts as absent, not a 500.
    """
    if job.get("status") not in ACTIVE:
        return False
    grace = dt.timedelta(seconds=stall_grace_seconds(lease_seconds))
    lease = job.get("lease")
    expires = lease.get("expiresAt") if isinstance(lease, dict) else None
    if isinstance(expires, dt.datetime):
        return expires + grace < now
    updated = job.get("updatedAt")
    if not isinstance(updated, dt.datetime):
        return True
    return updated + dt.timedelta(seconds=lease_seconds) + grace < now
