"""senders/{senderId}: a mailbox's settings and its send ledger, changed only by
compare-and-set commits (client.write_if_unchanged) so caps hold across runs.

The ledger `sends` is one entry {at, key} per send of the last 24 h (key = run/lead,
so a retried reservation of one lead finds its own entry instead of adding a second).
`nextSendAt` is the earliest moment the next send may start (last + gap + jitter);
`pausedUntil`/`pauseReason` hold a provider-quota pause.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any, Callable

from google.cloud import firestore

from shared.store.client import as_dict, read_args, write_if_unchanged

SENDERS = "senders"
WINDOW = dt.timedelta(hours=24)
HOUR = dt.timedelta(hours=1)
SETTINGS = ("email", "maxPerDay", "maxPerHour", "minGapSeconds", "jitterSeconds")


@dataclasses.dataclass(frozen=True)
class Reservation:
    granted: bool
    reason: str | None = None  # daily_cap | hourly_cap | pacing | provider_quota | sender_missing
    wake_at: dt.datetime | None = None
    pause_level: int = 0  # how many quota pauses in a row preceded a grant


def ref(db: "firestore.Client", sender_id: str) -> "firestore.DocumentReference":
    return db.collection(SENDERS).document(sender_id)


def get(db: "firestore.Client", sender_id: str) -> dict[str, Any] | None:
    return as_dict(ref(db, sender_id).get(**read_args()))


def list_all(db: "firestore.Client", limit: int = 500) -> list[dict[str, Any]]:
    return [as_dict(s) for s in db.collection(SENDERS).order_by("__name__").limit(limit).stream(**read_args())]


def put(db: "firestore.Client", sender_id: str, settings: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Creates or replaces the settings; the ledger and any pause survive a replace (they are real sends)."""
    document_ref = ref(db, sender_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        existing = snapshot.to_dict() if snapshot.exists else None
        if existing is None:
            doc = {**settings, "sends": [], "nextSendAt": None, "pausedUntil": None, "pauseReason": None,
                   "pauseLevel": 0, "createdAt": now, "updatedAt": now}
            batch.create(document_ref, doc)
        else:
            doc = {**existing, **settings, "updatedAt": now}
            batch.update(document_ref, {**settings, "updatedAt": now}, option=unchanged)
        return {"id": sender_id, **doc}

    return write_if_unchanged(db, document_ref, apply)


def recent(sends: list[dict[str, Any]] | None, now: dt.datetime) -> list[dict[str, Any]]:
    """The ledger entries of the last 24 h, oldest first."""
    return sorted((s for s in sends or [] if s["at"] > now - WINDOW), key=lambda s: s["at"])


def refusal(doc: dict[str, Any], now: dt.datetime) -> Reservation | None:
    """Why `doc`'s sender may not send at `now`, and until when; None when it may."""
    paused = doc.get("pausedUntil")
    if paused is not None and paused > now:
        return Reservation(False, "provider_quota", paused)
    sends = recent(doc.get("sends"), now)
    if len(sends) >= int(doc["maxPerDay"]):
        # The window frees one place when the send that is maxPerDay-th from the end ages out.
        return Reservation(False, "daily_cap", sends[len(sends) - int(doc["maxPerDay"])]["at"] + WINDOW)
    per_hour = doc.get("maxPerHour")
    if per_hour:
        last_hour = [s for s in sends if s["at"] > now - HOUR]
        if len(last_hour) >= int(per_hour):
            return Reservation(False, "hourly_cap", last_hour[len(last_hour) - int(per_hour)]["at"] + HOUR)
    next_at = doc.get("nextSendAt")
    if next_at is not None and next_at > now:
        return Reservation(False, "pacing", next_at)
    return None


def reserve(
    db: "firestore.Client", sender_id: str, key: str, now: dt.datetime,
    jitter: Callable[[float], float] = lambda top: random.uniform(0, top),
) -> Reservation:
    """Records one send for `key` under every cap, or says why not and until when.

    One compare-and-set commit on the sender's document: two runs reserving at once
    are serialised by the precondition, so the ledger never holds more than the caps
    allow. Reserving again for a key already in the ledger grants it without a second
    entry (a retried lead, or a worker that died between reserving and sending).
    """
    document_ref = ref(db, sender_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> Reservation:
        doc = snapshot.to_dict() if snapshot.exists else None
        if doc is None:
            return Reservation(False, "sender_missing")
        sends = recent(doc.get("sends"), now)
        if any(s.get("key") == key for s in sends):
            return Reservation(True, pause_level=int(doc.get("pauseLevel") or 0))
        refused = refusal(doc, now)
        if refused is not None:
            return refused
        gap = int(doc.get("minGapSeconds") or 0) + jitter(float(doc.get("jitterSeconds") or 0))
        batch.update(document_ref, {
            "sends": sends + [{"at": now, "key": key}],
            "nextSendAt": now + dt.timedelta(seconds=gap),
            "updatedAt": now,
        }, option=unchanged)
        return Reservation(True, pause_level=int(doc.get("pauseLevel") or 0))

    # Every run of a sender contends on this one document: more rounds than the default.
    return write_if_unchanged(db, document_ref, apply, attempts=16)


def release(db: "firestore.Client", sender_id: str, key: str, now: dt.datetime) -> bool:
    """Takes back `key`'s ledger entry: its send certainly never happened. The pacing
    gap it started stays (spacing errs on the side of waiting)."""
    document_ref = ref(db, sender_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> bool:
        doc = snapshot.to_dict() if snapshot.exists else None
        if doc is None:
            return False
        sends = doc.get("sends") or []
        kept = [s for s in sends if s.get("key") != key]
        if len(kept) == len(sends):
            return False
        batch.update(document_ref, {"sends": kept, "updatedAt": now}, option=unchanged)
        return True

    return write_if_unchanged(db, document_ref, apply)


def pause(db: "firestore.Client", sender_id: str, until: dt.datetime | None, reason: str, now: dt.datetime,
          backoff: Callable[[int], dt.timedelta] | None = None) -> dt.datetime | None:
    """Pauses the sender until `until`, or, without one, for backoff(level) with the level
    raised by each pause until a send goes through (clear_backoff). A later pause
    already in place is kept. Returns the pause's end."""
    document_ref = ref(db, sender_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dt.datetime | None:
        doc = snapshot.to_dict() if snapshot.exists else None
        if doc is None:
            return None
        level = int(doc.get("pauseLevel") or 0)
        end = until if until is not None else now + backoff(level)
        current = doc.get("pausedUntil")
        if current is not None and current >= end:
            return current
        batch.update(document_ref, {
            "pausedUntil": end, "pauseReason": reason[:300], "pauseLevel": level + 1, "updatedAt": now,
        }, option=unchanged)
        return end

    return write_if_unchanged(db, document_ref, apply)


def clear_backoff(db: "firestore.Client", sender_id: str, now: dt.datetime) -> None:
    """A send went through after a pause: the next quota refusal backs off from the start again."""
    document_ref = ref(db, sender_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> None:
        doc = snapshot.to_dict() if snapshot.exists else None
        if doc and doc.get("pauseLevel"):
            batch.update(document_ref, {"pauseLevel": 0, "updatedAt": now}, option=unchanged)

    write_if_unchanged(db, document_ref, apply)
