"""Sender use-cases: replace a sender's settings, read it with its usage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared import clock, ids
from shared.errors import NotFound
from shared.senders.models import Sender, SenderList, SenderPut
from shared.store import senders as repo


def to_api(doc: dict[str, Any], now: dt.datetime) -> Sender:
    paused = doc.get("pausedUntil")
    active_pause = paused is not None and paused > now
    blocked = repo.refusal(doc, now)
    return Sender(
        id=doc["id"],
        email=doc["email"],
        max_per_day=int(doc["maxPerDay"]),
        max_per_hour=doc.get("maxPerHour"),
        min_gap_seconds=int(doc.get("minGapSeconds") or 0),
        jitter_seconds=int(doc.get("jitterSeconds") or 0),
        sentLast24h=len(repo.recent(doc.get("sends"), now)),
        # When the next send may start: now if nothing stands in the way.
        next_send_at=clock.rfc3339(blocked.wake_at if blocked else now),
        paused_until=clock.rfc3339(paused) if active_pause else None,
        pause_reason=doc.get("pauseReason") if active_pause else None,
        created_at=clock.rfc3339(doc.get("createdAt")),
        updated_at=clock.rfc3339(doc.get("updatedAt")),
    )


def put(db: Any, sender_id: str, fields: SenderPut) -> Sender:
    ids.check_id(sender_id, "senderId")
    now = clock.now()
    settings = {
        "email": fields.email, "maxPerDay": fields.max_per_day, "maxPerHour": fields.max_per_hour,
        "minGapSeconds": fields.min_gap_seconds, "jitterSeconds": fields.jitter_seconds,
    }
    return to_api(repo.put(db, sender_id, settings, now), now)


def get(db: Any, sender_id: str) -> Sender:
    doc = repo.get(db, ids.check_id(sender_id, "senderId"))
    if doc is None:
        raise NotFound(f"sender {sender_id} does not exist")
    return to_api(doc, clock.now())


def list_senders(db: Any) -> SenderList:
    now = clock.now()
    return SenderList(senders=[to_api(doc, now) for doc in repo.list_all(db)])
