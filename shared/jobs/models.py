"""Response shapes of /api/lead-runs/{runId}/jobs and of every reader of a job (the
request bodies are in shared/jobs/bodies.py, the worker's and sweeper's answers in
shared/jobs/chain_models.py)."""

from __future__ import annotations

from typing import Any

from shared.models import ApiModel

class Counts(ApiModel):
    pending: int = 0
    sent: int = 0
    drafted: int = 0
    failed: int = 0
    skipped: int = 0


class Diagnostic(ApiModel):
    at: str | None = None
    lead_index: int | None = None
    lead_doc_id: str | None = None
    code: str | None = None
    message: str | None = None


class JobConfigView(ApiModel):
    template_id: str | None = None
    batch_size: int | None = None
    max_attempts: int | None = None
    draft_first: bool | None = None
    time_budget_seconds: float | None = None
    sender_id: str | None = None
    send_window: dict[str, Any] | None = None
    skip_if_contacted_within_days: int | None = None


class JobSummary(ApiModel):
    """The job as every reader shows it (the receipts page too), built by
    shared/jobs/views.py from an allow-list: `workerTokenHash` and `lease.owner` are
    never copied, whatever the stored document holds."""

    status: str
    next_index: int
    total_leads: int
    counts: Counts
    diagnostics: list[Diagnostic]
    config: JobConfigView
    stalled: bool
    lease_expires_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    # While `waiting` (docs/deliverability.md): when it may send again, and why not before.
    wake_at: str | None = None
    wait_reason: str | None = None
    sender_id: str | None = None


class Job(JobSummary):
    """The jobs API's view: the summary plus what the operator of this job needs."""

    id: str = "default"
    run_id: str
    mode: str
    attempts_by_lead: dict[str, int]
    progress_at: str | None = None
    writes: int = 0


class JobEnvelope(ApiModel):
    job: Job | None


class LeadResult(ApiModel):
    index: int
    lead_doc_id: str
    email: str
    status: str
    action_id: str | None = None
    error: str | None = None


class StartResponse(ApiModel):
    """background: {job}; foreground: {job, results} with one entry per lead in index order."""

    job: Job
    results: list[LeadResult] | None = None
