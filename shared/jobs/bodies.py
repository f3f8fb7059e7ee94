"""What POST /api/lead-runs/{runId}/jobs accepts: the start and control bodies.

Apart from shared/jobs/models.py (the responses) because only the jobs function reads
them: the worker and the receipts function import the responses alone, and building
these (their validators, the sending window) is cold-start time they would not use.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, RootModel, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from shared.deliverability.models import SendWindowIn
from shared.errors import InvalidArgument, field_error
from shared.firestore_limits import storable
from shared.models import ApiModel, ResourceId, validate_model

MAX_LEADS = 10_000
# 10,000 leads of a few hundred bytes each: the jobs POST accepts bodies up to this.
MAX_START_BYTES = 10 * 1024 * 1024
MAX_FIELDS = 50
MAX_FIELD_CHARS = 2_000
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

ACTIONS = ("start", "pause", "resume", "retry", "cancel")


class JobConfig(ApiModel):
    template_id: ResourceId
    batch_size: StrictInt = Field(default=100, ge=1, le=500)
    max_attempts: StrictInt = Field(default=3, ge=1, le=10)
    # null: the template's own draftFirst decides.
    draft_first: StrictBool | None = None
    # null: the deployment's WORKER_TIME_BUDGET_SECONDS (background) / 50 s (foreground).
    time_budget_seconds: StrictFloat | None = Field(default=None, ge=1, le=540)
    # Deliverability (docs/deliverability.md): the mailbox whose caps and pacing apply,
    # and the local hours a lead may be sent to.
    sender_id: ResourceId | None = None
    send_window: SendWindowIn | None = None
    # A lead whose address any run sent to within this many days is skipped (docs/consent.md).
    skip_if_contacted_within_days: StrictInt | None = Field(default=None, ge=1, le=3650)


FieldValue = Union[StrictStr, StrictInt, StrictFloat, StrictBool, None]


class LeadIn(ApiModel):
    """One lead. The address is checked when the lead is processed, so one bad row fails
    alone instead of refusing the whole list."""

    email: StrictStr = Field(max_length=320)
    first_name: StrictStr = Field(default="", max_length=200)
    last_name: StrictStr = Field(default="", max_length=200)
    company: StrictStr = Field(default="", max_length=200)
    time_zone: StrictStr = Field(default="", max_length=64)
    fields: Annotated[dict[str, FieldValue], storable("fields")] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _bounded_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields")
        for name, item in value.items():
            if not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"field name {name[:70]!r} must be letters, digits or '_' (1-64), not starting with a digit")
            if isinstance(item, str) and len(item) > MAX_FIELD_CHARS:
                raise ValueError(f"field {name!r} is longer than {MAX_FIELD_CHARS} characters")
        return value

    def document_fields(self) -> dict[str, Any]:
        return {
            "email": self.email.strip(),
            "firstName": self.first_name,
            "lastName": self.last_name,
            "company": self.company,
            "timeZone": self.time_zone,
            "fields": dict(self.fields),
        }


class StartRequest(ApiModel):
    action: Literal["start"]
    mode: Literal["background", "foreground"]
    config: JobConfig
    leads: list[LeadIn] | None = Field(default=None, min_length=1, max_length=MAX_LEADS)
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)


class ControlRequest(ApiModel):
    action: Literal["pause", "resume", "retry", "cancel"]


class JobRequest(RootModel[Union[StartRequest, ControlRequest]]):
    """The body of POST /api/lead-runs/{runId}/jobs (for the API document; parse_request reads it)."""

    model_config = ConfigDict(defer_build=True)  # as ApiModel: built when the API document is


def parse_request(data: Any) -> StartRequest | ControlRequest:
    """Picks the model by `action` first, so every 400 names a plain field ("mode", "leads.3.email")."""
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object", [{"field": "(body)", "message": "not an object"}])
    action = data.get("action")
    if action not in ACTIONS:
        raise field_error("action", f"must be one of {', '.join(ACTIONS)}")
    return validate_model(StartRequest if action == "start" else ControlRequest, data)
