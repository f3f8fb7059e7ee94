"""The Google Calendar backend (CALENDAR_BACKEND=google): busy time from
freeBusy.query, bookings as events.insert, over REST with google-auth credentials.

Google Calendar has no check-and-insert, so the slot is first claimed in Firestore
exactly as the default backend books it (status "pending"); only the winner of that
claim inserts the event, and a failed insert releases the claim. The event id is
derived from the booking id, so a retried insert cannot create a second event.
Events created in Google by other means are seen through freeBusy, but one created
between our freeBusy read and our insert is not: Google offers no way to close
that gap.

Request building and response parsing are plain functions so they are tested on
recorded API shapes without the network (tests/unit/test_google_calendar.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any
from urllib.parse import quote

from shared import clock, logs
from shared.calendar import firestore_bookings
from shared.calendar.firestore_bookings import LeadTarget
from shared.errors import Unavailable, field_error
from shared.slots import Interval

logger = logging.getLogger("mission_control.calendar")

API = "https://www.googleapis.com/calendar/v3"
SCOPE = "https://www.googleapis.com/auth/calendar"
# freeBusy refuses long ranges ("The requested time range is too long", about 90
# days); a year-long search is asked in pieces well inside that.
FREEBUSY_MAX_SPAN = dt.timedelta(days=60)
TIMEOUT_SECONDS = 10


def freebusy_requests(calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Bodies of the freeBusy.query calls that cover [start, end)."""
    bodies = []
    piece = start
    while piece < end:
        piece_end = min(piece + FREEBUSY_MAX_SPAN, end)
        bodies.append({"timeMin": clock.utc_text(piece), "timeMax": clock.utc_text(piece_end), "items": [{"id": calendar_id}]})
        piece = piece_end
    return bodies


def parse_freebusy(body: dict[str, Any], calendar_id: str) -> list[Interval]:
    """Busy intervals of `calendar_id` in a freeBusy response.

    Google reports a calendar it cannot read inside the 200 response, under
    calendars[id].errors, not as an HTTP error: that must not read as "free".
    """
    entry = body.get("calendars", {}).get(calendar_id)
    if entry is None:
        raise Unavailable("Google Calendar's free/busy answer did not include the calendar")
    problems = entry.get("errors") or []
    if problems:
        reasons = ", ".join(sorted({p.get("reason", "unknown") for p in problems}))
        if "notFound" in reasons:
            raise field_error("calendarId", f"Google Calendar cannot read this calendar ({reasons})")
        raise Unavailable(f"Google Calendar could not report free/busy time ({reasons})")
    return [(_parse_time(span["start"]), _parse_time(span["end"])) for span in entry.get("busy", [])]


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def event_id(booking_id: str) -> str:
    """Google event ids use base32hex's alphabet (a-v, 0-9), 5 to 1024 characters."""
    return base64.b32hexencode(booking_id.encode()).decode().rstrip("=").lower()


def event_request(booking_id: str, booking: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, query parameters, body) of the events.insert call for a booking."""
    def moment(local: str) -> dict[str, str]:
        # dateTime carries the offset; timeZone (when the search had one) makes
        # Google show the event, and any recurrence edits, in the lead's zone.
        return {"dateTime": local, **({"timeZone": booking["timeZone"]} if booking.get("timeZone") else {})}

    attendees = [
        {"email": a["email"], **({"displayName": a["displayName"]} if a.get("displayName") else {})}
        for a in booking.get("attendees", [])
    ]
    body = {
        "id": event_id(booking_id),
        "summary": booking["title"],
        "description": booking.get("description", ""),
        "start": moment(booking["startLocal"]),
        "end": moment(booking["endLocal"]),
        "attendees": attendees,
        "extendedProperties": {
            "private": {
                "missionControlBookingId": booking_id,
                **({"runId": booking["runId"], "leadDocId": booking["leadDocId"]} if booking.get("runId") else {}),
            }
        },
    }
    url = f"{API}/calendars/{quote(booking['calendarId'], safe='')}/events"
    return url, {"sendUpdates": "all" if attendees else "none"}, body


def parse_event(body: dict[str, Any]) -> dict[str, Any]:
    """The provider ids a booking keeps from an inserted (or fetched) event."""
    return {"eventId": body["id"], "htmlLink": body.get("htmlLink")}


def _api_error(response: Any) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        reason = (error.get("errors") or [{}])[0].get("reason", "")
        return reason, error.get("message", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:200]


class GoogleCalendar:
    name = "google"

    def __init__(self, db: Any, session: Any = None):
        self.db = db
        self._session = session

    @property
    def session(self) -> Any:
        if self._session is None:
            # Application Default Credentials: the function's service account in
            # Cloud Functions. It must be able to write the calendar (share it with
            # the account, or use domain-wide delegation to invite attendees).
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError
            from google.auth.transport.requests import AuthorizedSession

            try:
                credentials, _ = google.auth.default(scopes=[SCOPE])
            except DefaultCredentialsError:
                raise Unavailable("CALENDAR_BACKEND=google, but no Google credentials are available") from None
            self._session = AuthorizedSession(credentials)
        return self._session

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        import requests

        try:
            return getattr(self.session, method)(url, timeout=TIMEOUT_SECONDS, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Unavailable(f"Google Calendar did not answer ({type(exc).__name__})") from None

    def busy(self, calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        intervals = firestore_bookings.busy(self.db, calendar_id, start, end)  # our claims in flight too
        for body in freebusy_requests(calendar_id, start, end):
            response = self._call("post", f"{API}/freeBusy", json=body)
            self._raise_for_status(response, "freeBusy.query")
            intervals += parse_freebusy(response.json(), calendar_id)
        return intervals

    def book(self, booking_id: str, booking: dict[str, Any], lead: LeadTarget | None) -> dict[str, Any] | None:
        pending = {**booking, "backend": self.name, "status": "pending"}
        claimed = firestore_bookings.claim(self.db, booking_id, pending, lead, with_receipt=False)
        if claimed is None:
            return None
        try:
            event = self._insert(booking_id, pending)
        except Exception:
            firestore_bookings.release(self.db, booking_id, pending)
            raise
        return firestore_bookings.confirm(self.db, booking_id, pending, parse_event(event), lead)

    def _insert(self, booking_id: str, booking: dict[str, Any]) -> dict[str, Any]:
        url, params, body = event_request(booking_id, booking)
        response = self._call("post", url, params=params, json=body)
        if response.status_code == 409 and _api_error(response)[0] == "duplicate":
            # Our own earlier attempt got through (the id is ours): fetch it instead.
            response = self._call("get", f"{url}/{body['id']}")
        self._raise_for_status(response, "events.insert")
        return response.json()

    @staticmethod
    def _raise_for_status(response: Any, call: str) -> None:
        if response.status_code < 400:
            return
        reason, message = _api_error(response)
        logs.log(logger, logging.WARNING, f"Google Calendar {call} failed", status=response.status_code, reason=reason, detail=message)
        if response.status_code == 404:
            raise field_error("calendarId", f"Google Calendar does not know this calendar ({reason or 'notFound'})")
        retry_after = response.headers.get("Retry-After", "5")
        raise Unavailable(
            f"Google Calendar refused {call} ({response.status_code} {reason}); nothing was booked",
            retry_after_seconds=int(retry_after) if retry_after.isdigit() else 5,
        )
