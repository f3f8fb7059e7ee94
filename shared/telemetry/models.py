"""The error report as the browser sends it, and as it is kept once made safe.

Unlike the other request models, unknown fields are dropped rather than refused:
the reporter runs in whatever version of the Operations page a browser has
cached, and an old or newer page must still be able to report its errors.
Types are strict (a number where text belongs is a 400, not silently coerced).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import ConfigDict, Field, JsonValue, StrictStr, field_validator, model_validator

from shared.models import ApiModel

Source = Literal["auto", "manual"]
Severity = Literal["debug", "info", "warning", "error", "fatal"]


class ErrorReportIn(ApiModel):
    model_config = ConfigDict(extra="ignore")

    source: Source = Field(description="auto: window.onerror / unhandledrejection; manual: filed by an operator")
    message: StrictStr | None = None
    stack: StrictStr | None = None
    url: StrictStr | None = None
    run_id: StrictStr | None = None
    lead_doc_id: StrictStr | None = None
    description: StrictStr | None = None
    severity: Severity = "error"
    user_agent: StrictStr | None = None
    release: StrictStr | None = None
    context: dict[str, JsonValue] | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        # "Error", "WARNING" and the console's "warn" all mean what they say.
        if isinstance(value, str):
            value = value.strip().lower()
            return {"warn": "warning", "critical": "fatal"}.get(value, value)
        return value

    @model_validator(mode="after")
    def _has_content(self) -> "ErrorReportIn":
        if not any(text and text.strip() for text in (self.message, self.stack, self.description)):
            raise ValueError("a report needs at least one of message, stack or description")
        return self


@dataclasses.dataclass(frozen=True)
class SafeReport:
    """A report after scrubbing and bounding: the only form that is stored or logged."""

    source: str
    severity: str
    message: str | None
    stack: str | None
    url: str | None
    run_id: str | None
    lead_doc_id: str | None
    description: str | None
    user_agent: str | None
    release: str | None
    context: dict[str, Any] | None
    truncated: tuple[str, ...]


class ReportAccepted(ApiModel):
    """202 body: the id the Operations page shows the operator, and the group it joined."""

    report_id: str
    fingerprint: str
