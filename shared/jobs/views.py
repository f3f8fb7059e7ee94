"""The job document as readers show it: one allow-list for the jobs API and the receipts page.

Fields are read one by one, tolerating what a writer left out or mistyped (a reader must
not 500 because of a stored value), and nothing is copied that is not named here: that
is how the worker token's hash and the lease owner never reach a response.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared import clock
from shared.jobs import state
from shared.jobs.models import Counts, Diagnostic, Job, JobConfigView, JobSummary


def read_int(value: Any, default: int | None = 0) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def read_str(value: Any, default: str | None = "") -> str | None:
    return value if isinstance(value, str) else default


def read_time(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return clock.rfc3339(value)
    if isinstance(value, str):
        try:
            return clock.rfc3339(clock.parse_rfc3339(value))
        except ValueError:
            return None
    return None


def read_counts(value: Any) -> Counts:
    source = value if isinstance(value, dict) else {}
    return Counts(**{name: read_int(source.get(name)) for name in Counts.model_fields})


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def summary(doc: dict[str, Any], now: dt.datetime, lease_seconds: float) -> JobSummary:
    """The job summary of `doc` (a stored job document)."""
    return JobSummary(**_summary_fields(doc, now, lease_seconds))


def job_view(run_id: str, doc: dict[str, Any], now: dt.datetime, lease_seconds: float) -> Job:
    """The jobs API's view: the summary, the mode, attemptsByLead, progressAt and the write count."""
    attempts = _map(doc.get("attemptsByLead"))
    return Job(
        **_summary_fields(doc, now, lease_seconds),
        run_id=run_id,
        mode=read_str(doc.get("mode")) or "background",
        attempts_by_lead={str(k): read_int(v) for k, v in attempts.items()},
        progress_at=read_time(doc.get("progressAt")),
        writes=read_int(doc.get("writes")),
    )


def _summary_fields(doc: dict[str, Any], now: dt.datetime, lease_seconds: float) -> dict[str, Any]:
    config, lease = _map(doc.get("config")), _map(doc.get("lease"))
    budget = config.get("timeBudgetSeconds")
    diagnostics = doc.get("diagnostics") if isinstance(doc.get("diagnostics"), list) else []
    waiting = doc.get("status") == state.WAITING
    return dict(
        status=read_str(doc.get("status")) or "queued",
        next_index=read_int(doc.get("nextIndex")),
        total_leads=read_int(doc.get("totalLeads")),
        counts=read_counts(doc.get("counts")),
        diagnostics=[
            Diagnostic(
                at=read_time(d.get("at")),
                lead_index=read_int(d.get("leadIndex"), None),
                lead_doc_id=read_str(d.get("leadDocId"), None),
                code=read_str(d.get("code"), None),
                message=read_str(d.get("message"), None),
            )
            for d in diagnostics
            if isinstance(d, dict)
        ],
        config=JobConfigView(
            template_id=read_str(config.get("templateId"), None),
            batch_size=read_int(config.get("batchSize"), None),
            max_attempts=read_int(config.get("maxAttempts"), None),
            draft_first=config.get("draftFirst") if isinstance(config.get("draftFirst"), bool) else None,
            time_budget_seconds=float(budget)
            if isinstance(budget, (int, float)) and not isinstance(budget, bool)
            else None,
            sender_id=read_str(config.get("senderId"), None),
            send_window=_map(config.get("sendWindow")) or None,
            skip_if_contacted_within_days=read_int(config.get("skipIfContactedWithinDays"), None),
        ),
        stalled=state.is_stalled(doc, now, lease_seconds),
        lease_expires_at=read_time(lease.get("expiresAt")) if doc.get("status") in state.ACTIVE else None,
        created_at=read_time(doc.get("createdAt")),
        updated_at=read_time(doc.get("updatedAt")),
        started_at=read_time(doc.get("startedAt")),
        finished_at=read_time(doc.get("finishedAt")),
        wake_at=read_time(doc.get("wakeAt")) if waiting else None,
        wait_reason=read_str(doc.get("waitReason"), None) if waiting else None,
        sender_id=read_str(config.get("senderId"), None),
    )
