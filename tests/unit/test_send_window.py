"""shared/deliverability/window.py: sending windows in the lead's zone, on real tzdata."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from shared.deliverability.window import SendWindow, closes_at, is_open, next_open, zone_of

UTC = dt.timezone.utc
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = [1, 2, 3, 4, 5]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def window(start="09:00", end="17:00", days=WEEKDAYS, fallback="America/New_York") -> SendWindow:
    return SendWindow.parse(start, end, days, fallback)


def test_open_inside_closed_outside_half_open():
    w = window()
    assert is_open(w, NY, at("2030-06-03T09:00:00-04:00"))  # Monday, opening instant
    assert is_open(w, NY, at("2030-06-03T16:59:59-04:00"))
    assert not is_open(w, NY, at("2030-06-03T17:00:00-04:00"))  # the end is excluded
    assert not is_open(w, NY, at("2030-06-03T08:59:59-04:00"))
    assert not is_open(w, NY, at("2030-06-08T12:00:00-04:00"))  # Saturday


def test_next_open_is_now_when_open_and_the_next_opening_otherwise():
    w = window()
    assert next_open(w, NY, at("2030-06-03T12:00:00-04:00")) == at("2030-06-03T16:00:00+00:00")
    assert next_open(w, NY, at("2030-06-03T18:00:00-04:00")) == at("2030-06-04T09:00:00-04:00")
    # Friday evening: Saturday and Sunday are skipped.
    assert next_open(w, NY, at("2030-06-07T18:00:00-04:00")) == at("2030-06-10T09:00:00-04:00")
    assert next_open(w, NY, at("2030-06-07T18:00:00-04:00")).tzinfo == UTC


def test_same_instant_differs_by_lead_zone():
    w = window()
    instant = at("2030-06-03T08:00:00+00:00")  # 10:00 in Berlin, 04:00 in New York
    assert is_open(w, BERLIN, instant)
    assert not is_open(w, NY, instant)


def test_lead_zone_falls_back_when_missing_or_invalid():
    w = window(fallback="Europe/Berlin")
    assert zone_of(w, "Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    assert zone_of(w, None) == BERLIN
    assert zone_of(w, "") == BERLIN
    assert zone_of(w, "Mars/Olympus_Mons") == BERLIN
    assert zone_of(w, "../../etc/passwd") == BERLIN
    assert zone_of(w, 42) == BERLIN


def test_window_across_midnight_belongs_to_the_day_it_opens():
    w = window("22:00", "02:00", days=[5])  # Friday night only
    assert is_open(w, NY, at("2030-06-07T22:00:00-04:00"))
    assert is_open(w, NY, at("2030-06-08T01:59:00-04:00"))  # Saturday morning, Friday's window
    assert not is_open(w, NY, at("2030-06-08T02:00:00-04:00"))
    assert not is_open(w, NY, at("2030-06-08T23:00:00-04:00"))  # Saturday's would-be window
    assert not is_open(w, NY, at("2030-06-07T01:00:00-04:00"))  # Thursday's would-be window
    assert next_open(w, NY, at("2030-06-08T03:00:00-04:00")) == at("2030-06-14T22:00:00-04:00")
    assert closes_at(w, NY, at("2030-06-07T23:00:00-04:00")) == at("2030-06-08T02:00:00-04:00")
    assert closes_at(w, NY, at("2030-06-08T03:00:00-04:00")) is None


def test_spring_forward_start_in_the_gap_opens_at_the_jump():
    w = window("02:30", "05:00", days=range(1, 8))
    # 2030-03-10 02:00 EST jumps to 03:00 EDT: 02:30 never happens.
    assert next_open(w, NY, at("2030-03-10T00:00:00-05:00")) == at("2030-03-10T03:00:00-04:00")
    assert not is_open(w, NY, at("2030-03-10T01:59:59-05:00"))


def test_spring_forward_night_is_an_hour_shorter_in_berlin():
    w = window("22:00", "04:00", days=range(1, 8))
    opens = next_open(w, BERLIN, at("2030-03-30T12:00:00+00:00"))  # Saturday before the change
    closes = closes_at(w, BERLIN, opens)
    assert opens == at("2030-03-30T22:00:00+01:00")
    assert closes == at("2030-03-31T04:00:00+02:00")
    assert closes - opens == dt.timedelta(hours=5)


def test_fall_back_hour_is_inside_once_as_elapsed_time():
    w = window("00:00", "01:30", days=range(1, 8))
    # 2030-11-03 02:00 EDT falls back to 01:00 EST; the window closes at the FIRST 01:30.
    opens = next_open(w, NY, at("2030-11-02T23:00:00-04:00"))
    assert opens == at("2030-11-03T00:00:00-04:00")
    assert closes_at(w, NY, opens) == at("2030-11-03T01:30:00-04:00")
    assert not is_open(w, NY, at("2030-11-03T01:10:00-05:00"))  # the repeated 01:10
    night = window("22:00", "03:00", days=range(1, 8))
    opens = next_open(night, NY, at("2030-11-02T12:00:00-04:00"))
    assert closes_at(night, NY, opens) - opens == dt.timedelta(hours=6)  # an hour longer


def test_24_00_end_and_whole_day():
    w = window("00:00", "24:00", days=[1])
    assert is_open(w, NY, at("2030-06-03T23:59:59-04:00"))
    assert not is_open(w, NY, at("2030-06-04T00:00:00-04:00"))


@pytest.mark.parametrize("start, end", [("09:00", "09:00"), ("24:00", "09:00"), ("9am", "17:00"), ("09:00", "24:30")])
def test_parse_refuses(start, end):
    with pytest.raises(ValueError):
        SendWindow.parse(start, end, WEEKDAYS, "UTC")


def test_naive_instant_is_refused():
    with pytest.raises(ValueError):
        next_open(window(), NY, dt.datetime(2030, 6, 3, 12))
