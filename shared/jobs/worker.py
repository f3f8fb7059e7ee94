"""The batch worker: lease, batch loop, progress checkpoint, hand-off.

One invocation (POST /api/lead-runs/{runId}/jobs/worker):

1. authenticates with the job's `workerToken` (constant-time compare);
2. takes the lease. A hand-off from the previous invocation (`X-Worker-Lease`, the
   owner that invocation wrote into `lease`) is claimed by a commit that creates
   jobs/default/leases/{owner}: exactly one copy of a duplicated delivery wins, and the
   job document is written only by the first batch (queued → running). Without a
   hand-off (an operator or a test calling the worker directly) the lease is taken,
   only if free or expired;
3. processes pending leads from `nextIndex` in index order until `batchSize` leads or
   the time budget, re-reading the job before each lead so pause, cancel or a lost
   lease stop it within one lead; before each lead shared/deliverability/gate.py says
   whether it may go now (its sending window, the sender's caps and pacing): a deferred
   lead stays pending, and a batch with nothing sendable checkpoints the job `waiting`;
4. writes progress once (the checkpoint: nextIndex, counts, diagnostics,
   attemptsByLead, status, and the lease handed to the next invocation) and mirrors
   status and counts on the run;
5. unless the job finished, was paused or cancelled, invokes itself (dispatch.py).

The worker's job-document writes are compare-and-set commits (a plain read, then a
write that lands only if the document is unchanged: store/client.write_if_unchanged),
not transactions: a transaction's read locks the document until it commits, so a
worker killed in between would block every write to the job, an operator's resume
included, until Firestore expires the lock 60 s later.

Crash safety: a lead's effects are one atomic commit with a deterministic outbox id
(pipeline.py), so a worker killed mid-batch leaves leads at or past the persisted
`nextIndex` either done or untouched. The next worker re-scans from `nextIndex`, skips
done leads, and counts those committed after the last checkpoint (`updatedAt` >
`progressAt`, both server timestamps) because no checkpoint counted them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import auth, clock, ids, logs
from shared.deliverability import gate as deliverability
from shared.errors import Conflict, PermissionDenied, Unauthenticated
from shared.jobs import state
from shared.jobs.dispatch import Dispatcher, default_dispatcher
from shared.jobs.models import WorkerResult
from shared.outreach import pipeline
from shared.outreach.errors import ProviderQuotaError, TransientError, classify
from shared.outreach.providers import Provider, get_provider
from shared.settings import Settings, get_settings
from shared.store import runs as repo
from shared.store.client import write_if_unchanged
from shared.store import templates as templates_repo

logger = logging.getLogger("mission_control.jobs.worker")

MAX_DIAGNOSTICS = 50
MAX_ATTEMPT_ENTRIES = 100
# The lease must outlive a batch: the budget is capped at this share of it.
BUDGET_SHARE_OF_LEASE = 0.8
TERMINAL_LEAD_STATUSES = ("sent", "drafted", "failed")


@dataclasses.dataclass
class BatchResult:
    started_at: dt.datetime
    start_index: int
    next_index: int
    attempts: dict[str, int]
    processed: int = 0
    deltas: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    diagnostics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outcomes: list[pipeline.Outcome] = dataclasses.field(default_factory=list)
    stop_reason: str = "end"
    finished: bool = False
    job_failed: str | None = None
    quota: ProviderQuotaError | None = None
    wait: tuple[str, dt.datetime] | None = None  # (waitReason, wakeAt): nothing sendable before then

    def note(self, code: str, message: str, lead: dict[str, Any] | None = None) -> None:
        self.diagnostics.append(diagnostic(code, message, lead))
        del self.diagnostics[:-MAX_DIAGNOSTICS]


@dataclasses.dataclass
class Checkpoint:
    status: str
    next_owner: str | None
    counts: dict[str, int]
    lost: bool = False


def diagnostic(code: str, message: str, lead: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "at": clock.now(),
        "leadIndex": lead["index"] if lead else None,
        "leadDocId": lead["id"] if lead else None,
        "code": code,
        "message": message[:500],
    }


def kept_diagnostics(job: dict[str, Any], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's diagnostics followed by `new`, keeping the newest MAX_DIAGNOSTICS."""
    return (list(job.get("diagnostics") or []) + new)[-MAX_DIAGNOSTICS:]


