"""The batch worker: one invocation of POST /api/lead-runs/{runId}/jobs/worker.

1. authenticate with the job's worker token (its SHA-256 is stored; compared in
   constant time: shared/auth.py);
2. take the lease (lease.py): claim the previous invocation's hand-off once, or, without
   one, take a lapsed lease;
3. run the batch (loop.py): pending leads from `nextIndex`, several at a time, until
   `batchSize` leads or the time budget, each lead re-reading the job first so pause,
   cancel or a lost lease stop it within the leads in flight; before each lead
   shared/deliverability/gate.py says whether it may go now (its sending window, the
   sender's caps and pacing): a deferred lead stays pending, and a batch with nothing
   sendable checkpoints the job `waiting` for the sweeper to wake;
4. checkpoint (checkpoint.py): the batch's one job-document write, which hands the lease
   to the next invocation;
5. unless the job finished, was paused or cancelled, hand off to the next invocation
   (dispatch.py); what a hand-off cannot deliver, the sweeper (sweeper.py) restarts.

Crash safety: a lead's effects are one atomic commit with a deterministic outbox id
(shared/store/job_writes.py), so a worker killed mid-batch leaves leads at or past the
persisted `nextIndex` either done or untouched. The next worker re-scans from
`nextIndex`, skips done leads, and counts those committed after the last checkpoint
(`updatedAt` > `progressAt`, both server timestamps) because no checkpoint counted them.

Timing: the batch's budget leaves room for its checkpoint and its hand-off inside the
worker's timeout and the lease (`time_budget`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from shared import ids, logs
from shared.errors import Unauthenticated
from shared.jobs import dispatch
from shared.jobs.checkpoint import checkpoint, note_dispatch_failure
from shared.jobs.dispatch import Dispatcher, default_dispatcher
from shared.jobs.lease import acquire, check_worker
from shared.jobs.loop import run_batch
from shared.jobs.chain_models import WorkerResult
from shared.outreach.providers import Provider, get_provider
from shared.settings import Settings, get_settings
from shared.store import runs as repo

logger = logging.getLogger("mission_control.jobs.worker")

# The lease must outlive a batch: the budget is capped at this share of it.
BUDGET_SHARE_OF_LEASE = 0.8
# What a batch leaves, inside the worker's timeout, for its checkpoint (with the final
# recount) and its hand-off, whose retries are bounded by what is left (dispatch.py).
BOOKKEEPING_SECONDS = 10.0


def time_budget(config: dict[str, Any], settings: Settings) -> float:
    budget = config.get("timeBudgetSeconds") or settings.worker_time_budget_seconds
    ceiling = min(settings.worker_lease_seconds * BUDGET_SHARE_OF_LEASE,
                  settings.worker_timeout_seconds - BOOKKEEPING_SECONDS - dispatch.MAX_RETRY_SECONDS)
    return max(0.5, min(float(budget), ceiling))


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
    job = check_worker(repo.get_job(db, run_id), token)
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
