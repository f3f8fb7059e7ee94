"""Request and response shapes of POST /api/calendar/schedule.

Cross-field rules (exactly one of candidateStarts / slotSearch, end after start, ...)
are field validators on the later field, so a 400 names the field to fix.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared import slots
from shared.models import ApiModel, ResourceId, WallEnd, WallStart

MAX_WINDOW_DAYS = 366
MAX_BUSY = 5000
MAX_CANDIDATE_STARTS = 200
MAX_CANDIDATES = 100
MAX_DURATION_MINUTES = 24 * 60  # shared.store.bookings.MAX_BOOKING_MINUTES relies on it
MIN_STEP_MINUTES = 5  # bounds a 366-day walk to about 100,000 grid points
DEFAULT_DURATION_MINUTES = 30
DEFAULT_WINDOW_DAYS = 7
CALENDAR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$"
# One '@', no spaces, a dot in the domain: enough to refuse typos without a
# dependency; the calendar provider is the real judge of an address.
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


def _text_only(value: Any) -> Any:
    # pydantic would read a bare number as a Unix time; the contract is ISO-8601 text.
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string with an offset, e.g. 2030-06-03T09:00:00-04:00")
    return value


def _not_after_year_9998(value: dt.datetime) -> dt.datetime:
    # Adding a duration to the last representable instant would overflow: refuse it here.
    if value.astimezone(dt.timezone.utc).year > 9998:
        raise ValueError("is too far in the future")
    return value


OffsetDateTime = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_not_after_year_9998)]


def _known_zone(name: str | None) -> str | None:
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone name such as America/New_York") from None
    return name


class BusyInterval(ApiModel):
    start: OffsetDateTime
    end: OffsetDateTime

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: dt.datetime, info: ValidationInfo) -> dt.datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
        return end


class WorkingHours(ApiModel):
    start: WallStart = "09:00"
    # "24:00" is the end of the day; an end before the start ("22:00"-"02:00") is on
    # the next day (shared/slots.py).
    end: WallEnd = "17:00"

    @field_validator("end")
    @classmethod
    def _not_empty(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and slots.parse_wall_minutes(end, allow_24=True) == slots.parse_wall_minutes(start):
            raise ValueError("working hours must not end when they start (00:00-24:00 is the whole day)")
        return end

    @property
    def start_minute(self) -> int:
        return slots.parse_wall_minutes(self.start)

    @property
    def end_minute(self) -> int:
        return slots.parse_wall_minutes(self.end, allow_24=True)


class SlotSearch(ApiModel):
    time_zone: str = Field(max_length=64)
    start_date: dt.date
    end_date: dt.date | None = None  # inclusive
    days: StrictInt | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS, validate_default=True)
    working_hours: WorkingHours = WorkingHours()
    working_days: list[Annotated[StrictInt, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5], min_length=1, max_length=7
    )
    duration_minutes: StrictInt | None = Field(default=None, ge=1, le=MAX_DURATION_MINUTES)
    step_minutes: StrictInt = Field(default=30, ge=MIN_STEP_MINUTES, le=24 * 60)
    min_notice_minutes: StrictInt = Field(default=0, ge=0, le=MAX_WINDOW_DAYS * 24 * 60)
    max_candidates: StrictInt = Field(default=10, ge=1, le=MAX_CANDIDATES)
    busy: list[BusyInterval] = Field(default=[], max_length=MAX_BUSY)

    _known_zone = field_validator("time_zone")(_known_zone)

    @field_validator("end_date")
    @classmethod
    def _window(cls, end: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None:
            if end < start:
                raise ValueError("must not be before startDate")
            if (end - start).days + 1 > MAX_WINDOW_DAYS:
                raise ValueError(f"the search window may span at most {MAX_WINDOW_DAYS} days")
        return end

    @field_validator("days")
    @classmethod
    def _one_length(cls, days: int | None, info: ValidationInfo) -> int | None:
        if days is not None and info.data.get("end_date") is not None:
            raise ValueError("send endDate or days, not both")
        return days

    @field_validator("working_days")
    @classmethod
    def _distinct(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("must not repeat a day")
        return days

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def last_day(self) -> dt.date:
        if self.end_date is not None:
            return self.end_date
        return self.start_date + dt.timedelta(days=(self.days or DEFAULT_WINDOW_DAYS) - 1)


Email = Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)]


class Attendee(ApiModel):
    email: Email
    display_name: str | None = Field(default=None, max_length=200)


class LeadInfo(ApiModel):
    email: Email | None = None
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)

    _known_zone = field_validator("time_zone")(_known_zone)


class ScheduleRequest(ApiModel):
    candidate_starts: list[OffsetDateTime] | None = Field(
        default=None, min_length=1, max_length=MAX_CANDIDATE_STARTS
    )
    slot_search: SlotSearch | None = None
    duration_minutes: StrictInt | None = Field(default=None, ge=1, le=MAX_DURATION_MINUTES)
    title: str = Field(default="Meeting", min_length=1, max_length=300)
    description: str = Field(default="", max_length=5000)
    attendees: list[Attendee] = Field(default=[], max_length=50)
    lead: LeadInfo | None = None
    calendar_id: str | None = Field(default=None, pattern=CALENDAR_ID_PATTERN)
    book: StrictBool = False
    run_id: ResourceId | None = None
    lead_doc_id: ResourceId | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_absent_fields(cls, data: Any) -> Any:
        # The cross-field checks below run on these fields even when they are
        # absent; an explicit null makes pydantic name them by their wire name.
        if isinstance(data, dict):
            for field in ("slot_search", "duration_minutes", "lead_doc_id"):
                wire = cls.model_fields[field].alias
                if wire not in data and field not in data:
                    data = {**data, wire: None}
        return data

    @field_validator("slot_search")
    @classmethod
    def _exactly_one_source(cls, search: SlotSearch | None, info: ValidationInfo) -> SlotSearch | None:
        if "candidate_starts" not in info.data:
            return search  # candidateStarts is invalid and already reported
        given = info.data["candidate_starts"] is not None
        if given and search is not None:
            raise ValueError("send candidateStarts or slotSearch, not both")
        if not given and search is None:
            raise ValueError("send either candidateStarts or slotSearch")
        return search

    @field_validator("duration_minutes")
    @classmethod
    def _one_duration(cls, minutes: int | None, info: ValidationInfo) -> int | None:
        search = info.data.get("slot_search")
        inner = search.duration_minutes if search is not None else None
        if minutes is not None and inner is not None and minutes != inner:
            raise ValueError("disagrees with slotSearch.durationMinutes")
        return minutes

    @field_validator("lead_doc_id")
    @classmethod
    def _receipt_target(cls, lead_doc_id: str | None, info: ValidationInfo) -> str | None:
        if "run_id" in info.data and (info.data["run_id"] is None) != (lead_doc_id is None):
            raise ValueError("runId and leadDocId go together: send both to attach a receipt, or neither")
        return lead_doc_id

    @property
    def minutes(self) -> int:
        """The meeting length: slotSearch's, else the top-level one, else 30."""
        inner = self.slot_search.duration_minutes if self.slot_search is not None else None
        return inner or self.duration_minutes or DEFAULT_DURATION_MINUTES


class Candidate(ApiModel):
    start: str  # in the search's time zone (or the offset the candidate start came with)
    end: str
    start_utc: str
    end_utc: str


class Booking(ApiModel):
    id: str
    calendar_id: str
    start: str
    end: str
    start_utc: str
    end_utc: str
    time_zone: str | None
    title: str
    status: str
    backend: str
    event_id: str | None = None
    html_link: str | None = None
    receipt_id: str | None = None
    created_at: str


class ScheduleResult(ApiModel):
    candidates: list[Candidate]
    booking: Booking | None = None