def time_budget(config: dict[str, Any], settings: Settings) -> float:
    budget = config.get("timeBudgetSeconds") or settings.worker_time_budget_seconds
    return max(0.5, min(float(budget), settings.worker_lease_seconds * BUDGET_SHARE_OF_LEASE))


def new_owner(prefix: str = "h") -> str:
    return f"{prefix}-{ids.new_id()}"


# --- the endpoint's use-case ---------------------------------------------------------


def handle(
    db: Any,
    run_id: str,
    token: str | None,
    handoff: str | None,
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    provider: Provider | None = None,
) -> WorkerResult:
    settings = settings or get_settings()
    if not token:
        raise Unauthenticated("the X-Worker-Token header is required")
    ids.check_id(run_id, "runId")
    job = repo.get_job(db, run_id)
    if job is None or not auth.tokens_match(token, job.get("workerToken")):
        raise PermissionDenied("the worker token is not valid for this run's job")
    if job["status"] not in state.ACTIVE:
        raise Conflict(f"the job is {job['status']}: there is nothing for a worker to do")
    if handoff is not None:
        ids.check_id(handoff, "X-Worker-Lease")
    owner, job = acquire(db, run_id, token, handoff, settings)

    deadline = time.monotonic() + time_budget(job["config"], settings)
    result = run_batch(db, run_id, job, owner, deadline, job["config"]["batchSize"], provider or get_provider(settings))
    done = checkpoint(db, run_id, owner, result, settings)
    dispatched = None
    if done.next_owner:
        dispatched = (dispatcher or default_dispatcher(settings))(run_id, token, done.next_owner)
        if not dispatched:
            note_dispatch_failure(db, run_id, done.next_owner)
    logs.log(
        logger, logging.INFO, f"batch of run {run_id}: {result.processed} leads, stopped ({result.stop_reason})",
        runId=run_id, processed=result.processed, startIndex=result.start_index, nextIndex=result.next_index,
        status=done.status, stopReason=result.stop_reason, leaseLost=done.lost, dispatched=dispatched,
    )
    return WorkerResult(
        run_id=run_id, status=done.status, processed=result.processed, next_index=result.next_index,
        total_leads=job["totalLeads"], stop_reason="lease_lost" if done.lost else result.stop_reason,
        dispatched=dispatched,
    )


# --- lease ------------------------------------------------------------------------------


