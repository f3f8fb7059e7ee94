"""Base for every request and response model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.errors import InvalidArgument
from shared.ids import ID_PATTERN, is_valid_id

M = TypeVar("M", bound=BaseModel)


class ApiModel(BaseModel):
    """Request models refuse unknown fields, so a typo is a 400 rather than silently ignored.

    JSON bodies should use pydantic's Strict* types for bools and ints ("yes" is not
    true); query-string models stay lax because every query value arrives as text.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
    )

    def to_api(self) -> dict:
        return self.model_dump(by_alias=True, mode="json", exclude_none=False)


def _check_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError(f"must match {ID_PATTERN}")
    return value


ResourceId = Annotated[str, AfterValidator(_check_id)]


def validate_model(model: type[M], data: Any) -> M:
    """`data` as `model`, or InvalidArgument with one detail per wrong field (for services
    that parse without the HTTP layer; shared/http.validate answers the same way)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidArgument("the request has invalid fields", details) from None
