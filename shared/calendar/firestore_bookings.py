"""The default calendar backend: bookings kept in Firestore's calendar_bookings.

The check ("does any booking of this calendar overlap the slot?") and the write are
one atomic commit conditioned on what the check read: the slot's hour-lock
documents (see shared/store/bookings.py) must be exactly as read, or the whole
commit fails and the check runs again. Two concurrent requests for overlapping
slots of a calendar share a lock document, so only one of them can commit. The
Google backend uses the same claim as its own guard.

Why compare-and-set rather than a read-write transaction: such a transaction holds
read locks on the lock document until it commits, so a burst of requests for one
slot all hold it and all wait to upgrade; the emulator resolves that only by lock
timeouts (seconds each), and production serialises them too. A conditional commit
holds no lock while it checks: the losers fail at once and re-read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.errors import NotFound, Unavailable
from shared.slots import Interval
from shared.store import bookings as repo
from shared.store import runs
from shared.retry import Exhausted, Policy
from shared.store.client import MarkedBatch, commit_args, read_args

# A commit refused because another booking changed a lock document first is
# retried after a randomised, growing pause, so colliding requests spread out
# instead of colliding again; the whole budget stays a few seconds before the
# request gives up with a 503.
_CLAIM_ATTEMPTS = 10
# What a commit whose preconditions no longer hold raises: a lock document created
# meanwhile, changed meanwhile, or (released) deleted meanwhile; ABORTED is the
# emulator's answer when two commits touch one document at the same moment.
_LOST_RACE = (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted)


class _Contended(Exception):
    """Another booking of the calendar changed a lock document between the check and the commit."""


_BOOKING_RACES = Policy("a booking that met a concurrent booking of its calendar", retry_on=(_Contended,), initial=0.02, maximum=0.5)


@dataclasses.dataclass(frozen=True)
class LeadTarget:
    """The lead a booking's calendar.book receipt is written under."""

    run_id: str
    lead_doc_id: str


def lead_document(db: firestore.Client, lead: LeadTarget) -> dict[str, Any]:
    snapshot = runs.lead_ref(db, lead.run_id, lead.lead_doc_id).get(**read_args())
    if not snapshot.exists:
        raise NotFound(f"lead {lead.lead_doc_id} of run {lead.run_id} does not exist")
    return snapshot.to_dict()


def busy(db: firestore.Client, calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return [(doc["start"], doc["end"]) for doc in repo.overlapping(db, calendar_id, start, end)]


def claim(
    db: firestore.Client, booking_id: str, booking: dict[str, Any], lead: LeadTarget | None, with_receipt: bool
) -> dict[str, Any] | None:
    """Writes the booking if no booking of its calendar overlaps it; None if one does.

    With `with_receipt`, the lead's calendar.book receipt is part of the same commit,
    so there is never a booking without its receipt or the reverse. Returns the
    stored booking plus `receiptId`.
    """
    locks = repo.hour_lock_refs(db, booking["calendarId"], booking["start"], booking["end"])
    lead_index = lead_document(db, lead).get("index") if lead is not None else None

    def once() -> dict[str, Any] | None:
        snapshots = list(db.get_all(locks, **read_args()))
        for snapshot in snapshots:
            for _, start, end in repo.locked_intervals(snapshot):
                if start < booking["end"] and booking["start"] < end:
                    return None
        batch = MarkedBatch(db)
        batch.create(repo.booking_ref(db, booking_id), booking)
        for snapshot in snapshots:
            if snapshot.exists:
                # Only if nobody wrote this lock document since we checked it.
                batch.update(
                    snapshot.reference,
                    repo.lock_addition(booking_id, booking["start"], booking["end"]),
                    option=db.write_option(last_update_time=snapshot.update_time),
                )
            else:
                # Fails if somebody created it since we checked.
                batch.create(
                    snapshot.reference,
                    repo.lock_document(booking["calendarId"], booking_id, booking["start"], booking["end"]),
                )
        receipt_id = None
        if lead is not None and with_receipt:
            receipt_id = _add_receipt(batch, db, booking_id, booking, lead, lead_index)
        try:
            batch.commit(**commit_args())
        except _LOST_RACE as exc:
            # The client may have re-sent a commit that had landed: then the locks now
            # list this very booking, and it is booked, not refused (store/client.MarkedBatch).
            if not batch.landed():
                raise _Contended() from exc
        return {**booking, "id": booking_id, "receiptId": receipt_id}

    try:
        return _BOOKING_RACES.call(once, attempts=_CLAIM_ATTEMPTS)
    except Exhausted:
        raise Unavailable("the calendar is busy with concurrent bookings; try again", retry_after_seconds=1) from None


def confirm(
    db: firestore.Client,
    booking_id: str,
    booking: dict[str, Any],
    changes: dict[str, Any],
    lead: LeadTarget | None,
) -> dict[str, Any]:
    """Marks a claimed booking confirmed (with provider ids) and writes its receipt, atomically."""
    updated = {**booking, **changes, "status": "confirmed"}
    batch = db.batch()
    batch.update(repo.booking_ref(db, booking_id), {**changes, "status": "confirmed"})
    receipt_id = None
    if lead is not None:
        receipt_id = _add_receipt(batch, db, booking_id, updated, lead, lead_document(db, lead).get("index"))
    batch.commit(**commit_args())
    return {**updated, "id": booking_id, "receiptId": receipt_id}


def release(db: firestore.Client, booking_id: str, booking: dict[str, Any]) -> None:
    """Undoes a claim whose provider step failed, so the slot is free again."""
    locks = repo.hour_lock_refs(db, booking["calendarId"], booking["start"], booking["end"])
    batch = db.batch()
    batch.delete(repo.booking_ref(db, booking_id))
    for ref in locks:
        batch.update(ref, repo.lock_release(booking_id))
    batch.commit(**commit_args())


def _add_receipt(
    batch: Any,
    db: firestore.Client,
    booking_id: str,
    booking: dict[str, Any],
    lead: LeadTarget,
    lead_index: int | None,
) -> str:
    action_id, receipt = repo.receipt_document(booking_id, booking, lead.run_id, lead.lead_doc_id, lead_index)
    batch.set(runs.action_ref(db, lead.run_id, lead.lead_doc_id, action_id), receipt)
    return action_id


class FirestoreCalendar:
    """Free/busy and booking both from calendar_bookings."""

    name = "firestore"

    def __init__(self, db: firestore.Client):
        self.db = db

    def busy(self, calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        return busy(self.db, calendar_id, start, end)

    def book(self, booking_id: str, booking: dict[str, Any], lead: LeadTarget | None) -> dict[str, Any] | None:
        return claim(self.db, booking_id, {**booking, "backend": self.name, "status": "confirmed"}, lead, True)
