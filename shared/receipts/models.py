"""Query and response shapes of GET /api/lead-runs and GET /api/lead-runs/{runId}/receipts.

The Operations page depends on these shapes (docs/receipts.md): add fields, never
rename or remove one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.jobs.models import Counts, JobSummary
from shared.models import ApiModel

LeadStatus = Literal["pending", "sent", "drafted", "failed", "skipped"]

RUNS_DEFAULT_LIMIT = 20
RUNS_MAX_LIMIT = 100
RECEIPTS_DEFAULT_PAGE_SIZE = 50
RECEIPTS_MAX_PAGE_SIZE = 200
PAGE_TOKEN_MAX = 2000


def _blank_is_none(value: Any) -> Any:
    # `?status=` or `?pageToken=` from a form with nothing chosen means "not given".
    return None if value == "" else value


# --- queries ------------------------------------------------------------------------


class RunsQuery(ApiModel):
    """`limit` is the issue's name for the page size; `pageSize` (the API-wide name) is accepted too."""

    limit: int | None = Field(
        default=None, ge=1, le=RUNS_MAX_LIMIT, description=f"Runs per page, 1-{RUNS_MAX_LIMIT}; default {RUNS_DEFAULT_LIMIT}."
    )
    page_size: int | None = Field(default=None, ge=1, le=RUNS_MAX_LIMIT, description="Synonym of `limit`.")
    page_token: str | None = Field(
        default=None, max_length=PAGE_TOKEN_MAX, description="`nextPageToken` of the previous page of this listing."
    )

    _blanks = field_validator("limit", "page_size", "page_token", mode="before")(_blank_is_none)

    @model_validator(mode="after")
    def _one_size(self) -> "RunsQuery":
        if self.limit is not None and self.page_size is not None and self.limit != self.page_size:
            raise ValueError("give limit or pageSize, not two different sizes")
        return self

    @property
    def size(self) -> int:
        return self.limit or self.page_size or RUNS_DEFAULT_LIMIT


class ReceiptsQuery(ApiModel):
    page_size: int | None = Field(
        default=None, ge=1, le=RECEIPTS_MAX_PAGE_SIZE,
        description=f"Leads per page, 1-{RECEIPTS_MAX_PAGE_SIZE}; default {RECEIPTS_DEFAULT_PAGE_SIZE}. "
        "A filtered page whose leads are scattered through the run holds at most 30.",
    )
    page_token: str | None = Field(
        default=None, max_length=PAGE_TOKEN_MAX,
        description="`nextPageToken` of the previous page, for the same run and the same `status`.",
    )
    status: LeadStatus | None = Field(default=None, description="Only the leads in this status.")

    _blanks = field_validator("page_size", "page_token", "status", mode="before")(_blank_is_none)

    @property
    def size(self) -> int:
        return self.page_size or RECEIPTS_DEFAULT_PAGE_SIZE


# --- responses ----------------------------------------------------------------------


class Run(ApiModel):
    id: str
    name: str
    status: str
    total_leads: int
    template_id: str | None
    counts: Counts
    created_at: str | None
    updated_at: str | None


class RunList(ApiModel):
    runs: list[Run]
    next_page_token: str | None = None


class Action(ApiModel):
    id: str
    type: str
    status: str
    at: str | None
    attempt: int | None
    summary: str
    error: str | None
    provider_ids: dict[str, Any]
    idempotency_key: str | None


class Lead(ApiModel):
    id: str
    index: int
    email: str
    first_name: str
    last_name: str
    company: str
    time_zone: str
    fields: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    updated_at: str | None
    actions: list[Action]


class Receipts(ApiModel):
    run: Run
    job: JobSummary | None
    leads: list[Lead]
    next_page_token: str | None = None
