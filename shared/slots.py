"""Meeting slot generation in a time zone's local wall time. Pure: no I/O, no clock.

Policies (docs/schedule.md explains why):
- Candidate starts sit on a wall-clock grid: working-hours start + k * step, local time.
- A start that does not exist locally (spring-forward gap) is skipped; the grid is
  not shifted, so the starts after the gap are still on it.
- A start that exists twice (the repeated fall-back hour) is offered once, at its
  first occurrence (fold=0). Local labels are therefore unique per day and no two
  candidates share a UTC instant.
- Working hours on day D are the elapsed interval from the first instant the local
  clock reads `start` on D to the first instant it reads `end` ("24:00" = the first
  instant of D + 1). An `end` before `start` (`22:00`-`02:00`) is on D + 1: the hours
  cross midnight and belong to D, the day they open (working days and the search
  window count opening days). A slot must lie inside it; its length is real elapsed
  minutes.
- Busy intervals and bookings are half-open [start, end): a slot may start exactly
  when a busy interval ends.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
MINUTES_PER_DAY = 24 * 60
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")

Interval = tuple[dt.datetime, dt.datetime]

# Inside a search instants are naive UTC datetimes: arithmetic and comparison on them
# cost a fraction of what tz-aware conversions do, and the walk does them per grid
# point. These two constants translate at the edges without datetime.replace().
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)


def _naive_utc(instant: dt.datetime) -> dt.datetime:
    return _EPOCH_NAIVE + (instant - _EPOCH_UTC)


def _aware_utc(naive: dt.datetime) -> dt.datetime:
    return _EPOCH_UTC + (naive - _EPOCH_NAIVE)


def parse_wall_minutes(text: str, *, allow_24: bool = False) -> int:
    """'HH:MM' to minutes after local midnight; '24:00' only where allow_24 says so."""
    match = _HHMM.match(text)
    if match is None:
        raise ValueError("must be 'HH:MM'")
    hours, minutes = int(match[1]), int(match[2])
    if allow_24 and hours == 24 and minutes == 0:
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError("must be a time between 00:00 and 23:59" + (" or 24:00" if allow_24 else ""))
    return hours * 60 + minutes


@dataclasses.dataclass(frozen=True)
class SlotQuery:
    """What to search: a window of local days, the hours and days worked, the slot shape."""

    zone: ZoneInfo
    first_day: dt.date
    last_day: dt.date  # inclusive
    work_start_minute: int  # minutes after local midnight
    work_end_minute: int  # up to 1440 ("24:00"); below work_start_minute: on the next day
    working_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO weekdays
    duration_minutes: int = 30
    step_minutes: int = 30
    min_notice_minutes: int = 0
    max_candidates: int | None = 10  # None: every free slot in the window


class Slot(NamedTuple):
    start: dt.datetime  # aware, in the query's zone (or the given offset, for free_starts)
    end: dt.datetime
    start_utc: dt.datetime  # aware, UTC
    end_utc: dt.datetime


def merge_busy(intervals: Iterable[Interval]) -> list[Interval]:
    """Busy intervals in UTC, sorted, overlapping or touching ones merged, empty ones dropped."""
    return [(_aware_utc(start), _aware_utc(end)) for start, end in _merge_naive(intervals)]


def _merge_naive(intervals: Iterable[Interval]) -> list[tuple[dt.datetime, dt.datetime]]:
    spans = []
    for start, end in intervals:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("busy intervals need an offset")
        if end > start:
            spans.append((_naive_utc(start), _naive_utc(end)))
    spans.sort()
    merged: list[list[dt.datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def find_slots(query: SlotQuery, busy: Iterable[Interval], now: dt.datetime) -> list[Slot]:
    """Free slots in ascending order, at most query.max_candidates of them.

    Busy intervals are sorted and merged once, then swept with a pointer that only
    moves forward as the (ascending) grid is walked: the cost grows with days + busy,
    not days * busy.
    """
    if now.tzinfo is None:
        raise ValueError("now needs an offset")
    if query.max_candidates is not None and query.max_candidates <= 0:
        return []
    earliest = _naive_utc(now) + dt.timedelta(minutes=query.min_notice_minutes)
    length = dt.timedelta(minutes=query.duration_minutes)
    busy_spans = _merge_naive(busy)
    next_busy = 0
    found: list[Slot] = []
    for start in _grid_starts(query, earliest):
        end = start + length
        while next_busy < len(busy_spans) and busy_spans[next_busy][1] <= start:
            next_busy += 1
        # The spans are disjoint and sorted: only the first one ending after `start`
        # can reach into the slot.
        if next_busy < len(busy_spans) and busy_spans[next_busy][0] < end:
            continue
        start_utc, end_utc = _aware_utc(start), _aware_utc(end)
        found.append(Slot(start_utc.astimezone(query.zone), end_utc.astimezone(query.zone), start_utc, end_utc))
        if len(found) == query.max_candidates:
            break
    return found


def free_starts(
    starts: Iterable[dt.datetime],
    duration_minutes: int,
    busy: Iterable[Interval],
    now: dt.datetime,
    min_notice_minutes: int = 0,
) -> list[Slot]:
    """The given starts (old clients' candidateStarts) that are free, in ascending order.

    Each slot keeps the offset its start was given in; duplicates of one instant
    collapse to the first given.
    """
    earliest = _naive_utc(now) + dt.timedelta(minutes=min_notice_minutes)
    length = dt.timedelta(minutes=duration_minutes)
    busy_spans = _merge_naive(busy)
    busy_ends = [end for _, end in busy_spans]
    found: dict[dt.datetime, Slot] = {}
    for start in starts:
        if start.tzinfo is None:
            raise ValueError("candidate starts need an offset")
        start_naive = _naive_utc(start)
        if start_naive < earliest or start_naive in found:
            continue
        end_naive = start_naive + length
        # The starts come in any order, so look the busy span up instead of sweeping.
        i = bisect.bisect_right(busy_ends, start_naive)
        if i < len(busy_spans) and busy_spans[i][0] < end_naive:
            continue
        start_utc, end_utc = _aware_utc(start_naive), _aware_utc(end_naive)
        found[start_naive] = Slot(start, end_utc.astimezone(start.tzinfo), start_utc, end_utc)
    return [found[key] for key in sorted(found)]


def _grid_starts(query: SlotQuery, earliest: dt.datetime) -> Iterator[dt.datetime]:
    """Naive UTC starts of every grid slot inside working hours and not before
    `earliest` (naive UTC), ascending."""
    zone = query.zone
    length = dt.timedelta(minutes=query.duration_minutes)
    step = dt.timedelta(minutes=query.step_minutes)
    day = query.first_day
    while day <= query.last_day:
        if day.isoweekday() in query.working_days:
            midnight = dt.datetime.combine(day, dt.time())
            opens = midnight + dt.timedelta(minutes=query.work_start_minute)
            closes = midnight + dt.timedelta(minutes=closing_minute(query.work_start_minute, query.work_end_minute))
            steady = _steady_offset(opens, closes, zone)
            closes_utc = closes - steady if steady is not None else _naive_utc(first_instant_at(closes, zone))
            wall = opens
            while closes_utc > earliest and wall < closes:
                offset = steady
                if offset is None:
                    offset = zone.utcoffset(wall)  # fold=0: the first occurrence
                    # PEP 495: in a gap the fold=0 offset is the one from before the
                    # jump, smaller than fold=1's; anywhere else it is equal or larger.
                    if offset < zone.utcoffset(wall.replace(fold=1)):
                        wall += step
                        continue
                start = wall - offset
                if start + length > closes_utc:
                    break  # existing starts ascend, so later ones end later still
                if start >= earliest:
                    yield start
                wall += step
        day += dt.timedelta(days=1)


def closing_minute(start_minute: int, end_minute: int) -> int:
    """Minutes from the opening day's midnight to the end of the hours: an end before
    the start is on the next day, so hours never run backwards."""
    return end_minute + MINUTES_PER_DAY if end_minute < start_minute else end_minute


def _steady_offset(opens: dt.datetime, closes: dt.datetime, zone: ZoneInfo) -> dt.timedelta | None:
    """The zone's offset if it is the same from `opens` to `closes` (wall times), else None.

    With fold=0 `opens` reads the offset from before any transition at or after it,
    and with fold=1 `closes` reads the offset from after any transition at or before
    it (PEP 495), so one transition anywhere in the span, ends included, makes them
    differ. Two transitions that cancel out would not show, but no zone in tzdata has
    two transitions less than 26 hours apart (checked against every zone's transition
    table when this was written), so the fast path is exact for a span under a day
    (hours across midnight included: they are shorter than 24 hours too).
    """
    offset = zone.utcoffset(opens)
    return offset if zone.utcoffset(closes.replace(fold=1)) == offset else None


def first_instant_at(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first UTC instant at which the local clock reads `wall` or later.

    An existing wall time maps to its first occurrence; one inside a spring-forward
    gap maps to the transition itself, where the clock jumps past it.
    """
    before = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if before.astimezone(zone).replace(tzinfo=None) == wall:
        return before
    # In a gap, fold=1 reads the wall with the offset from after the transition, so
    # it lands before the jump, fold=0 after it. Bisect the whole seconds between (at
    # most the gap's length) because zoneinfo does not expose its transitions, and
    # tzdata transitions fall on whole seconds.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(before.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, UTC)
