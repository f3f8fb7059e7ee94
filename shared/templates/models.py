"""Request and response shapes of /api/templates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from shared.firestore_limits import StorableText
from shared.models import ApiModel
from shared.outreach import render

NAME_MAX = 200
SUBJECT_MAX = 998  # RFC 5322's line limit: a longer subject cannot be sent unfolded
BODY_MAX = 100_000


def _check_placeholders(value: str | None) -> str | None:
    if value is None:
        return value
    found = render.problems(value)
    if found:
        raise ValueError("; ".join(p.message for p in found))
    return value


class TemplateFields(ApiModel):
    name: StorableText = Field(min_length=1, max_length=NAME_MAX)
    channel: Literal["email"] = "email"
    subject: StorableText = Field(min_length=1, max_length=SUBJECT_MAX)
    body: StorableText = Field(min_length=1, max_length=BODY_MAX)
    draft_first: StrictBool = False

    _placeholders = field_validator("subject", "body")(_check_placeholders)


class TemplateCreate(TemplateFields):
    pass


class TemplateReplace(TemplateFields):
    """PUT: every field, plus the version the editor started from (or If-Match)."""

    version: StrictInt | None = Field(default=None, ge=1)


class TemplatePatch(ApiModel):
    NULL_IS_ABSENT = False  # here null would mean "erase", which _no_nulls refuses

    name: StorableText | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    channel: Literal["email"] | None = None
    subject: StorableText | None = Field(default=None, min_length=1, max_length=SUBJECT_MAX)
    body: StorableText | None = Field(default=None, min_length=1, max_length=BODY_MAX)
    draft_first: StrictBool | None = None
    version: StrictInt | None = Field(default=None, ge=1)

    _placeholders = field_validator("subject", "body")(_check_placeholders)

    @model_validator(mode="after")
    def _no_nulls(self) -> "TemplatePatch":
        # An explicit null would erase a required field; only omission means "keep".
        for name in self.model_fields_set - {"version"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be omitted but not null")
        return self


class ListQuery(ApiModel):
    page_size: int = Field(default=50, ge=1, le=100)
    page_token: str | None = Field(default=None, max_length=2000)


class DeleteQuery(ApiModel):
    version: int | None = Field(default=None, ge=1)


class Template(ApiModel):
    id: str
    name: str
    channel: str
    subject: str
    body: str
    draft_first: bool
    version: int
    created_at: str
    updated_at: str


class Deleted(ApiModel):
    id: str
    deleted: bool = True


class TemplateList(ApiModel):
    templates: list[Template]
    next_page_token: str | None = None
