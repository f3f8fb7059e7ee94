"""What the worker chain answers: one batch of the worker, one pass of the sweeper.

Apart from shared/jobs/models.py so the worker function, which answers only these,
does not build every view of a job at its cold start (docs/architecture.md, "Cold start").
"""

from __future__ import annotations

from shared.models import ApiModel


class SweepRequest(ApiModel):
    """The body of POST /api/jobs/sweep: nothing (Cloud Scheduler sends none); `{}` is accepted."""


class SweepResult(ApiModel):
    """POST /api/jobs/sweep: the runs whose chain the sweeper restarted, of `checked` active jobs."""

    resumed: list[str]
    checked: int


class WorkerResult(ApiModel):
    run_id: str
    status: str
    processed: int
    next_index: int
    total_leads: int
    stop_reason: str
    dispatched: bool | None = None
