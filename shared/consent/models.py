"""Request and response shapes of /api/suppressions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictStr, model_validator

from shared.models import ApiModel

MAX_IMPORT_ROWS = 10_000
MAX_IMPORT_BYTES = 2 * 1024 * 1024


class SuppressionCreate(ApiModel):
    """Exactly one of `email` or `domain`."""

    email: StrictStr | None = Field(default=None, max_length=320)
    domain: StrictStr | None = Field(default=None, max_length=253)
    reason: StrictStr = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _one_target(self) -> "SuppressionCreate":
        if (self.email is None) == (self.domain is None):
            raise ValueError("give exactly one of email or domain")
        return self


class ImportRequest(ApiModel):
    """The JSON form of an import; a text/csv body is the same CSV."""

    csv: StrictStr = Field(max_length=MAX_IMPORT_BYTES)
    reason: StrictStr = Field(default="", max_length=500)


class ListQuery(ApiModel):
    page_size: int = Field(default=50, ge=1, le=100)
    page_token: str | None = Field(default=None, max_length=2000)
    # A prefix of the address or domain; the page is then in alphabetical order.
    q: str | None = Field(default=None, min_length=1, max_length=320)


class Suppression(ApiModel):
    id: str
    kind: Literal["email", "domain"]
    value: str
    reason: str
    source: str
    created_at: str | None
    created_by: str | None = None


class SuppressionList(ApiModel):
    suppressions: list[Suppression]
    next_page_token: str | None = None


class RowError(ApiModel):
    line: int
    value: str
    message: str


class ImportResult(ApiModel):
    added: int
    already: int
    rejected: list[RowError]


class Removed(ApiModel):
    id: str