def acquire(db: Any, run_id: str, token: str, handoff: str | None, settings: Settings) -> tuple[str, dict[str, Any]]:
    """(owner, job) once this invocation holds the lease; Conflict (409) when another does."""
    ref = repo.job_ref(db, run_id)
    if handoff:
        claim_ref = repo.lease_claim_ref(db, run_id, handoff)

        def claim(job_snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
            job = repo.as_dict(job_snapshot) or {}
            if (job.get("lease") or {}).get("owner") != handoff:
                raise Conflict("this hand-off is no longer the job's lease: another worker took over")
            now = clock.now()
            # The claim document exists once: a second taker of this hand-off gets AlreadyExists.
            batch.create(claim_ref, {"claimedAt": now, "runId": run_id})
            if job["status"] == state.QUEUED:
                # The first batch: the one hand-off that also writes the job, to say it runs.
                started = {"status": state.RUNNING, "startedAt": now, "updatedAt": now}
                batch.update(ref, {**started, "writes": firestore.Increment(1)}, option=unchanged)
                batch.update(repo.run_ref(db, run_id), {"status": state.RUNNING, "updatedAt": now})
                job = {**job, **started}
            return job

        try:
            return handoff, write_if_unchanged(db, ref, claim)
        except gexc.AlreadyExists:
            raise Conflict("another worker already took this hand-off") from None

    def take(snapshot: Any, batch: Any, unchanged: Any) -> tuple[str, dict[str, Any]]:
        job = repo.as_dict(snapshot)
        if job is None or not auth.tokens_match(token, job.get("workerToken")):
            raise PermissionDenied("the worker token is not valid for this run's job")
        if job["status"] not in state.ACTIVE:
            raise Conflict(f"the job is {job['status']}: there is nothing for a worker to do")
        now = clock.now()
        lease = job.get("lease") or {}
        if lease.get("expiresAt") is not None and lease["expiresAt"] > now:
            raise Conflict(f"another worker holds this job's lease until {clock.rfc3339(lease['expiresAt'])}")
        owner = new_owner("w")
        taken = {"owner": owner, "expiresAt": now + dt.timedelta(seconds=settings.worker_lease_seconds)}
        batch.update(ref, {"lease": taken, "updatedAt": now, "writes": firestore.Increment(1)}, option=unchanged)
        return owner, {**job, "lease": taken}

    return write_if_unchanged(db, ref, take)


def _interruption(db: Any, run_id: str, owner: str) -> str | None:
    """Why this worker must stop before its next lead, or None. One small document read."""
    job = repo.read_job_control(db, run_id)
    if job is None:
        return "job_deleted"
    if job["status"] not in state.ACTIVE:
        return job["status"]
    if (job.get("lease") or {}).get("owner") != owner:
        return "lease_lost"
    return None


# --- the batch --------------------------------------------------------------------------


def run_batch(
    db: Any,
    run_id: str,
    job: dict[str, Any],
    owner: str,
    deadline: float,
    limit: int,
    provider: Provider,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> BatchResult:
    """Processes up to `limit` pending leads from job.nextIndex; writes only lead-level documents.

    Firestore trouble (unavailable, deadline exceeded) stops the batch where it is: the
    leads done so far are kept and the checkpoint still tries to record them.
    """
    result = BatchResult(
        started_at=clock.now(), start_index=job["nextIndex"], next_index=job["nextIndex"],
        attempts=dict(job.get("attemptsByLead") or {}),
    )
    gate = deliverability.Gate.for_job(db, run_id, job)
    try:
        _fill_batch(result, db, run_id, job, owner, deadline, limit, provider, sleep, monotonic, gate)
    except Exception as exc:
        error = classify(exc)
        if not isinstance(error, TransientError):
            raise
        result.note(error.code, f"batch stopped at lead {result.next_index}: {error.message}")
        result.stop_reason = "firestore_unavailable"
        result.finished = False
    gate.conclude(result, int(job["totalLeads"]))
    return result


def _fill_batch(
    result: BatchResult, db: Any, run_id: str, job: dict[str, Any], owner: str, deadline: float, limit: int,
    provider: Provider, sleep: Callable[[float], None], monotonic: Callable[[], float], gate: deliverability.Gate,
) -> None:
    config, total = job["config"], int(job["totalLeads"])
    template = templates_repo.get(db, config["templateId"])
    if template is None:
        result.job_failed = f"template {config['templateId']} no longer exists"
        result.stop_reason = "template_missing"
        result.note("template_missing", result.job_failed + "; start the run again with another template")
        return
    draft = config.get("draftFirst")
    context = pipeline.RunContext(
        db=db, run_id=run_id, template=template, draft=bool(template.get("draftFirst")) if draft is None else draft,
        provider=provider, max_attempts=int(config["maxAttempts"]), sleep=sleep, monotonic=monotonic,
        contact_window_days=config.get("skipIfContactedWithinDays"),
    )
    gate.bind(context.draft, sleep, monotonic)
    progress_at = job.get("progressAt")
    while result.next_index < total:
        first = result.next_index
        size = min(total - first, max(limit - result.processed, 1))
        by_index = {lead["index"]: lead for lead in repo.read_leads(db, run_id, first, size)}
        for index in range(first, first + size):
            lead = by_index.get(index)
            if lead is None:
                result.note("lead_missing", f"lead {repo.lead_doc_id(index)} does not exist; skipped")
                result.next_index = index + 1
                continue
            if lead.get("status") != "pending":
                _count_leftover(result, lead, progress_at)
                result.next_index = index + 1
                continue
            if monotonic() >= deadline:
                result.stop_reason = "time_budget"
                return
            why = _interruption(db, run_id, owner)
            if why:
                result.stop_reason = why
                return
            verdict = gate.admit(lead, deadline)
            if verdict == deliverability.DEFER:
                result.next_index = index + 1  # conclude() moves nextIndex back to the first deferred lead
                continue
            if verdict == deliverability.STOP:
                return
            went_on = _process(context, result, lead, deadline)
            gate.settle(result, went_on)
            if not went_on:
                return
            result.next_index = index + 1
            if result.processed >= limit:
                result.stop_reason = "batch_size"
                result.finished = result.next_index >= total
                return
    result.finished = True
    result.stop_reason = "end"


def _process(context: pipeline.RunContext, result: BatchResult, lead: dict[str, Any], deadline: float) -> bool:
    """Runs one lead through the pipeline and books its outcome; False stops the batch."""
    try:
        outcome = pipeline.process_lead(context, lead, result.attempts.get(lead["id"], 0), deadline)
    except Exception as exc:  # writing the lead's own outcome failed
        error = classify(exc)
        if isinstance(error, ProviderQuotaError):
            # The mailbox's quota, not the lead's fault: it stays pending, attempt unused.
            result.quota = error
            result.note(error.code, f"stopped at lead {lead['id']}, which stays pending: {error.message}", lead)
            result.stop_reason = "provider_quota"
            return False
        if isinstance(error, TransientError):
            if error.attempts:
                result.attempts[lead["id"]] = error.attempts
                _bound_attempts(result.attempts)
            result.note(error.code, f"stopped at lead {lead['id']}, which stays pending: {error.message}", lead)
            result.stop_reason = "firestore_unavailable"
            return False
        logs.log(logger, logging.ERROR, f"unexpected error on lead {lead['id']}: {exc!r}", runId=context.run_id)
        result.job_failed = f"internal error on lead {lead['id']}: {type(exc).__name__}"
        result.note("internal", result.job_failed, lead)
        result.stop_reason = "internal_error"
        return False
    for message in outcome.transient_errors:
        result.note("transient", message, lead)
    if outcome.status == "retry_later":
        result.attempts[lead["id"]] = outcome.attempts
        _bound_attempts(result.attempts)
        if outcome.code == pipeline.IN_FLIGHT:
            result.note(pipeline.IN_FLIGHT, f"will check again: {outcome.message}", lead)
        else:
            result.note("retry_later", f"will try again (attempt {outcome.attempts} failed: {outcome.message})", lead)
        result.stop_reason = "retry_later"
        return False
    result.attempts.pop(lead["id"], None)
    if not outcome.earlier:
        result.deltas["pending"] -= 1
        result.deltas[outcome.status] += 1
    else:
        _count_leftover(result, {**lead, "status": outcome.status, "updatedAt": outcome.committed_at}, None, force=True)
    if outcome.status == "failed":
        result.note(outcome.code or "failed", outcome.message or "failed", lead)
    result.outcomes.append(outcome)
    result.processed += 1
    return True


def _count_leftover(result: BatchResult, lead: dict[str, Any], progress_at: Any, force: bool = False) -> None:
    """A lead done by a worker whose batch never checkpointed (crash, lost lease) is not yet
    in the counts: its commit is newer than the job's last progress write."""
    result.attempts.pop(lead["id"], None)
    status, updated = lead.get("status"), lead.get("updatedAt")
    if status not in TERMINAL_LEAD_STATUSES or updated is None:
        return
    if force or (progress_at is not None and updated > progress_at):
        result.deltas["pending"] -= 1
        result.deltas[status] += 1


def _bound_attempts(attempts: dict[str, int]) -> None:
    while len(attempts) > MAX_ATTEMPT_ENTRIES:
        attempts.pop(next(iter(attempts)))


# --- progress ---------------------------------------------------------------------------


def add_counts(counts: dict[str, int] | None, deltas: collections.Counter) -> dict[str, int]:
    merged = {status: int((counts or {}).get(status, 0)) for status in repo.LEAD_STATUSES}
    for status, delta in deltas.items():
        merged[status] = merged.get(status, 0) + delta
    return merged


def checkpoint(
    db: Any, run_id: str, owner: str, result: BatchResult, settings: Settings, on_unfinished: str = "handoff"
) -> Checkpoint:
    """The one job-document write of a batch. `on_unfinished`: "handoff" (background: lease to
    the next invocation) or "pause" (foreground: the rest waits for resume)."""
    recount = repo.count_leads(db, run_id) if result.finished and not result.job_failed else None
    successor = new_owner()
    job_ref, run_ref = repo.job_ref(db, run_id), repo.run_ref(db, run_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> Checkpoint:
        job = repo.as_dict(snapshot)
        if job is None or (job.get("lease") or {}).get("owner") != owner:
            return Checkpoint(status=(job or {}).get("status", "unknown"), next_owner=None, counts={}, lost=True)
        now = clock.now()
        counts = add_counts(job.get("counts"), result.deltas)
        diagnostics = list(result.diagnostics)
        if recount is not None and recount != counts:
            # Incremental counts should always match; if not, the lead documents win.
            logs.log(logger, logging.WARNING, "lead counts reconciled", runId=run_id, counted=counts, found=recount)
            diagnostics.append(diagnostic("counts_reconciled", f"counted {counts}, the leads say {recount}"))
            counts = recount
        status, lease = job["status"], None
        updates: dict[str, Any] = {
            "nextIndex": result.next_index,
            "counts": counts,
            "attemptsByLead": result.attempts,
            "updatedAt": now,
            "progressAt": firestore.SERVER_TIMESTAMP,
            "writes": firestore.Increment(1),
        }
        if not job.get("startedAt"):
            updates["startedAt"] = result.started_at
        if status == state.CANCELLED:
            pass
        elif result.job_failed:
            status = state.FAILED
        elif result.finished:
            status = state.final_status(counts.get("failed", 0))
        elif status == state.PAUSED:
            pass
        elif result.wait is not None:
            status = state.WAITING  # no lease: the sweeper wakes it (shared/deliverability/wake.py)
            updates["waitReason"], updates["wakeAt"] = result.wait
        elif on_unfinished == "pause":
            status = state.PAUSED
            diagnostics.append(diagnostic(
                "foreground_budget", f"stopped at lead {result.next_index} of {job['totalLeads']} "
                f"({result.stop_reason}); resume continues in the background",
            ))
        else:
            status = state.RUNNING
            lease = {"owner": successor, "expiresAt": now + dt.timedelta(seconds=settings.worker_lease_seconds)}
        if status in state.FINISHED and status != state.CANCELLED:
            updates["finishedAt"] = now
            updates["workerToken"] = None
        if status != state.WAITING:
            updates["waitReason"], updates["wakeAt"] = None, None
        updates["status"] = status
        updates["lease"] = lease
        updates["diagnostics"] = kept_diagnostics(job, diagnostics)
        batch.update(job_ref, updates, option=unchanged)
        batch.update(run_ref, {"status": status, "counts": counts, "updatedAt": now})
        return Checkpoint(status=status, next_owner=lease["owner"] if lease else None, counts=counts)

    done = write_if_unchanged(db, job_ref, apply)
    if done.lost:
        logs.log(logger, logging.WARNING, "lease lost before the checkpoint; the next worker re-scans this batch",
                 runId=run_id, owner=owner)
    return done


def note_dispatch_failure(db: Any, run_id: str, lease_owner: str) -> None:
    """Every hand-off attempt failed: say so on the job (GET will report it stalled once the lease lapses)."""
    ref = repo.job_ref(db, run_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> None:
        job = repo.as_dict(snapshot)
        if job is None or (job.get("lease") or {}).get("owner") != lease_owner:
            return
        failed = diagnostic("dispatch_failed", "could not invoke the next worker; resume restarts the job once it is stalled")
        batch.update(ref, {"diagnostics": kept_diagnostics(job, [failed]), "writes": firestore.Increment(1)},
                     option=unchanged)

    write_if_unchanged(db, ref, apply)
    logs.log(logger, logging.ERROR, "worker hand-off failed after every retry", runId=run_id)
