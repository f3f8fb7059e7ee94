"""The worker's lease: who may run the job's next batch.

A hand-off from the previous invocation (`X-Worker-Lease`, the owner its checkpoint
wrote into `lease`) is claimed once (shared/store/job_writes.claim_handoff_once): of a
duplicated delivery exactly one copy runs. Without a hand-off (an operator or a test
calling the worker directly) the lease is taken only if it has lapsed.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time
from typing import Any

from google.cloud import firestore

from shared import auth, clock, ids
from shared.errors import Conflict, PermissionDenied
from shared.jobs import state
from shared.settings import Settings
from shared.store import job_writes
from shared.store import runs as repo


# Jobs written before the token was hashed kept it raw in this field; every write that sets
# or clears the hash deletes it (docs/jobs.md, "Operating notes").
LEGACY_RAW_TOKEN = "workerToken"


def new_owner(prefix: str = "h") -> str:
    return f"{prefix}-{ids.new_id()}"


def restart_fields(token: str, owner: str, now: dt.datetime, settings: Settings) -> dict[str, Any]:
    """A new chain for the job (resume, retry, the sweeper): a new token (its hash) and lease,
    so a stray worker of the old chain is refused or stops at its next lead."""
    return {
        "workerTokenHash": auth.worker_token_hash(token),
        LEGACY_RAW_TOKEN: firestore.DELETE_FIELD,
        "lease": {"owner": owner, "expiresAt": now + dt.timedelta(seconds=settings.worker_lease_seconds)},
        "mode": "background",
        "finishedAt": None,
    }


def check_worker(job: dict[str, Any] | None, token: str) -> dict[str, Any]:
    """The job, if `token` may drive it and it is active; PermissionDenied / Conflict otherwise."""
    if job is None or not auth.tokens_match(token, job.get("workerTokenHash")):
        raise PermissionDenied("the worker token is not valid for this run's job")
    if job["status"] not in state.ACTIVE:
        raise Conflict(f"the job is {job['status']}: there is nothing for a worker to do")
    return job


def acquire(db: Any, run_id: str, token: str, handoff: str | None, settings: Settings) -> tuple[str, dict[str, Any]]:
    """(owner, job) once this invocation holds the lease; Conflict (409) when another does."""
    if handoff:
        return handoff, job_writes.claim_handoff_once(db, run_id, handoff, {"status": state.RUNNING})
    owner = new_owner("w")
    lease = {"owner": owner, "expiresAt": clock.now() + dt.timedelta(seconds=settings.worker_lease_seconds)}
    return owner, job_writes.take_lapsed_lease(db, run_id, lambda job: check_worker(job, token), lease)


class ControlReads:
    """The per-lead pause check, shared by the leads in flight: a lead joins a read of the
    job's status and lease owner only if that read began after the lead asked, so what it
    sees is never older than its own check would have been; otherwise it starts one.
    With N leads in flight this costs about one read per round of leads, not N.
    """

    def __init__(self, db: Any, run_id: str):
        self.db, self.run_id = db, run_id
        self._lock = threading.Lock()
        self._latest: tuple[float, concurrent.futures.Future] | None = None

    def read(self) -> dict[str, Any] | None:
        asked = time.monotonic()
        with self._lock:
            if self._latest is not None and self._latest[0] >= asked:
                future, mine = self._latest[1], False
            else:
                future, mine = concurrent.futures.Future(), True
                self._latest = (time.monotonic(), future)
        if mine:
            try:
                future.set_result(repo.read_job_control(self.db, self.run_id))
            except Exception as exc:  # every joiner sees the same failure
                future.set_exception(exc)
        return future.result()


def interruption(db: Any, run_id: str, owner: str, reads: ControlReads | None = None) -> str | None:
    """Why this worker must stop before its next lead, or None. One small document read (or a
    share of one: ControlReads)."""
    job = reads.read() if reads is not None else repo.read_job_control(db, run_id)
    if job is None:
        return "job_deleted"
    if job["status"] not in state.ACTIVE:
        return job["status"]
    if (job.get("lease") or {}).get("owner") != owner:
        return "lease_lost"
    return None
