"""Base for every request and response model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, GetJsonSchemaHandler, ValidationError, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from shared import slots
from shared.errors import InvalidArgument
from shared.ids import ID_PATTERN, is_valid_id

M = TypeVar("M", bound=BaseModel)


class ApiModel(BaseModel):
    """Request models refuse unknown fields, so a typo is a 400 rather than silently ignored.

    JSON bodies should use pydantic's Strict* types for bools and ints ("yes" is not
    true); query-string models stay lax because every query value arrives as text.

    null means absent: an optional field sent as `null` takes its default, as in
    Google's JSON APIs (proto3's JSON mapping reads null as the field's default), so
    one empty CSV cell does not refuse a whole request. A required field sent as null
    is still a 400, and so is a null for a name the model does not have. A model whose
    null has another meaning (a PATCH, where it would erase) sets NULL_IS_ABSENT = False.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
        defer_build=True,
    )

    NULL_IS_ABSENT: ClassVar[bool] = True

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_absent(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None or not cls.NULL_IS_ABSENT or info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        return value if field.is_required() else field.get_default(call_default_factory=True)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """The OpenAPI document says what the API accepts: an optional field may be null.
        (Said in both modes, so one schema serves requests and responses alike.)"""
        schema = handler(core_schema)
        if not cls.NULL_IS_ABSENT:
            return schema
        resolved = handler.resolve_ref_schema(schema)
        required = set(resolved.get("required", ()))
        for name, prop in resolved.get("properties", {}).items():
            if name in required or _allows_null(prop):
                continue
            resolved["properties"][name] = {"anyOf": [_without_annotations(prop), {"type": "null"}],
                                             **_annotations(prop)}
        return schema


_ANNOTATIONS = ("title", "description", "default", "examples")


def _allows_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(option.get("type") == "null" for option in prop.get("anyOf", ()))


def _annotations(prop: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in prop.items() if key in _ANNOTATIONS}


def _without_annotations(prop: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in prop.items() if key not in _ANNOTATIONS}


def _check_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError(f"must match {ID_PATTERN}")
    return value


ResourceId = Annotated[str, AfterValidator(_check_id)]


def _wall_minutes(allow_24: bool):
    def check(value: str) -> str:
        slots.parse_wall_minutes(value, allow_24=allow_24)  # raises ValueError with the reason
        return value

    return check


# A local wall time "HH:MM" opening or closing a span of hours (a calendar's working hours,
# a run's sending window); only a closing time may be "24:00".
WallStart = Annotated[str, AfterValidator(_wall_minutes(allow_24=False))]
WallEnd = Annotated[str, AfterValidator(_wall_minutes(allow_24=True))]


def validate_model(model: type[M], data: Any) -> M:
    """`data` as `model`, or InvalidArgument with one detail per wrong field: the one
    validation of every request body and query (shared/http.py calls it too)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument("the request has invalid fields", field_details(exc)) from None


def field_details(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        # shared/firestore_limits.py names the offending key inside a free-form map.
        loc = (*err["loc"], *err.get("ctx", {}).get("subpath", ()))
        field = ".".join(str(part) for part in loc) or "(body)"
        details.append({"field": field, "message": err["msg"], "type": err["type"]})
    return details
