"""The Google Calendar backend end to end in-process: recorded Calendar API answers
for the Google side, the real emulator for the Firestore claim and receipt."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.calendar import service
from shared.calendar.google_calendar import GoogleCalendar, event_id
from shared.calendar.models import ScheduleRequest
from shared.errors import Unavailable
from shared.store import runs
from tests.unit.test_google_calendar import EVENT, RecordingSession, Reply

NOW = dt.datetime(2030, 5, 1, tzinfo=dt.timezone.utc)


def request(**extra) -> ScheduleRequest:
    return ScheduleRequest.model_validate({
        "slotSearch": {"timeZone": "America/New_York", "startDate": "2030-06-03", "days": 1,
                       "workingHours": {"start": "09:00", "end": "11:00"}},
        "calendarId": "sales@example.com",
        "book": True,
        "title": "Intro call",
        "attendees": [{"email": "ada@example.com"}],
        **extra,
    })


def freebusy(*busy):
    return Reply(200, {"kind": "calendar#freeBusy",
                       "calendars": {"sales@example.com": {"busy": [{"start": s, "end": e} for s, e in busy]}}})


def test_google_busy_time_is_excluded_and_the_event_is_inserted(db):
    runs.lead_ref(db, "run-1", "lead-000003").set({"index": 3, "email": "ada@example.com"})
    session = RecordingSession(freebusy(("2030-06-03T13:00:00Z", "2030-06-03T13:30:00Z")), Reply(200, EVENT))
    result = service.schedule(db, request(runId="run-1", leadDocId="lead-000003"), NOW,
                              backend=GoogleCalendar(db, session))

    assert result.candidates[0].start == "2030-06-03T09:30:00-04:00"  # 09:00 is busy in Google
    booking = result.booking
    assert booking.start == "2030-06-03T09:30:00-04:00" and booking.backend == "google"
    assert booking.status == "confirmed" and booking.event_id == EVENT["id"] and booking.html_link == EVENT["htmlLink"]

    method, url, sent = session.calls[1]
    assert (method, url) == ("POST", "https://www.googleapis.com/calendar/v3/calendars/sales%40example.com/events")
    assert sent["json"]["id"] == event_id(booking.id) and sent["params"] == {"sendUpdates": "all"}
    assert sent["json"]["start"] == {"dateTime": "2030-06-03T09:30:00-04:00", "timeZone": "America/New_York"}

    stored = db.collection("calendar_bookings").document(booking.id).get().to_dict()
    assert stored["status"] == "confirmed" and stored["eventId"] == EVENT["id"]
    receipt = runs.action_ref(db, "run-1", "lead-000003", booking.receipt_id).get().to_dict()
    assert receipt["providerIds"] == {"bookingId": booking.id, "eventId": EVENT["id"]}
    assert receipt["status"] == "booked"


def test_a_failed_insert_releases_the_claim(db):
    session = RecordingSession(freebusy(), Reply(500, {"error": {"code": 500, "message": "backendError"}}))
    with pytest.raises(Unavailable):
        service.schedule(db, request(), NOW, backend=GoogleCalendar(db, session))
    assert list(db.collection("calendar_bookings").stream()) == []
    for lock in db.collection("calendar_booking_locks").stream():
        assert lock.to_dict()["bookings"] == {}
    # The slot is bookable again.
    again = RecordingSession(freebusy(), Reply(200, EVENT))
    assert service.schedule(db, request(), NOW, backend=GoogleCalendar(db, again)).booking.start == (
        "2030-06-03T09:00:00-04:00"
    )


def test_claims_in_firestore_block_the_slot_before_google_shows_it(db):
    first = RecordingSession(freebusy(), Reply(200, EVENT))
    service.schedule(db, request(), NOW, backend=GoogleCalendar(db, first))
    # Google's free/busy has not caught up yet; the Firestore claim still excludes 09:00.
    second = RecordingSession(freebusy(), Reply(200, {**EVENT, "id": "other"}))
    result = service.schedule(db, request(), NOW, backend=GoogleCalendar(db, second))
    assert result.booking.start == "2030-06-03T09:30:00-04:00"


def test_the_setting_selects_the_backend(db, configure):
    assert service.backend_for(db).name == "firestore"
    configure(CALENDAR_BACKEND="google")
    assert service.backend_for(db).name == "google"
