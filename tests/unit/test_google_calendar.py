"""The Google Calendar backend's request building and response parsing, on the
shapes the Calendar API v3 returns (no network)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from shared.calendar import google_calendar as google
from shared.errors import InvalidArgument, Unavailable

UTC = dt.timezone.utc

# freeBusy.query responses as the API returns them.
FREEBUSY_OK = {
    "kind": "calendar#freeBusy",
    "timeMin": "2030-06-03T00:00:00.000Z",
    "timeMax": "2030-06-04T00:00:00.000Z",
    "calendars": {
        "sales@example.com": {
            "busy": [
                {"start": "2030-06-03T13:00:00Z", "end": "2030-06-03T14:00:00Z"},
                {"start": "2030-06-03T16:30:00-04:00", "end": "2030-06-03T17:00:00-04:00"},
            ]
        }
    },
}
FREEBUSY_NOT_FOUND = {
    "kind": "calendar#freeBusy",
    "timeMin": "2030-06-03T00:00:00.000Z",
    "timeMax": "2030-06-04T00:00:00.000Z",
    "calendars": {"nobody@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}},
}
FREEBUSY_BACKEND_ERROR = {
    "kind": "calendar#freeBusy",
    "calendars": {"sales@example.com": {"errors": [{"domain": "global", "reason": "backendError"}], "busy": []}},
}
# events.insert response (trimmed of nothing the backend reads).
EVENT = {
    "kind": "calendar#event",
    "etag": '"3412345678901234"',
    "id": "c5gm4ob4dlgn8rj4ehg6usrfc5i62t3k",
    "status": "confirmed",
    "htmlLink": "https://www.google.com/calendar/event?eid=YzVnbTRvYjRkbGduOHJq",
    "created": "2030-05-01T10:00:00.000Z",
    "updated": "2030-05-01T10:00:00.123Z",
    "summary": "Intro call",
    "organizer": {"email": "sales@example.com", "self": True},
    "start": {"dateTime": "2030-06-03T09:00:00-04:00", "timeZone": "America/New_York"},
    "end": {"dateTime": "2030-06-03T09:30:00-04:00", "timeZone": "America/New_York"},
    "iCalUID": "c5gm4ob4dlgn8rj4ehg6usrfc5i62t3k@google.com",
    "sequence": 0,
    "attendees": [{"email": "ada@example.com", "responseStatus": "needsAction"}],
    "reminders": {"useDefault": True},
    "eventType": "default",
}
DUPLICATE = {
    "error": {
        "errors": [{"domain": "global", "reason": "duplicate", "message": "The requested identifier already exists."}],
        "code": 409,
        "message": "The requested identifier already exists.",
    }
}

BOOKING = {
    "calendarId": "sales@example.com",
    "startLocal": "2030-06-03T09:00:00-04:00",
    "endLocal": "2030-06-03T09:30:00-04:00",
    "timeZone": "America/New_York",
    "title": "Intro call",
    "description": "Agenda: pricing",
    "attendees": [{"email": "ada@example.com", "displayName": "Ada"}, {"email": "bob@example.com"}],
    "runId": "run-1",
    "leadDocId": "lead-000003",
}


def test_freebusy_request_is_one_call_for_a_short_window():
    start = dt.datetime(2030, 6, 3, tzinfo=UTC)
    assert google.freebusy_requests("sales@example.com", start, start + dt.timedelta(days=7)) == [
        {"timeMin": "2030-06-03T00:00:00Z", "timeMax": "2030-06-10T00:00:00Z", "items": [{"id": "sales@example.com"}]}
    ]


def test_freebusy_requests_split_a_year_into_contiguous_pieces_under_the_api_limit():
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    end = start + dt.timedelta(days=368)
    bodies = google.freebusy_requests("primary", start, end)
    assert len(bodies) == 7
    assert bodies[0]["timeMin"] == "2029-12-31T18:30:00Z" and bodies[-1]["timeMax"] == "2031-01-03T18:30:00Z"
    for before, after in zip(bodies, bodies[1:]):
        assert before["timeMax"] == after["timeMin"]
    for body in bodies:
        span = dt.datetime.fromisoformat(body["timeMax"].replace("Z", "+00:00")) - dt.datetime.fromisoformat(
            body["timeMin"].replace("Z", "+00:00")
        )
        assert dt.timedelta(0) < span <= dt.timedelta(days=60)


def test_parse_freebusy_reads_intervals_in_any_offset():
    assert google.parse_freebusy(FREEBUSY_OK, "sales@example.com") == [
        (dt.datetime(2030, 6, 3, 13, tzinfo=UTC), dt.datetime(2030, 6, 3, 14, tzinfo=UTC)),
        (dt.datetime(2030, 6, 3, 20, 30, tzinfo=UTC), dt.datetime(2030, 6, 3, 21, tzinfo=UTC)),
    ]


def test_an_unreadable_calendar_is_not_free():
    with pytest.raises(InvalidArgument) as refused:
        google.parse_freebusy(FREEBUSY_NOT_FOUND, "nobody@example.com")
    assert refused.value.details[0]["field"] == "calendarId"
    with pytest.raises(Unavailable):
        google.parse_freebusy(FREEBUSY_BACKEND_ERROR, "sales@example.com")
    with pytest.raises(Unavailable):
        google.parse_freebusy(FREEBUSY_OK, "someone-else@example.com")


def test_event_id_is_valid_for_google_and_stable():
    made = google.event_id("AbCdEfGhIjKlMnOpQrSt")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", made)
    assert made == google.event_id("AbCdEfGhIjKlMnOpQrSt")
    assert made != google.event_id("AbCdEfGhIjKlMnOpQrSu")


def test_event_request():
    url, params, body = google.event_request("AbCdEfGhIjKlMnOpQrSt", BOOKING)
    assert url == "https://www.googleapis.com/calendar/v3/calendars/sales%40example.com/events"
    assert params == {"sendUpdates": "all"}
    assert body == {
        "id": google.event_id("AbCdEfGhIjKlMnOpQrSt"),
        "summary": "Intro call",
        "description": "Agenda: pricing",
        "start": {"dateTime": "2030-06-03T09:00:00-04:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2030-06-03T09:30:00-04:00", "timeZone": "America/New_York"},
        "attendees": [{"email": "ada@example.com", "displayName": "Ada"}, {"email": "bob@example.com"}],
        "extendedProperties": {
            "private": {"missionControlBookingId": "AbCdEfGhIjKlMnOpQrSt", "runId": "run-1", "leadDocId": "lead-000003"}
        },
    }


def test_event_request_without_zone_or_attendees_sends_no_invitations():
    booking = {**BOOKING, "timeZone": None, "attendees": [], "runId": None, "calendarId": "primary"}
    url, params, body = google.event_request("AbCdEfGhIjKlMnOpQrSt", booking)
    assert url.endswith("/calendars/primary/events") and params == {"sendUpdates": "none"}
    assert body["start"] == {"dateTime": "2030-06-03T09:00:00-04:00"}
    assert body["extendedProperties"]["private"] == {"missionControlBookingId": "AbCdEfGhIjKlMnOpQrSt"}


def test_parse_event_keeps_the_provider_ids():
    assert google.parse_event(EVENT) == {"eventId": EVENT["id"], "htmlLink": EVENT["htmlLink"]}


class Reply:
    def __init__(self, status_code, body, headers=None):
        self.status_code, self._body, self.headers = status_code, body, headers or {}
        self.text = str(body)

    def json(self):
        return self._body


class RecordingSession:
    """Stands in for google-auth's AuthorizedSession: replays recorded answers."""

    def __init__(self, *replies):
        self.replies, self.calls = list(replies), []

    def post(self, url, **kwargs):
        self.calls.append(("POST", url, kwargs))
        return self.replies.pop(0)

    def get(self, url, **kwargs):
        self.calls.append(("GET", url, kwargs))
        return self.replies.pop(0)


def test_insert_fetches_the_event_when_a_retry_finds_it_already_there():
    session = RecordingSession(Reply(409, DUPLICATE), Reply(200, EVENT))
    calendar = google.GoogleCalendar(db=None, session=session)
    assert calendar._insert("AbCdEfGhIjKlMnOpQrSt", BOOKING) == EVENT
    assert [c[0] for c in session.calls] == ["POST", "GET"]
    assert session.calls[1][1].endswith("/events/" + google.event_id("AbCdEfGhIjKlMnOpQrSt"))


@pytest.mark.parametrize(
    "status, headers, error",
    [(404, {}, InvalidArgument), (403, {}, Unavailable), (429, {"Retry-After": "30"}, Unavailable), (500, {}, Unavailable)],
)
def test_api_errors_become_domain_errors(status, headers, error):
    session = RecordingSession(Reply(status, {"error": {"errors": [{"reason": "x"}], "code": status, "message": "no"}}, headers))
    with pytest.raises(error) as raised:
        google.GoogleCalendar(db=None, session=session)._insert("AbCdEfGhIjKlMnOpQrSt", BOOKING)
    if status == 429:
        assert raised.value.retry_after_seconds == 30
