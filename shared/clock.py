"""Time in one place: UTC-aware now, and RFC 3339 strings for every API response."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(value: dt.datetime | None) -> str | None:
    """Firestore hands back DatetimeWithNanoseconds in UTC; the API speaks 'Z' strings."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    text = value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def utc_text(instant: dt.datetime) -> str:
    """RFC 3339 in UTC with 'Z', to the second when there are no microseconds (slot
    starts, Google Calendar times, Error Reporting's eventTime)."""
    return instant.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp without an offset")
    return value
