"""The batch loop: pending leads from `nextIndex`, several at a time, booked in order.

Leads are read by key from `nextIndex` and run through the pipeline on up to
WORKER_LEAD_CONCURRENCY threads; production Firestore costs milliseconds a round trip,
so one lead at a time is latency-bound (docs/jobs.md, "Speed at production latency").
The guarantees hold per lead, whatever the concurrency:

- exactly one mail per lead: a lead is handed to one thread once, and its effects are
  one commit with a deterministic outbox id (shared/store/job_writes);
- pause, cancel or a lost lease stop the batch within the leads in flight: each lead
  re-reads the job's status and lease owner before it starts, and no lead starts once
  one has seen the interruption;
- `nextIndex` only moves past a contiguous prefix of done leads, so a killed worker
  leaves at or past it only leads that are done or untouched; leads done past it are
  counted now and found done (not pending) by the next scan.

Only this thread mutates the BatchResult: the lead threads return what happened.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable

from shared import clock, logs
from shared.jobs.checkpoint import MAX_DIAGNOSTICS, diagnostic
from shared.deliverability import gate as deliverability
from shared.jobs.lease import ControlReads, interruption
from shared.outreach import pipeline
from shared.outreach.errors import ProviderQuotaError, TransientError, classify
from shared.outreach.providers import Provider
from shared.settings import get_settings
from shared.store import runs as repo
from shared.store import templates as templates_repo

logger = logging.getLogger("mission_control.jobs.worker")

MAX_ATTEMPT_ENTRIES = 100
TERMINAL_LEAD_STATUSES = ("sent", "drafted", "failed", "skipped")


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
    done: set[int] = dataclasses.field(default_factory=set)
    stopped: bool = False
    quota: ProviderQuotaError | None = None
    scanned: int = 0  # the index after the last lead the scan looked at (deferred leads included)
    # Leads whose outcome commit may have landed although this batch saw an error (an
    # answer lost in an outage): not counted now, so the next scan counts them if done.
    uncertain: set[str] = dataclasses.field(default_factory=set)
    resolved: set[str] = dataclasses.field(default_factory=set)  # earlier uncertain leads scanned again
    wait: tuple[str, dt.datetime] | None = None  # (waitReason, wakeAt): nothing sendable before then

    def note(self, code: str, message: str, lead: dict[str, Any] | None = None) -> None:
        self.diagnostics.append(diagnostic(code, message, lead))
        del self.diagnostics[:-MAX_DIAGNOSTICS]

    def stop(self, reason: str) -> None:
        if not self.stopped:
            self.stopped, self.stop_reason = True, reason

    def mark_done(self, index: int) -> None:
        """Lead `index` needs no more work; nextIndex moves past the contiguous done prefix."""
        self.done.add(index)
        while self.next_index in self.done:
            self.done.discard(self.next_index)
            self.next_index += 1


@dataclasses.dataclass
class Attempt:
    """What a lead thread reports: the lead, and why it did not start, or its outcome, or its error."""

    lead: dict[str, Any]
    interrupted: str | None = None
    outcome: pipeline.Outcome | None = None
    error: Exception | None = None


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
    concurrency: int | None = None,
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
    # A sender's caps and pacing are one ledger taken one send at a time: such a run
    # sends one lead at a time (docs/deliverability.md).
    lanes = 1 if gate.sender_id else max(1, concurrency or get_settings().worker_lead_concurrency)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=lanes, thread_name_prefix=f"lead-{run_id}") as pool:
            _fill_batch(result, pool, lanes, db, run_id, job, owner, deadline, limit, provider, sleep, monotonic, gate)
    except Exception as exc:
        error = classify(exc)
        if not isinstance(error, TransientError):
            raise
        result.note(error.code, f"batch stopped at lead {result.next_index}: {error.message}")
        result.stop("firestore_unavailable")
        result.finished = False
    gate.conclude(result, int(job["totalLeads"]))
    return result


def _fill_batch(
    result: BatchResult, pool: concurrent.futures.Executor, lanes: int, db: Any, run_id: str, job: dict[str, Any],
    owner: str, deadline: float, limit: int, provider: Provider, sleep: Callable[[float], None],
    monotonic: Callable[[], float], gate: deliverability.Gate,
) -> None:
    config, total = job["config"], int(job["totalLeads"])
    template = templates_repo.get(db, config["templateId"])
    if template is None:
        result.job_failed = f"template {config['templateId']} no longer exists"
        result.stop("template_missing")
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
    carried = set(job.get("uncertainLeads") or [])
    reads = ControlReads(db, run_id)
    in_flight: set[concurrent.futures.Future] = set()
    started, cursor = 0, result.next_index

    def settle(until_below: int) -> None:
        """Books finished leads until fewer than `until_below` are in flight."""
        nonlocal in_flight
        while len(in_flight) >= until_below and in_flight:
            finished, in_flight = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: f.result().lead["index"]):
                booked = len(result.outcomes)
                _book(context, result, future.result())
                gate.settle(result, len(result.outcomes) > booked)

    try:
        while cursor < total and not result.stopped:
            size = min(total - cursor, max(limit - started, 1))
            by_index = {lead["index"]: lead for lead in repo.read_leads(db, run_id, cursor, size)}
            for index in range(cursor, cursor + size):
                if started >= limit:
                    result.stop("batch_size")
                    break
                cursor = index + 1
                lead = by_index.get(index)
                if lead is None:
                    result.note("lead_missing", f"lead {repo.lead_doc_id(index)} does not exist; skipped")
                    result.mark_done(index)
                    continue
                if lead["id"] in carried:
                    result.resolved.add(lead["id"])
                if lead.get("status") != "pending" and not _requeued(job, lead):
                    # A lead an earlier batch was unsure of was never counted, whatever its time.
                    _count_leftover(result, lead, progress_at, force=lead["id"] in carried)
                    result.mark_done(index)
                    continue
                settle(lanes)
                if result.stopped:
                    break
                if monotonic() >= deadline:
                    result.stop("time_budget")
                    break
                verdict = gate.admit(lead, deadline)
                if verdict == deliverability.DEFER:
                    continue  # stays pending; conclude() keeps nextIndex at the first deferred lead
                if verdict == deliverability.STOP:
                    result.stop("deliverability")  # conclude() names the wait, or fails the job
                    break
                attempts_before = result.attempts.get(lead["id"], 0)
                in_flight.add(pool.submit(_attempt, context, owner, reads, lead, attempts_before, deadline))
                started += 1
    finally:
        settle(1)
    result.scanned = cursor
    if not result.stopped:
        result.stop("end")
    result.finished = result.next_index >= total and not result.job_failed


def _attempt(context: pipeline.RunContext, owner: str, reads: ControlReads, lead: dict[str, Any],
             attempts_before: int, deadline: float) -> Attempt:
    """One lead, on a lead thread: the pause check, then the pipeline."""
    why = interruption(context.db, context.run_id, owner, reads)
    if why:
        return Attempt(lead, interrupted=why)
    try:
        return Attempt(lead, outcome=pipeline.process_lead(context, lead, attempts_before, deadline))
    except Exception as exc:  # booked (and sorted) by the batch thread
        return Attempt(lead, error=exc)


def _book(context: pipeline.RunContext, result: BatchResult, attempt: Attempt) -> None:
    """Books one lead's attempt; a lead that is not done stops the batch."""
    lead = attempt.lead
    if attempt.interrupted:
        result.stop(attempt.interrupted)
        return
    if attempt.error is not None:  # writing the lead's own outcome failed
        error = classify(attempt.error)
        if isinstance(error, ProviderQuotaError):
            # The mailbox's quota, not the lead's fault: it stays pending, attempt unused.
            result.quota = error
            result.note(error.code, f"stopped at lead {lead['id']}, which stays pending: {error.message}", lead)
            result.stop("provider_quota")
            return
        if isinstance(error, TransientError):
            if error.attempts:
                result.attempts[lead["id"]] = error.attempts
                _bound_attempts(result.attempts)
            result.note(error.code, f"stopped at lead {lead['id']}, which stays pending: {error.message}", lead)
            result.uncertain.add(lead["id"])
            result.stop("firestore_unavailable")
            return
        logs.log(logger, logging.ERROR, f"unexpected error on lead {lead['id']}: {attempt.error!r}",
                 runId=context.run_id)
        result.job_failed = f"internal error on lead {lead['id']}: {type(attempt.error).__name__}"
        result.note("internal", result.job_failed, lead)
        result.stop("internal_error")
        return
    outcome = attempt.outcome
    for message in outcome.transient_errors:
        result.note("transient", message, lead)
    if outcome.status == "retry_later":
        result.attempts[lead["id"]] = outcome.attempts
        _bound_attempts(result.attempts)
        if outcome.code == pipeline.IN_FLIGHT:
            result.note(pipeline.IN_FLIGHT, f"will check again: {outcome.message}", lead)
        else:
            result.note("retry_later", f"will try again (attempt {outcome.attempts} failed: {outcome.message})", lead)
        result.uncertain.add(lead["id"])
        result.stop("retry_later")
        return
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
    result.mark_done(lead["index"])


def _requeued(job: dict[str, Any], lead: dict[str, Any]) -> bool:
    """A lead failed before the job's last `retry` is pending, whether or not the retry's
    reset of it has landed (a retry too large for one commit resets its leads afterwards)."""
    retried, updated = job.get("retriedAt"), lead.get("updatedAt")
    return (lead.get("status") == "failed" and isinstance(retried, dt.datetime)
            and isinstance(updated, dt.datetime) and updated < retried)


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
