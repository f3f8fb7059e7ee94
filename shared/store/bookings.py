"""calendar_bookings/{bookingId} and their hour locks: the only module that knows
these collections' paths and document shapes.

A booking document holds one meeting. Every booking also lists itself in one lock
document per UTC hour it touches (calendar_booking_locks/{calendarId}~{hour}). Two
bookings that overlap always share the hour in which their overlap starts, so two
requests booking overlapping slots of one calendar both read and write that lock
document, and a commit conditioned on it being unchanged lets only one of them
through (shared/calendar/firestore_bookings.py). A query cannot be made a
precondition; a document can, on Firestore and on the emulator alike.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.store import runs
from shared.store.client import read_args

if TYPE_CHECKING:
    from google.cloud import firestore

BOOKINGS = "calendar_bookings"
HOUR_LOCKS = "calendar_booking_locks"
# The longest booking the API accepts. Bookings are found by their start, so a
# search for those overlapping [start, end) looks this far back before `start`.
MAX_BOOKING_MINUTES = 24 * 60
# calendarId may not contain these: they separate it from the time in keys and ids.
KEY_SEPARATOR = "|"
LOCK_SEPARATOR = "~"

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)


def booking_ref(db: "firestore.Client", booking_id: str) -> "firestore.DocumentReference":
    return db.collection(BOOKINGS).document(booking_id)


def calendar_key(calendar_id: str, instant: dt.datetime) -> str:
    """calendarId + start as one string field whose order is time order within a
    calendar: a range on this single field needs no composite index."""
    return f"{calendar_id}{KEY_SEPARATOR}{instant.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def booking_document(
    *,
    calendar_id: str,
    start_utc: dt.datetime,
    end_utc: dt.datetime,
    start: str,
    end: str,
    time_zone: str | None,
    title: str,
    description: str,
    attendees: list[dict[str, Any]],
    lead: dict[str, Any] | None,
    run_id: str | None,
    lead_doc_id: str | None,
    backend: str,
    status: str,
    created_at: dt.datetime,
    created_by: str | None,
) -> dict[str, Any]:
    return {
        "calendarId": calendar_id,
        "calendarKey": calendar_key(calendar_id, start_utc),
        "start": start_utc,
        "end": end_utc,
        "startLocal": start,
        "endLocal": end,
        "timeZone": time_zone,
        "title": title,
        "description": description,
        "attendees": attendees,
        "lead": lead,
        "runId": run_id,
        "leadDocId": lead_doc_id,
        "backend": backend,
        "status": status,  # "confirmed", or "pending" while the Google event is inserted
        "eventId": None,
        "htmlLink": None,
        "createdAt": created_at,
        "createdBy": created_by,
    }


def overlapping(
    db: "firestore.Client", calendar_id: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Bookings of the calendar that overlap [start, end), in start order."""
    query = (
        db.collection(BOOKINGS)
        .where(filter=FieldFilter("calendarKey", ">=", calendar_key(calendar_id, start - dt.timedelta(minutes=MAX_BOOKING_MINUTES))))
        .where(filter=FieldFilter("calendarKey", "<", calendar_key(calendar_id, end)))
        .order_by("calendarKey")
    )
    found = [runs.as_dict(snapshot) for snapshot in query.stream(**read_args())]
    return [doc for doc in found if doc["end"] > start]


def hour_lock_refs(
    db: "firestore.Client", calendar_id: str, start: dt.datetime, end: dt.datetime
) -> list["firestore.DocumentReference"]:
    """One lock document per UTC hour that [start, end) touches."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    refs = []
    while hour < end:
        refs.append(db.collection(HOUR_LOCKS).document(f"{calendar_id}{LOCK_SEPARATOR}{hour:%Y%m%dT%H}"))
        hour += HOUR
    return refs


def locked_intervals(snapshot: "firestore.DocumentSnapshot") -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(bookingId, start, end) of the bookings a lock document lists."""
    if not snapshot.exists:
        return []
    held = snapshot.to_dict().get("bookings", {})
    return [(booking_id, span["start"], span["end"]) for booking_id, span in held.items()]


def lock_document(calendar_id: str, booking_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """A new lock document listing one booking."""
    return {"calendarId": calendar_id, "bookings": {booking_id: {"start": start, "end": end}}}


def lock_addition(booking_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The update that adds one booking to an existing lock document."""
    return {f"bookings.{booking_id}": {"start": start, "end": end}}  # ids are letters and digits


def lock_release(booking_id: str) -> dict[str, Any]:
    """The update that removes one booking from a lock document."""
    from google.cloud import firestore

    return {f"bookings.{booking_id}": firestore.DELETE_FIELD}  # ids are letters and digits


def receipt_document(
    booking_id: str,
    booking: dict[str, Any],
    run_id: str,
    lead_doc_id: str,
    lead_index: int | None,
) -> tuple[str, dict[str, Any]]:
    """(actionId, document) of the calendar.book receipt, in docs/data-model.md's shape.

    The id is deterministic from the slot, so booking the same slot for the same
    lead again overwrites its receipt rather than adding a second one.
    """
    step = f"calendar-book-{booking['start'].astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return step, {
        "type": "calendar.book",
        "status": "booked",
        "at": booking["createdAt"],
        "attempt": 1,
        "idempotencyKey": runs.idempotency_key(run_id, lead_doc_id, step),
        "summary": f"booked \"{booking['title']}\" {booking['startLocal']} to {booking['endLocal']} on {booking['calendarId']}",
        "error": None,
        "providerIds": {"bookingId": booking_id, "eventId": booking.get("eventId")},
        "runId": run_id,
        "leadDocId": lead_doc_id,
        "leadIndex": lead_index,
    }
