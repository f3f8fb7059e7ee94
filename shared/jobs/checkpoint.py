"""The checkpoint: a batch's one write of the job document, and the diagnostics it carries.

The checkpoint records nextIndex, counts, diagnostics, attemptsByLead and the next
status, and hands the lease to the next invocation; the run document mirrors status and
counts. It lands only while the batch's worker still holds the lease
(shared/store/job_writes.commit_checkpoint): a worker that lost it writes nothing, and
the next worker re-scans its leads.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
from typing import Any

from google.cloud import firestore

from shared import clock, logs
from shared.jobs import state
from shared.jobs.lease import LEGACY_RAW_TOKEN, new_owner
from shared.settings import Settings
from shared.store import job_writes
from shared.store import runs as repo

logger = logging.getLogger("mission_control.jobs.worker")

MAX_DIAGNOSTICS = 50
MAX_UNCERTAIN = 200


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


def add_counts(counts: dict[str, int] | None, deltas: collections.Counter) -> dict[str, int]:
    merged = {status: int((counts or {}).get(status, 0)) for status in repo.LEAD_STATUSES}
    for status, delta in deltas.items():
        merged[status] = merged.get(status, 0) + delta
    return merged


def checkpoint(
    db: Any, run_id: str, owner: str, result: Any, settings: Settings, on_unfinished: str = "handoff"
) -> Checkpoint:
    """The one job-document write of a batch (`result`: a loop.BatchResult). `on_unfinished`:
    "handoff" (background: lease to the next invocation) or "pause" (foreground: the rest
    waits for resume)."""
    recount = repo.count_leads(db, run_id) if result.finished and not result.job_failed else None
    successor = new_owner()

    def plan(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Checkpoint]:
        now = clock.now()
        counts = add_counts(job.get("counts"), result.deltas)
        diagnostics = list(result.diagnostics)
        if recount is not None and recount != counts:
            # Incremental counts should always match; if not, the lead documents win.
            logs.log(logger, logging.WARNING, "lead counts reconciled", runId=run_id, counted=counts, found=recount)
            diagnostics.append(diagnostic("counts_reconciled", f"counted {counts}, the leads say {recount}"))
            counts = recount
        status, lease = job["status"], None
        carried = set(job.get("uncertainLeads") or []) - result.resolved
        updates: dict[str, Any] = {
            "nextIndex": result.next_index,
            "counts": counts,
            "attemptsByLead": result.attempts,
            # Bounded by the leads in flight per batch; the recount at the end fixes the rest.
            "uncertainLeads": sorted(carried | result.uncertain)[:MAX_UNCERTAIN],
            "updatedAt": now,
            "progressAt": firestore.SERVER_TIMESTAMP,
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
            updates["workerTokenHash"] = None
            updates[LEGACY_RAW_TOKEN] = firestore.DELETE_FIELD
        if status != state.WAITING:
            updates["waitReason"], updates["wakeAt"] = None, None
        updates["status"] = status
        updates["lease"] = lease
        updates["diagnostics"] = kept_diagnostics(job, diagnostics)
        run_updates = {"status": status, "counts": counts, "updatedAt": now}
        return updates, run_updates, Checkpoint(status=status, next_owner=lease["owner"] if lease else None, counts=counts)

    done = job_writes.commit_checkpoint(db, run_id, owner, plan)
    if done is None:
        current = repo.read_job_control(db, run_id) or {}
        logs.log(logger, logging.WARNING, "lease lost before the checkpoint; the next worker re-scans this batch",
                 runId=run_id, owner=owner)
        return Checkpoint(status=current.get("status") or "unknown", next_owner=None, counts={}, lost=True)
    return done


def note_dispatch_failure(db: Any, run_id: str, lease_owner: str) -> None:
    """Every hand-off attempt failed: say so on the job. The sweeper restarts it once its lease lapses."""
    failed = diagnostic("dispatch_failed", "could not invoke the next worker; the sweeper restarts the job "
                        "once its lease lapses")
    # A job cancelled meanwhile keeps its lease (for the lead in flight) but needs no note.
    job_writes.note_if_leased(
        db, run_id, lease_owner, lambda job: kept_diagnostics(job, [failed]) if job.get("status") in state.ACTIVE else None,
    )
    logs.log(logger, logging.ERROR, "worker hand-off failed after every retry", runId=run_id)
