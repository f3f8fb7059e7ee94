"""Request and response shapes of /api/lead-runs/{runId}/drafts… and …/leads/{leadDocId}:retry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, StrictStr, model_validator

from shared.models import ApiModel, ResourceId

MAX_SUBJECT = 300
MAX_BODY = 50_000
MAX_BULK = 100


class DraftsQuery(ApiModel):
    page_size: int = Field(default=25, ge=1, le=100)
    page_token: str | None = Field(default=None, max_length=2000)


class DraftPatch(ApiModel):
    subject: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_SUBJECT)
    body: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_BODY)
    # Or the If-Match header; one of the two is required.
    version: StrictInt | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _something(self) -> "DraftPatch":
        if self.subject is None and self.body is None:
            raise ValueError("give subject, body or both")
        return self


class SendRequest(ApiModel):
    """Optional: the version the operator reviewed; a newer one is 409."""

    version: StrictInt | None = Field(default=None, ge=1)


class BulkSendRequest(ApiModel):
    lead_doc_ids: list[ResourceId] = Field(min_length=1, max_length=MAX_BULK)


class DraftLead(ApiModel):
    index: int
    email: str
    first_name: str
    last_name: str
    company: str
    time_zone: str


class Draft(ApiModel):
    lead_doc_id: str
    run_id: str
    to: str
    subject: str
    text: str
    html: str
    version: int
    status: Literal["pending", "sending", "sent", "discarded", "skipped"]
    lead: DraftLead
    updated_at: str | None = None
    sending_at: str | None = Field(default=None, description=(
        "While `sending`: when the send claimed the draft. A claim older than 90 s belongs to a send that was "
        "interrupted or never heard back; Send (or Discard) settles it by searching the mailbox."))


class DraftList(ApiModel):
    drafts: list[Draft]
    next_page_token: str | None = None


class SendOutcome(ApiModel):
    """sent: this call sent it; already_sent: an earlier call did; skipped: consent said no."""

    lead_doc_id: str
    outcome: Literal["sent", "already_sent", "skipped", "conflict", "not_found", "failed"]
    version: int | None = None
    content_sha256: str | None = None
    reason: str | None = None


class BulkSendResult(ApiModel):
    results: list[SendOutcome]


class RetryRequest(ApiModel):
    """An empty object (or no body): the lead is named by the path."""


class RetryResult(ApiModel):
    lead_doc_id: str
    status: str
    job_status: str
