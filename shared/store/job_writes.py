"""Every conditional write of a lead run: the exactly-once guarantees, each under its name.

| write | guarantee |
| --- | --- |
| `claim_start` | of racing starts on one run, one writes the job; an identical one adopts it |
| `claim_handoff_once` | of two deliveries of one hand-off, exactly one runs a batch |
| `take_lapsed_lease` | a worker without a hand-off runs only if no lease is live |
| `commit_checkpoint` | a batch's progress lands only while its worker still holds the lease |
| `change_job` | a transition (pause, resume, retry, cancel, sweep) applies to the job it read |
| `note_if_leased` | a diagnostic is added only while the named lease is the job's |
| `commit_lead_outcome` | a lead's outbox document, receipt and status land together, once |
| `record_lead_failure` | a lead's failed receipt and status land together |

Each job write is a compare-and-set commit (`client.write_if_unchanged`): why not a
transaction is said once, in docs/reliability.md finding 3. Callers pass `plan`
functions that hold the rules (shared/jobs); this module holds the paths, the
preconditions and the batches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock
from shared.errors import Conflict
from shared.store import runs as repo
from shared.retry import Exhausted, Policy
from shared.store.client import as_dict, commit_args, queue_replace, write_if_unchanged

T = TypeVar("T")

# A hand-off claim only has to outlive every duplicate delivery of its hand-off (seconds
# to minutes); the TTL policy on `expireAt` (deploy.sh) deletes it after this.
LEASE_CLAIM_RETENTION = dt.timedelta(days=7)
# Retries and resets of one `retry` fit one commit up to this many leads (Firestore: 500
# writes per commit, two of them the job and the run).
LEADS_PER_JOB_COMMIT = 498

# A plan returns (job updates, run updates, value) to write, or None to write nothing.
Plan = Callable[[dict[str, Any] | None], "tuple[dict[str, Any], dict[str, Any] | None, T] | None"]


# --- the job document ---------------------------------------------------------------------


def claim_start(db: Any, run_id: str, decide: Callable[[dict[str, Any] | None, dict[str, Any] | None], tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Writes a new job unless `decide(current job, run)` says otherwise.

    `decide` returns ("new", job to write) or (another outcome, the current job), or
    raises. The run document needs no precondition: it is created only by the start that
    won this claim.
    """
    ref = repo.job_ref(db, run_id)

    def claim(snapshot: Any, batch: Any, unchanged: Any) -> tuple[str, dict[str, Any]]:
        outcome, job = decide(as_dict(snapshot), repo.get_run(db, run_id))
        if outcome == "new":
            queue_replace(batch, ref, snapshot.to_dict() if snapshot.exists else None, job, unchanged)
        return outcome, job

    return write_if_unchanged(db, ref, claim)


