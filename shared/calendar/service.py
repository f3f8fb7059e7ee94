"""The schedule use-case: find free slots, and with book: true book the first one.

Candidates are computed from the request's busy intervals plus what the calendar
backend already holds (existing bookings, Google free/busy). Booking walks the
candidates in order: a slot taken meanwhile by a concurrent request is skipped, and
when none is left the answer is 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from shared import clock, ids, slots
from shared.auth import User
from shared.calendar.firestore_bookings import FirestoreCalendar, LeadTarget, lead_document
from shared.calendar.models import Booking, Candidate, ScheduleRequest, ScheduleResult
from shared.errors import Conflict
from shared.settings import get_settings
from shared.store import bookings as repo

UTC = dt.timezone.utc


class CalendarBackend(Protocol):
    name: str

    def busy(self, calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[slots.Interval]: ...

    def book(self, booking_id: str, booking: dict[str, Any], lead: LeadTarget | None) -> dict[str, Any] | None: ...


def backend_for(db: Any) -> CalendarBackend:
    if get_settings().calendar_backend == "google":
        from shared.calendar.google_calendar import GoogleCalendar

        return GoogleCalendar(db)
    return FirestoreCalendar(db)


def schedule(
    db: Any,
    request: ScheduleRequest,
    now: dt.datetime,
    user: User | None = None,
    backend: CalendarBackend | None = None,
) -> ScheduleResult:
    backend = backend or backend_for(db)
    calendar_id = request.calendar_id or get_settings().google_calendar_id
    lead = LeadTarget(request.run_id, request.lead_doc_id) if request.run_id and request.lead_doc_id else None
    if lead is not None:
        lead_document(db, lead)  # an unknown lead is a 404 before anything is read or written
    window_start, window_end = _busy_window(request)
    taken = backend.busy(calendar_id, window_start, window_end)

    if request.slot_search is not None:
        search = request.slot_search
        query = slots.SlotQuery(
            zone=search.zone,
            first_day=search.start_date,
            last_day=search.last_day,
            work_start_minute=search.working_hours.start_minute,
            work_end_minute=search.working_hours.end_minute,
            working_days=frozenset(search.working_days),
            duration_minutes=request.minutes,
            step_minutes=search.step_minutes,
            min_notice_minutes=search.min_notice_minutes,
            max_candidates=search.max_candidates,
        )
        found = slots.find_slots(query, [*((b.start, b.end) for b in search.busy), *taken], now)
    else:
        found = slots.free_starts(request.candidate_starts or [], request.minutes, taken, now)

    booking = None
    if request.book:
        booking = _book_first_free(backend, found, request, calendar_id, lead, now, user)
    return ScheduleResult(candidates=[_candidate(slot) for slot in found], booking=booking)


def _busy_window(request: ScheduleRequest) -> tuple[dt.datetime, dt.datetime]:
    """The UTC span whose busy time can matter to this request's candidates."""
    if request.slot_search is not None:
        search = request.slot_search
        # A local day lies within a day either side of the same UTC date
        # (offsets stay under 24 hours), so the span is padded by that.
        start = dt.datetime.combine(search.start_date, dt.time(), UTC) - dt.timedelta(days=1)
        end = dt.datetime.combine(search.last_day, dt.time(), UTC) + dt.timedelta(days=2)
        return start, end
    starts = [start.astimezone(UTC) for start in request.candidate_starts or []]
    return min(starts), max(starts) + dt.timedelta(minutes=request.minutes)


def _book_first_free(
    backend: CalendarBackend,
    found: list[slots.Slot],
    request: ScheduleRequest,
    calendar_id: str,
    lead: LeadTarget | None,
    now: dt.datetime,
    user: User | None,
) -> Booking:
    time_zone = _booking_zone(request)
    attendees = [a.model_dump(by_alias=True, exclude_none=True) for a in request.attendees]
    lead_fields = request.lead.model_dump(by_alias=True, exclude_none=True) if request.lead else None
    for slot in found:
        booking_id = ids.new_id()
        document = repo.booking_document(
            calendar_id=calendar_id,
            start_utc=slot.start_utc,
            end_utc=slot.end_utc,
            start=slot.start.isoformat(),
            end=slot.end.isoformat(),
            time_zone=time_zone,
            title=request.title,
            description=request.description,
            attendees=attendees,
            lead=lead_fields,
            run_id=lead.run_id if lead else None,
            lead_doc_id=lead.lead_doc_id if lead else None,
            backend=backend.name,
            status="pending",
            created_at=now,
            created_by=user.email if user else None,
        )
        stored = backend.book(booking_id, document, lead)
        if stored is not None:
            return _booking(stored)
    detail = "no candidate slot was found" if not found else "every candidate slot was booked meanwhile"
    raise Conflict(f"nothing to book: {detail}", [{"field": "book", "candidates": len(found)}])


def _booking_zone(request: ScheduleRequest) -> str | None:
    """The zone the meeting is shown in: the search's, else the lead's (the Operations
    page books a chosen slot as a candidateStart and names the zone on the lead)."""
    if request.slot_search is not None:
        return request.slot_search.time_zone
    return request.lead.time_zone if request.lead is not None else None


def _candidate(slot: slots.Slot) -> Candidate:
    return Candidate(
        start=slot.start.isoformat(),
        end=slot.end.isoformat(),
        start_utc=clock.utc_text(slot.start_utc),
        end_utc=clock.utc_text(slot.end_utc),
    )


def _booking(stored: dict[str, Any]) -> Booking:
    return Booking(
        id=stored["id"],
        calendar_id=stored["calendarId"],
        start=stored["startLocal"],
        end=stored["endLocal"],
        start_utc=clock.utc_text(stored["start"]),
        end_utc=clock.utc_text(stored["end"]),
        time_zone=stored["timeZone"],
        title=stored["title"],
        status=stored["status"],
        backend=stored["backend"],
        event_id=stored.get("eventId"),
        html_link=stored.get("htmlLink"),
        receipt_id=stored.get("receiptId"),
        created_at=clock.rfc3339(stored["createdAt"]),
    )
