"""Booking races over real HTTP: parallel requests through the router to the
schedule function's server, against the emulator. One booking per slot, always."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest
import requests

pytestmark = pytest.mark.e2e

PARALLEL = 12


def race(url: str, bodies: list[dict]) -> list[requests.Response]:
    """Posts every body at once (a barrier releases them together)."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict) -> requests.Response:
        barrier.wait()
        return requests.post(f"{url}/api/calendar/schedule", json=body, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def stored_bookings(db, calendar_id: str) -> list[dict]:
    docs = [d.to_dict() for d in db.collection("calendar_bookings").stream()]
    return sorted((d for d in docs if d["calendarId"] == calendar_id), key=lambda d: d["start"])


def test_parallel_requests_for_one_slot_book_it_once(stack, db):
    body = {"candidateStarts": ["2030-06-03T09:00:00-04:00"], "durationMinutes": 30, "book": True,
            "calendarId": "race-one"}
    responses = race(stack.url, [body] * PARALLEL)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (PARALLEL - 1), [r.text for r in responses]
    assert len(stored_bookings(db, "race-one")) == 1


def test_parallel_overlapping_slots_never_double_book(stack, db):
    # Each request wants a different but overlapping 60-minute slot (starts 15
    # minutes apart), so at most every fourth one can be booked.
    bodies = [
        {"candidateStarts": [f"2030-06-03T{9 + i // 4:02d}:{(i % 4) * 15:02d}:00Z"], "durationMinutes": 60,
         "book": True, "calendarId": "race-overlap"}
        for i in range(PARALLEL)
    ]
    responses = race(stack.url, bodies)
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    booked = stored_bookings(db, "race-overlap")
    assert booked and len(booked) == sum(r.status_code == 200 for r in responses)
    for before, after in zip(booked, booked[1:]):
        assert before["end"] <= after["start"], (before, after)


def test_parallel_slot_searches_each_get_a_different_slot(stack, db):
    # Six free slots, twelve requests: the losers of a slot move on to the next
    # candidate, so exactly six succeed, each with its own slot, and six get 409.
    search = {"timeZone": "Europe/London", "startDate": "2030-06-03", "days": 1,
              "workingHours": {"start": "09:00", "end": "12:00"}, "stepMinutes": 30, "maxCandidates": 6}
    body = {"slotSearch": search, "durationMinutes": 30, "book": True, "calendarId": "race-search"}
    responses = race(stack.url, [body] * PARALLEL)

    ok = [r.json()["booking"] for r in responses if r.status_code == 200]
    assert sorted(r.status_code for r in responses) == [200] * 6 + [409] * 6, [r.text for r in responses]
    assert sorted(b["start"] for b in ok) == [
        "2030-06-03T09:00:00+01:00", "2030-06-03T09:30:00+01:00", "2030-06-03T10:00:00+01:00",
        "2030-06-03T10:30:00+01:00", "2030-06-03T11:00:00+01:00", "2030-06-03T11:30:00+01:00",
    ]
    assert len(stored_bookings(db, "race-search")) == 6


def test_schedule_answers_through_the_router(stack):
    response = requests.post(
        f"{stack.url}/api/calendar/schedule",
        json={"slotSearch": {"timeZone": "Asia/Kolkata", "startDate": "2030-06-03", "days": 1,
                             "workingHours": {"start": "09:00", "end": "10:00"}}},
        timeout=10,
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json()["candidates"][0] == {
        "start": "2030-06-03T09:00:00+05:30", "end": "2030-06-03T09:30:00+05:30",
        "startUtc": "2030-06-03T03:30:00Z", "endUtc": "2030-06-03T04:00:00Z",
    }
