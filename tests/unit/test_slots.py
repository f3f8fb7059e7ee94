"""shared/slots.py: table-driven cases on real tzdata transitions, then properties
checked against a brute-force reference that walks every minute."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.slots import (
    Slot,
    SlotQuery,
    find_slots,
    first_instant_at,
    free_starts,
    merge_busy,
    parse_wall_minutes,
)

UTC = dt.timezone.utc
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=UTC)
EVERY_DAY = frozenset(range(1, 8))


def query(zone: str, day: dt.date, hours: str, **overrides) -> SlotQuery:
    start, end = hours.split("-")
    fields = dict(
        zone=ZoneInfo(zone),
        first_day=day,
        last_day=day,
        work_start_minute=parse_wall_minutes(start),
        work_end_minute=parse_wall_minutes(end, allow_24=True),
        working_days=EVERY_DAY,
        duration_minutes=30,
        step_minutes=30,
        max_candidates=None,
    )
    fields.update(overrides)
    return SlotQuery(**fields)


def starts(slots: list[Slot]) -> list[str]:
    return [slot.start.isoformat(timespec="minutes") for slot in slots]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- table: daylight-saving transitions and odd offsets -----------------------------

TRANSITION_CASES = [
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 10), "00:00-05:00"),
        # 02:00-02:59 does not exist; 03:00 is still on the 30-minute grid
        ["00:00-05:00", "00:30-05:00", "01:00-05:00", "01:30-05:00",
         "03:00-04:00", "03:30-04:00", "04:00-04:00", "04:30-04:00"],
        id="new-york-spring-forward",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 10), "00:10-05:00", step_minutes=25),
        # grid 00:10 + k*25; 02:15 and 02:40 fall in the gap, 03:05 is the next point
        ["00:10-05:00", "00:35-05:00", "01:00-05:00", "01:25-05:00", "01:50-05:00",
         "03:05-04:00", "03:30-04:00", "03:55-04:00", "04:20-04:00"],
        id="new-york-spring-forward-odd-step-stays-on-grid",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 11, 3), "00:00-03:00"),
        # 01:00-01:59 happens twice; only its first occurrence (EDT) is offered
        ["00:00-04:00", "00:30-04:00", "01:00-04:00", "01:30-04:00",
         "02:00-05:00", "02:30-05:00"],
        id="new-york-fall-back-first-occurrence",
    ),
    pytest.param(
        query("Europe/London", dt.date(2024, 3, 31), "00:00-03:00", step_minutes=60,
              duration_minutes=60),
        ["00:00+00:00", "02:00+01:00"],
        id="london-spring-forward",
    ),
    pytest.param(
        query("Europe/London", dt.date(2024, 10, 27), "00:00-03:00", step_minutes=60,
              duration_minutes=60),
        # 01:00 BST to 01:00 GMT is one elapsed hour, so it fits
        ["00:00+01:00", "01:00+01:00", "02:00+00:00"],
        id="london-fall-back",
    ),
    pytest.param(
        query("Australia/Lord_Howe", dt.date(2024, 10, 6), "01:00-03:30", step_minutes=15,
              duration_minutes=15),
        # a 30-minute jump: 02:00 and 02:15 do not exist
        ["01:00+10:30", "01:15+10:30", "01:30+10:30", "01:45+10:30",
         "02:30+11:00", "02:45+11:00", "03:00+11:00", "03:15+11:00"],
        id="lord-howe-30-minute-spring-forward",
    ),
    pytest.param(
        query("Australia/Lord_Howe", dt.date(2024, 4, 7), "01:00-02:30", step_minutes=15,
              duration_minutes=15),
        # 01:30-01:59 repeats; the +10:30 repetition is not offered again
        ["01:00+11:00", "01:15+11:00", "01:30+11:00", "01:45+11:00",
         "02:00+10:30", "02:15+10:30"],
        id="lord-howe-30-minute-fall-back",
    ),
    pytest.param(
        query("Pacific/Chatham", dt.date(2024, 9, 29), "02:00-04:30", step_minutes=45,
              duration_minutes=30),
        # grid 02:00, 02:45 (gap: 02:45-03:44 missing), 03:30 (gap), 04:15 too late to fit
        ["02:00+12:45"],
        id="chatham-spring-forward-at-02-45",
    ),
    pytest.param(
        query("Pacific/Chatham", dt.date(2024, 9, 29), "03:00-05:00", step_minutes=15,
              duration_minutes=60),
        # the whole 03:00-03:44 stretch is missing; the grid resumes at 03:45
        ["03:45+13:45", "04:00+13:45"],
        id="chatham-day-starts-in-gap",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 10), "00:00-02:30"),
        # hours end inside the gap: the working day ends where the clock jumps, 07:00Z
        ["00:00-05:00", "00:30-05:00", "01:00-05:00", "01:30-05:00"],
        id="new-york-hours-end-inside-the-gap",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 10), "00:00-02:30", duration_minutes=60),
        # 01:30 EST + 60 minutes is 03:30 EDT: past the 02:30 the clock never shows
        ["00:00-05:00", "00:30-05:00", "01:00-05:00"],
        id="new-york-hour-long-slot-cannot-jump-past-hours-ending-in-the-gap",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 10), "02:00-02:45", step_minutes=15,
              duration_minutes=15),
        [],  # hours that do not exist at all
        id="new-york-hours-entirely-inside-the-gap",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 11, 3), "01:10-01:50", step_minutes=20,
              duration_minutes=20),
        ["01:10-04:00", "01:30-04:00"],  # hours inside the repeated hour: first pass only
        id="new-york-hours-entirely-inside-the-repeated-hour",
    ),
    pytest.param(
        query("America/Havana", dt.date(2024, 3, 10), "00:00-02:00"),
        # Cuba springs forward at midnight: the day starts at 01:00
        ["01:00-04:00", "01:30-04:00"],
        id="havana-midnight-spring-forward",
    ),
    pytest.param(
        query("America/Havana", dt.date(2024, 3, 9), "23:00-24:00"),
        # "24:00" is the first instant of the next day, here the transition itself
        ["23:00-05:00", "23:30-05:00"],
        id="havana-24-00-before-missing-midnight",
    ),
]


@pytest.mark.parametrize("search, expected", TRANSITION_CASES)
def test_transition_days(search: SlotQuery, expected: list[str]):
    slots = find_slots(search, [], LONG_AGO)
    assert [label[11:] for label in starts(slots)] == expected
    for slot in slots:
        assert slot.end_utc - slot.start_utc == dt.timedelta(minutes=search.duration_minutes)


def test_spring_forward_duration_is_elapsed_time():
    # 01:00 EST + 60 elapsed minutes is 03:00 EDT, just inside hours ending at 03:00;
    # 01:30 EST would end at 03:30 EDT, outside them.
    search = query("America/New_York", dt.date(2024, 3, 10), "01:00-03:00", duration_minutes=60)
    slots = find_slots(search, [], LONG_AGO)
    assert [(s.start.isoformat(), s.end.isoformat()) for s in slots] == [
        ("2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00")
    ]
    assert (slots[0].start_utc, slots[0].end_utc) == (utc("2024-03-10T06:00Z"), utc("2024-03-10T07:00Z"))


def test_fall_back_slot_ends_in_the_repeated_hour_with_its_own_offset():
    search = query("America/New_York", dt.date(2024, 11, 3), "01:30-02:30", duration_minutes=60)
    slots = find_slots(search, [], LONG_AGO)
    # 01:30 EDT + 60 minutes is 01:30 EST; 02:00 EST + 60 would end after 02:30
    assert [(s.start.isoformat(), s.end.isoformat()) for s in slots] == [
        ("2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"),
    ]


def test_fall_back_labels_and_instants_are_unique():
    search = query("America/New_York", dt.date(2024, 11, 3), "00:00-04:00", step_minutes=15,
                   duration_minutes=15)
    slots = find_slots(search, [], LONG_AGO)
    labels = [s.start.replace(tzinfo=None) for s in slots]
    assert len(set(labels)) == len(labels)
    assert len({s.start_utc for s in slots}) == len(slots)
    # 4 hours of wall time in 15-minute steps, all existing once, none twice
    assert len(slots) == 16


def test_kolkata_half_hour_offset():
    search = query("Asia/Kolkata", dt.date(2024, 6, 3), "09:00-10:00")
    slots = find_slots(search, [], LONG_AGO)
    assert [(s.start.isoformat(), s.start_utc.isoformat()) for s in slots] == [
        ("2024-06-03T09:00:00+05:30", "2024-06-03T03:30:00+00:00"),
        ("2024-06-03T09:30:00+05:30", "2024-06-03T04:00:00+00:00"),
    ]


def test_chatham_quarter_hour_offset_lands_on_the_previous_utc_day():
    search = query("Pacific/Chatham", dt.date(2024, 6, 3), "09:00-09:30")
    [slot] = find_slots(search, [], LONG_AGO)
    assert slot.start.isoformat() == "2024-06-03T09:00:00+12:45"
    assert slot.start_utc == utc("2024-06-02T20:15Z")
    assert slot.end_utc == utc("2024-06-02T20:45Z")


def test_zone_without_dst_gives_the_same_day_every_day():
    # Asia/Tokyo: no transitions, so every working day has the same 16 starts
    search = query("Asia/Tokyo", dt.date(2024, 3, 4), "09:00-17:00",
                   last_day=dt.date(2024, 3, 17), working_days=frozenset({1, 2, 3, 4, 5}))
    slots = find_slots(search, [], LONG_AGO)
    assert len(slots) == 10 * 16
    assert {s.start.strftime("%a") for s in slots} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert {s.start.utcoffset() for s in slots} == {dt.timedelta(hours=9)}


def test_slot_never_crosses_the_end_of_working_hours():
    search = query("UTC", dt.date(2024, 6, 3), "09:00-10:00", step_minutes=15, duration_minutes=45)
    assert starts(find_slots(search, [], LONG_AGO)) == ["2024-06-03T09:00+00:00", "2024-06-03T09:15+00:00"]


def test_24_00_ends_at_midnight_and_never_crosses_it():
    search = query("Europe/Paris", dt.date(2024, 6, 3), "23:00-24:00", duration_minutes=30,
                   step_minutes=20)
    slots = find_slots(search, [], LONG_AGO)
    assert starts(slots) == ["2024-06-03T23:00+02:00", "2024-06-03T23:20+02:00"]
    assert slots[-1].end.isoformat() == "2024-06-03T23:50:00+02:00"
    exact = find_slots(dataclasses.replace(search, step_minutes=30), [], LONG_AGO)
    assert exact[-1].end.isoformat() == "2024-06-04T00:00:00+02:00"


def test_working_days_are_iso_weekdays():
    # 2024-06-03 is a Monday; 7 = Sunday
    search = query("UTC", dt.date(2024, 6, 3), "09:00-09:30", last_day=dt.date(2024, 6, 9),
                   working_days=frozenset({7, 3}))
    assert starts(find_slots(search, [], LONG_AGO)) == ["2024-06-05T09:00+00:00", "2024-06-09T09:00+00:00"]


def test_min_notice_counts_from_now():
    search = query("UTC", dt.date(2024, 6, 3), "09:00-12:00", min_notice_minutes=90)
    now = utc("2024-06-03T08:45Z")
    assert starts(find_slots(search, [], now))[0] == "2024-06-03T10:30+00:00"
    # notice reaching past the whole window leaves nothing
    assert find_slots(search, [], utc("2024-06-03T11:00Z")) == []


def test_max_candidates_stops_early_and_zero_means_none():
    search = query("UTC", dt.date(2024, 6, 3), "09:00-17:00", max_candidates=3)
    assert starts(find_slots(search, [], LONG_AGO)) == [
        "2024-06-03T09:00+00:00", "2024-06-03T09:30+00:00", "2024-06-03T10:00+00:00"
    ]
    assert find_slots(dataclasses.replace(search, max_candidates=0), [], LONG_AGO) == []


def test_busy_in_other_offsets_overlapping_each_other():
    search = query("America/New_York", dt.date(2024, 6, 3), "09:00-12:00")  # EDT, UTC-4
    busy = [
        (utc("2024-06-03T13:15Z"), utc("2024-06-03T13:45Z")),  # 09:15-09:45 EDT
        (dt.datetime.fromisoformat("2024-06-03T15:40+02:00"), dt.datetime.fromisoformat("2024-06-03T16:00+02:00")),  # 09:40-10:00 EDT
        (dt.datetime.fromisoformat("2024-06-03T10:30-03:00"), dt.datetime.fromisoformat("2024-06-03T11:00-02:00")),  # 09:30-09:00 EDT: empty, ignored
        (dt.datetime.fromisoformat("2024-06-03T21:00+10:00"), dt.datetime.fromisoformat("2024-06-03T21:30+10:00")),  # 07:00 EDT, before hours
    ]
    # 09:00 overlaps 09:15; 09:30 overlaps; 10:00 starts exactly when busy ends: free
    assert starts(find_slots(search, busy, LONG_AGO)) == [
        "2024-06-03T10:00-04:00", "2024-06-03T10:30-04:00", "2024-06-03T11:00-04:00", "2024-06-03T11:30-04:00",
    ]


def test_slot_ending_exactly_when_busy_starts_is_free():
    search = query("UTC", dt.date(2024, 6, 3), "09:00-10:00")
    busy = [(utc("2024-06-03T09:30Z"), utc("2024-06-03T12:00Z"))]
    assert starts(find_slots(search, busy, LONG_AGO)) == ["2024-06-03T09:00+00:00"]


def test_naive_busy_is_refused():
    with pytest.raises(ValueError):
        merge_busy([(dt.datetime(2024, 6, 3, 9), utc("2024-06-03T10:00Z"))])


def test_merge_busy_sorts_and_merges_touching_and_nested():
    merged = merge_busy([
        (utc("2024-06-03T12:00Z"), utc("2024-06-03T13:00Z")),
        (utc("2024-06-03T09:00Z"), utc("2024-06-03T10:00Z")),
        (utc("2024-06-03T10:00Z"), utc("2024-06-03T11:00Z")),
        (utc("2024-06-03T09:15Z"), utc("2024-06-03T09:30Z")),
    ])
    assert merged == [
        (utc("2024-06-03T09:00Z"), utc("2024-06-03T11:00Z")),
        (utc("2024-06-03T12:00Z"), utc("2024-06-03T13:00Z")),
    ]


def test_first_instant_at_in_a_gap_is_the_transition():
    new_york = ZoneInfo("America/New_York")
    assert first_instant_at(dt.datetime(2024, 3, 10, 2, 30), new_york) == utc("2024-03-10T07:00Z")
    assert first_instant_at(dt.datetime(2024, 11, 3, 1, 30), new_york) == utc("2024-11-03T05:30Z")
    chatham = ZoneInfo("Pacific/Chatham")
    assert first_instant_at(dt.datetime(2024, 9, 29, 3, 0), chatham) == utc("2024-09-28T14:00Z")


@pytest.mark.parametrize(
    "text, allow_24, minutes",
    [("00:00", False, 0), ("09:30", False, 570), ("23:59", False, 1439), ("24:00", True, 1440)],
)
def test_parse_wall_minutes(text, allow_24, minutes):
    assert parse_wall_minutes(text, allow_24=allow_24) == minutes


@pytest.mark.parametrize("text", ["24:00", "24:01", "9:00", "09:60", "25:00", "0900", "09:00:00", ""])
def test_parse_wall_minutes_refuses(text):
    with pytest.raises(ValueError):
        parse_wall_minutes(text)


def test_free_starts_keeps_offsets_sorts_and_drops_busy_past_and_duplicates():
    given_starts = [
        dt.datetime.fromisoformat("2024-06-03T11:00:00+02:00"),  # 09:00Z
        dt.datetime.fromisoformat("2024-06-03T09:30:00+00:00"),  # busy
        dt.datetime.fromisoformat("2024-06-03T05:00:00-04:00"),  # 09:00Z again
        dt.datetime.fromisoformat("2024-06-03T08:00:00+00:00"),  # before now
        dt.datetime.fromisoformat("2024-06-03T16:00:00+05:30"),  # 10:30Z
    ]
    busy = [(utc("2024-06-03T09:45Z"), utc("2024-06-03T10:15Z"))]
    slots = free_starts(given_starts, 30, busy, utc("2024-06-03T08:30Z"))
    assert [(s.start.isoformat(), s.end.isoformat()) for s in slots] == [
        ("2024-06-03T11:00:00+02:00", "2024-06-03T11:30:00+02:00"),
        ("2024-06-03T16:00:00+05:30", "2024-06-03T16:30:00+05:30"),
    ]


def test_free_starts_refuses_naive():
    with pytest.raises(ValueError):
        free_starts([dt.datetime(2024, 6, 3, 9)], 30, [], LONG_AGO)


# --- properties --------------------------------------------------------------------

ZONES = [
    "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
    "Pacific/Chatham", "Asia/Tokyo", "America/Havana", "America/Santiago", "UTC",
]
# Days with a transition in one of ZONES, so most examples straddle one.
TRANSITION_DAYS = [
    dt.date(2024, 3, 10), dt.date(2024, 11, 3), dt.date(2024, 3, 31), dt.date(2024, 10, 27),
    dt.date(2024, 4, 6), dt.date(2024, 4, 7), dt.date(2024, 10, 6), dt.date(2024, 9, 29),
    dt.date(2024, 9, 8), dt.date(2024, 9, 7), dt.date(2024, 3, 9),
]
MINUTE = dt.timedelta(minutes=1)


@st.composite
def searches(draw):
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    first = draw(st.one_of(st.sampled_from(TRANSITION_DAYS), st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31))))
    first -= dt.timedelta(days=draw(st.integers(0, 1)))
    last = first + dt.timedelta(days=draw(st.integers(0, 2)))
    # Hours often start or end near the transitions (00:00-03:45 local, Lord Howe's
    # and Chatham's included), so the gap and the repeated hour meet the ends.
    near_transition = st.sampled_from([0, 30, 60, 90, 105, 120, 150, 165, 180, 195, 225])
    work_start = draw(st.one_of(near_transition, st.integers(0, 23 * 12).map(lambda m: m * 5)))
    work_end = draw(st.one_of(
        near_transition.filter(lambda m: m > work_start),
        st.integers(work_start // 5 + 1, 24 * 12).map(lambda m: m * 5),
    ))
    search = SlotQuery(
        zone=zone,
        first_day=first,
        last_day=last,
        work_start_minute=work_start,
        work_end_minute=work_end,
        working_days=frozenset(draw(st.sets(st.integers(1, 7), min_size=1))),
        duration_minutes=draw(st.integers(1, 180)),
        step_minutes=draw(st.sampled_from([5, 10, 15, 20, 25, 30, 45, 60, 90])),
        min_notice_minutes=draw(st.integers(0, 600)),
        max_candidates=draw(st.one_of(st.none(), st.integers(1, 50))),
    )
    around = dt.datetime.combine(first, dt.time(12), UTC)
    instants = st.integers(-36 * 60, 4 * 24 * 60).map(lambda m: around + m * MINUTE)
    offsets = st.integers(-14 * 4, 14 * 4).map(lambda q: dt.timezone(q * 15 * MINUTE))
    busy = draw(st.lists(
        st.tuples(instants, st.integers(1, 240), offsets).map(
            lambda t: (t[0].astimezone(t[2]), (t[0] + t[1] * MINUTE).astimezone(t[2]))
        ),
        max_size=12,
    ))
    now = around + draw(st.integers(-48 * 60, 48 * 60)) * MINUTE
    return search, busy, now


def reference_slots(search: SlotQuery, busy, now) -> list[tuple[dt.datetime, dt.datetime]]:
    """The same policy, computed the slow way: every minute of every slot is inspected
    (night shifts too)."""
    earliest = now + search.min_notice_minutes * MINUTE
    found = []
    day = search.first_day
    while day <= search.last_day:
        if day.isoweekday() in search.working_days:
            midnight = dt.datetime.combine(day, dt.time())
            # Hours that end before they start end on the next day (a night shift).
            overnight = search.work_end_minute < search.work_start_minute
            closes = midnight + dt.timedelta(days=overnight) + search.work_end_minute * MINUTE
            wall = midnight + search.work_start_minute * MINUTE
            while wall < closes:
                start_utc = wall.replace(tzinfo=search.zone).astimezone(UTC)
                exists = start_utc.astimezone(search.zone).replace(tzinfo=None) == wall
                end_utc = start_utc + search.duration_minutes * MINUTE
                minutes = (start_utc + i * MINUTE for i in range(search.duration_minutes))
                inside = all(m.astimezone(search.zone).replace(tzinfo=None) < closes for m in minutes)
                free = all(not (b_start < end_utc and start_utc < b_end) for b_start, b_end in busy)
                if exists and inside and free and start_utc >= earliest:
                    found.append((start_utc, end_utc))
                wall += search.step_minutes * MINUTE
        day += dt.timedelta(days=1)
    return found[: search.max_candidates]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(searches())
def test_properties_against_reference(case):
    search, busy, now = case
    slots = find_slots(search, busy, now)

    assert [(s.start_utc, s.end_utc) for s in slots] == reference_slots(search, busy, now)
    if search.max_candidates is not None:
        assert len(slots) <= search.max_candidates
    for before, after in zip(slots, slots[1:]):
        assert before.start_utc < after.start_utc  # strictly increasing: no shared instant
    assert len({s.start.replace(tzinfo=None) for s in slots}) == len(slots)  # no label twice
    for slot in slots:
        local_start = slot.start.replace(tzinfo=None)
        minute_of_day = local_start.hour * 60 + local_start.minute
        assert slot.start.tzinfo is search.zone and slot.end.tzinfo is search.zone
        # Same instant. Not `==`: by PEP 495 an aware time in a repeated (fall-back) hour
        # never compares equal to one in another zone, even when both name one instant.
        assert slot.start.astimezone(dt.timezone.utc) == slot.start_utc
        assert slot.end.astimezone(dt.timezone.utc) == slot.end_utc
        assert slot.start_utc.utcoffset() == dt.timedelta(0)
        assert slot.end_utc - slot.start_utc == search.duration_minutes * MINUTE
        assert search.first_day <= slot.start.date() <= search.last_day
        assert slot.start.isoweekday() in search.working_days
        assert minute_of_day >= search.work_start_minute
        assert (minute_of_day - search.work_start_minute) % search.step_minutes == 0
        closes = dt.datetime.combine(slot.start.date(), dt.time()) + search.work_end_minute * MINUTE
        assert (slot.end_utc - MINUTE).astimezone(search.zone).replace(tzinfo=None) < closes
        assert slot.start_utc >= now + search.min_notice_minutes * MINUTE
        assert all(not (b0 < slot.end_utc and slot.start_utc < b1) for b0, b1 in busy)


@settings(max_examples=100, deadline=None)
@given(searches())
def test_order_of_busy_intervals_does_not_matter(case):
    search, busy, now = case
    assert find_slots(search, busy, now) == find_slots(search, list(reversed(busy)), now)


# --- working hours across midnight ---------------------------------------------------

NIGHT_CASES = [
    pytest.param(
        query("America/New_York", dt.date(2024, 3, 9), "22:00-04:00", step_minutes=60, duration_minutes=60),
        # Saturday night into the spring-forward Sunday: 02:00 does not exist, 01:00
        # ends at 03:00 EDT after one elapsed hour, and the shift is an hour shorter.
        ["2024-03-09T22:00-05:00", "2024-03-09T23:00-05:00", "2024-03-10T00:00-05:00",
         "2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00"],
        id="new-york-spring-forward-night",
    ),
    pytest.param(
        query("America/New_York", dt.date(2024, 11, 2), "22:00-03:00", step_minutes=60, duration_minutes=60),
        # Fall-back night: 01:00 is offered once (EDT), the shift is an hour longer
        # but the grid gains no second 01:00.
        ["2024-11-02T22:00-04:00", "2024-11-02T23:00-04:00", "2024-11-03T00:00-04:00",
         "2024-11-03T01:00-04:00", "2024-11-03T02:00-05:00"],
        id="new-york-fall-back-night",
    ),
    pytest.param(
        query("Europe/Berlin", dt.date(2024, 3, 30), "23:00-03:30", step_minutes=30, duration_minutes=30),
        ["2024-03-30T23:00+01:00", "2024-03-30T23:30+01:00", "2024-03-31T00:00+01:00",
         "2024-03-31T00:30+01:00", "2024-03-31T01:00+01:00", "2024-03-31T01:30+01:00",
         "2024-03-31T03:00+02:00"],
        id="berlin-spring-forward-night",
    ),
    pytest.param(
        query("Europe/Berlin", dt.date(2024, 10, 26), "23:00-03:00", step_minutes=60, duration_minutes=60),
        # 02:00-03:00 happens twice; 02:00 is offered at its first occurrence only (it
        # ends at the second 02:00), and the second hour is still inside the shift but
        # off the grid, so nothing starts there.
        ["2024-10-26T23:00+02:00", "2024-10-27T00:00+02:00", "2024-10-27T01:00+02:00",
         "2024-10-27T02:00+02:00"],
        id="berlin-fall-back-night",
    ),
    pytest.param(
        query("Europe/Paris", dt.date(2024, 6, 3), "22:00-00:00", step_minutes=60, duration_minutes=60),
        ["2024-06-03T22:00+02:00", "2024-06-03T23:00+02:00"],  # "00:00" as an end is the next midnight
        id="end-at-midnight",
    ),
]


@pytest.mark.parametrize("search, expected", NIGHT_CASES)
def test_night_shifts(search: SlotQuery, expected: list[str]):
    assert starts(find_slots(search, [], LONG_AGO)) == expected


def test_night_shift_belongs_to_the_day_it_opens():
    # Working days count opening days: a Friday-only night shift runs into Saturday,
    # and Thursday's would-be shift does not reach into Friday morning.
    search = query("UTC", dt.date(2024, 6, 6), "22:00-02:00", last_day=dt.date(2024, 6, 8),
                   working_days=frozenset({5}), step_minutes=60, duration_minutes=60)
    assert starts(find_slots(search, [], LONG_AGO)) == [
        "2024-06-07T22:00+00:00", "2024-06-07T23:00+00:00", "2024-06-08T00:00+00:00", "2024-06-08T01:00+00:00",
    ]


def test_night_shift_slot_may_span_midnight_but_not_the_end():
    search = query("Asia/Tokyo", dt.date(2024, 6, 3), "23:00-01:00", duration_minutes=90, step_minutes=30)
    assert [(s.start.isoformat(timespec="minutes"), s.end.isoformat(timespec="minutes"))
            for s in find_slots(search, [], LONG_AGO)] == [
        ("2024-06-03T23:00+09:00", "2024-06-04T00:30+09:00"),
        ("2024-06-03T23:30+09:00", "2024-06-04T01:00+09:00"),
    ]


@st.composite
def night_searches(draw):
    search, busy, now = draw(searches())
    # Opening late, closing early next morning, often right at the transitions.
    work_start = draw(st.integers(12 * 12, 24 * 12 - 1).map(lambda m: m * 5))
    work_end = draw(st.one_of(
        st.sampled_from([0, 30, 60, 90, 105, 120, 150, 165, 180, 195, 225]),
        st.integers(0, work_start // 5 - 1).map(lambda m: m * 5),
    ))
    return dataclasses.replace(search, work_start_minute=work_start, work_end_minute=work_end), busy, now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(night_searches())
def test_night_shift_properties_against_reference(case):
    search, busy, now = case
    slots = find_slots(search, busy, now)

    assert [(s.start_utc, s.end_utc) for s in slots] == reference_slots(search, busy, now)
    for before, after in zip(slots, slots[1:]):
        assert before.start_utc < after.start_utc
    assert len({s.start.replace(tzinfo=None) for s in slots}) == len(slots)