def claim_handoff_once(db: Any, run_id: str, handoff: str, begin: dict[str, Any]) -> dict[str, Any]:
    """The job, once this caller holds hand-off `handoff`; Conflict when it is not the job's
    lease any more or another delivery claimed it first.

    The claim is a document created once (jobs/default/leases/{handoff}), so the job
    document is not written, except by the first batch: a queued job gets `begin`
    (queued → running) in the same commit.
    """
    ref, claim_ref = repo.job_ref(db, run_id), repo.lease_claim_ref(db, run_id, handoff)

    def claim(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        job = as_dict(snapshot) or {}
        if (job.get("lease") or {}).get("owner") != handoff:
            raise Conflict("this hand-off is no longer the job's lease: another worker took over")
        now = clock.now()
        batch.create(claim_ref, {"claimedAt": now, "runId": run_id, "expireAt": now + LEASE_CLAIM_RETENTION})
        if job["status"] == "queued":
            started = {**begin, "startedAt": now, "updatedAt": now}
            batch.update(ref, {**started, "writes": firestore.Increment(1)}, option=unchanged)
            batch.update(repo.run_ref(db, run_id), {"status": begin["status"], "updatedAt": now})
            job = {**job, **started}
        return job

    try:
        return write_if_unchanged(db, ref, claim)
    except gexc.AlreadyExists:
        raise Conflict("another worker already took this hand-off") from None


def take_lapsed_lease(db: Any, run_id: str, check: Callable[[dict[str, Any] | None], dict[str, Any]],
                      lease: dict[str, Any]) -> dict[str, Any]:
    """The job with `lease` written, if `check(job)` accepts it and its lease has lapsed."""
    ref = repo.job_ref(db, run_id)

    def take(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        job = check(as_dict(snapshot))
        now = clock.now()
        held = job.get("lease") or {}
        if held.get("expiresAt") is not None and held["expiresAt"] > now:
            raise Conflict(f"another worker holds this job's lease until {clock.rfc3339(held['expiresAt'])}")
        batch.update(ref, {"lease": lease, "updatedAt": now, "writes": firestore.Increment(1)}, option=unchanged)
        return {**job, "lease": lease}

    return write_if_unchanged(db, ref, take)


def commit_checkpoint(db: Any, run_id: str, owner: str, plan: Plan) -> Any:
    """A batch's one job write, applied only while `owner` holds the lease; None when it lost it."""
    ref = repo.job_ref(db, run_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> Any:
        job = as_dict(snapshot)
        if job is None or (job.get("lease") or {}).get("owner") != owner:
            return None
        updates, run_updates, value = plan(job)
        batch.update(ref, {**updates, "writes": firestore.Increment(1)}, option=unchanged)
        if run_updates:
            batch.update(repo.run_ref(db, run_id), run_updates)
        return value

    return write_if_unchanged(db, ref, apply)


def change_job(db: Any, run_id: str, plan: Callable[[dict[str, Any] | None], Any]) -> Any:
    """A transition of the job it read. `plan(job)` returns None (nothing to write) or
    (job updates, run updates, lead updates {leadDocId: fields}, value).

    Lead updates go in the same commit as the job while they fit (LEADS_PER_JOB_COMMIT), so
    the job and its leads never disagree; more than that is the caller's to avoid.
    """
    ref = repo.job_ref(db, run_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> Any:
        planned = plan(as_dict(snapshot))
        if planned is None:
            return None
        updates, run_updates, lead_updates, value = planned
        if len(lead_updates) > LEADS_PER_JOB_COMMIT:
            raise ValueError(f"{len(lead_updates)} lead updates do not fit one commit")
        batch.update(ref, {**updates, "writes": firestore.Increment(1)}, option=unchanged)
        if run_updates:
            batch.update(repo.run_ref(db, run_id), run_updates)
        for lead_id, fields in lead_updates.items():
            batch.update(repo.lead_ref(db, run_id, lead_id), fields)
        return value

    return write_if_unchanged(db, ref, apply)


def note_if_leased(db: Any, run_id: str, lease_owner: str, diagnostics: Callable[[dict[str, Any]], list | None]) -> bool:
    """Replaces the job's diagnostics with `diagnostics(job)` while `lease_owner` is its lease
    (and `diagnostics` returns a list, not None)."""
    ref = repo.job_ref(db, run_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> bool:
        job = as_dict(snapshot)
        if job is None or (job.get("lease") or {}).get("owner") != lease_owner:
            return False
        kept = diagnostics(job)
        if kept is None:
            return False
        batch.update(ref, {"diagnostics": kept, "writes": firestore.Increment(1)}, option=unchanged)
        return True

    return write_if_unchanged(db, ref, apply)


# --- a lead's outcome -------------------------------------------------------------------


def lead_outcome_fields(status: str, attempt: int, error: str | None) -> dict[str, Any]:
    """The lead document's fields once an attempt has decided it."""
    return {"status": status, "attempts": attempt, "lastError": error, "updatedAt": firestore.SERVER_TIMESTAMP}


def queue_lead_outcome(db: Any, batch: Any, run_id: str, lead_id: str, step: str, receipt: dict[str, Any],
                       attempt: int, error: str | None = None) -> None:
    """The receipt and the lead's new status, on `batch` (which may carry the outbox document)."""
    batch.set(repo.action_ref(db, run_id, lead_id, step), receipt)
    batch.update(repo.lead_ref(db, run_id, lead_id), lead_outcome_fields(receipt["status"], attempt, error))


# The bookkeeping after a send that already happened: up to 0.5, 1, 2, ... 8 s, jittered.
LEAD_COMMIT = Policy("a lead's outcome commit", retry_on=(Exception,), initial=0.5, maximum=8)


class DoneEarlier(Exception):
    """The lead's outbox document already exists: an earlier attempt (crashed or concurrent) did it."""


def commit_lead_outcome(batch: Any, retries: int, sleep: Callable[[float], None], transient: Callable[[Exception], bool]) -> Any:
    """Commits a lead's outbox document (created with a precondition on its deterministic id),
    receipt and status together, and returns the commit's server time; DoneEarlier when the
    outbox document already existed, so nothing was written.

    After an external send only this bookkeeping is retried, never the send (`retries`).
    """
    try:
        return commit_time(LEAD_COMMIT.call(batch.commit, attempts=max(1, retries), sleep=sleep,
                                            retry_if=lambda exc: not isinstance(exc, gexc.AlreadyExists) and transient(exc)))
    except Exhausted as gave_up:
        raise gave_up.last from None
    except gexc.AlreadyExists:
        raise DoneEarlier() from None


def record_lead_failure(db: Any, run_id: str, lead_id: str, step: str, receipt: dict[str, Any], attempt: int,
                        error: str) -> Any:
    """The failed receipt and the lead's `failed` status in one commit; its server time."""
    batch = db.batch()
    queue_lead_outcome(db, batch, run_id, lead_id, step, receipt, attempt, error)
    return commit_time(batch.commit(**commit_args()))


def record_lead_skip(db: Any, run_id: str, lead_id: str, step: str, receipt: dict[str, Any], attempt: int,
                     reason: str) -> Any:
    """The `email.skip` receipt and the lead's `skipped` status (with why) in one commit; its server time."""
    batch = db.batch()
    queue_lead_outcome(db, batch, run_id, lead_id, step, receipt, attempt)
    batch.update(repo.lead_ref(db, run_id, lead_id), {"skipReason": reason})
    return commit_time(batch.commit(**commit_args()))


def commit_time(results: list[Any]) -> Any:
    times = [r.update_time for r in results or [] if getattr(r, "update_time", None) is not None]
    return max(times) if times else None
