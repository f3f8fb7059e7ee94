"""The deliverability part of a run's start config: `senderId` and `sendWindow`."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictInt, ValidationInfo, field_validator

from shared import slots
from shared.models import ApiModel, WallEnd, WallStart


class SendWindowIn(ApiModel):
    """Local hours a lead may be sent to, in its own zone (shared/deliverability/window.py)."""

    start: WallStart
    # An end before the start is on the next day (22:00-02:00); "24:00" is midnight.
    end: WallEnd
    days: list[Annotated[StrictInt, Field(ge=1, le=7)]] = Field(default=[1, 2, 3, 4, 5], min_length=1, max_length=7)
    fallback_time_zone: str = Field(max_length=64)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and slots.parse_wall_minutes(end, allow_24=True) == slots.parse_wall_minutes(start):
            raise ValueError("a window must not end when it starts (00:00-24:00 is the whole day)")
        return end

    @field_validator("days")
    @classmethod
    def _distinct(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("must not repeat a day")
        return days

    @field_validator("fallback_time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone name such as America/New_York") from None
        return name

    def document(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "days": sorted(self.days), "fallbackTimeZone": self.fallback_time_zone}
