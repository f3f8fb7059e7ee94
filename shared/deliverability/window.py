"""Sending windows in a lead's local time. Pure: no I/O, no clock.

A window is `start`-`end` local wall time on the ISO weekdays in `days`, read in the
lead's own zone (the fallback zone when the lead has none or an unknown one). The
rules are slot search's (shared/slots.py): the window opening on day D is the elapsed
interval from the first instant the clock reads `start` on D to the first instant it
reads `end`, on D + 1 when `end` is before `start` (`22:00`-`02:00`); a `start` in a
spring-forward gap opens at the jump itself; the repeated fall-back hour is inside the
window once, as elapsed time. `days` counts the day a window opens: a Friday-only
22:00-02:00 window is open until Saturday 02:00.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared import slots

UTC = dt.timezone.utc
ALL_DAYS = frozenset(range(1, 8))


@dataclasses.dataclass(frozen=True)
class SendWindow:
    start_minute: int  # minutes after local midnight
    end_minute: int  # up to 1440 ("24:00"); below start_minute: on the next day
    days: frozenset[int] = ALL_DAYS  # ISO weekdays the window opens on
    fallback_zone: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def parse(cls, start: str, end: str, days, fallback_time_zone: str) -> "SendWindow":
        start_minute = slots.parse_wall_minutes(start)
        end_minute = slots.parse_wall_minutes(end, allow_24=True)
        if start_minute == end_minute:
            raise ValueError("a window must not end when it starts")
        return cls(start_minute, end_minute, frozenset(days), ZoneInfo(fallback_time_zone))


def zone_of(window: SendWindow, time_zone: str | None) -> ZoneInfo:
    """The lead's zone if it names a real IANA zone, else the window's fallback."""
    if isinstance(time_zone, str) and time_zone:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return window.fallback_zone


def _interval(window: SendWindow, zone: ZoneInfo, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    midnight = dt.datetime.combine(day, dt.time())
    opens = slots.first_instant_at(midnight + dt.timedelta(minutes=window.start_minute), zone)
    closing = slots.closing_minute(window.start_minute, window.end_minute)
    closes = slots.first_instant_at(midnight + dt.timedelta(minutes=closing), zone)
    return opens, closes


def _intervals_from(window: SendWindow, zone: ZoneInfo, instant: dt.datetime):
    # The window opening the day before may still be open (across midnight); a week
    # and a day later every weekday has come round once.
    day = instant.astimezone(zone).date() - dt.timedelta(days=1)
    for _ in range(9):
        if day.isoweekday() in window.days:
            yield _interval(window, zone, day)
        day += dt.timedelta(days=1)


def is_open(window: SendWindow, zone: ZoneInfo, instant: dt.datetime) -> bool:
    """Whether a lead in `zone` may be sent to at `instant` (aware)."""
    return next_open(window, zone, instant) == instant.astimezone(UTC)


def next_open(window: SendWindow, zone: ZoneInfo, instant: dt.datetime) -> dt.datetime:
    """The first instant at or after `instant` inside the window, in UTC."""
    if instant.tzinfo is None:
        raise ValueError("instant needs an offset")
    at = instant.astimezone(UTC)
    for opens, closes in _intervals_from(window, zone, at):
        if closes > at and opens < closes:  # a window that a transition swallowed whole is empty
            return max(opens, at)
    raise ValueError("the window never opens")  # days is empty: refused by validation


def closes_at(window: SendWindow, zone: ZoneInfo, instant: dt.datetime) -> dt.datetime | None:
    """When the window open at `instant` closes (UTC), or None when it is closed."""
    at = instant.astimezone(UTC)
    for opens, closes in _intervals_from(window, zone, at):
        if opens <= at < closes:
            return closes
    return None
