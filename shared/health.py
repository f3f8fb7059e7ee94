"""GET /api/health: is this build up, and can it reach Firestore right now?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from shared import clock
from shared.http import Reply
from shared.models import ApiModel
from shared.settings import Settings

if TYPE_CHECKING:
    from google.cloud import firestore

FIRESTORE_TIMEOUT_SECONDS = 3.0


class Health(ApiModel):
    """The documented shape; `reason` is present only when Firestore is unreachable."""

    status: Literal["ok", "error"]
    version: str
    time: str
    firestore: Literal["ok", "error"]
    reason: str | None = None


def status(db: "firestore.Client", settings: Settings) -> Reply:
    body = {"status": "ok", "version": settings.build_version, "time": clock.rfc3339(clock.now()), "firestore": "ok"}
    try:
        # A read of a document that need not exist: it proves the path to Firestore, costs one read.
        db.collection("health_checks").document("ping").get(timeout=FIRESTORE_TIMEOUT_SECONDS, retry=None)
    except Exception as exc:  # any failure to reach the database is the answer, not an error
        reason = type(exc).__name__
        return Reply({**body, "status": "error", "firestore": "error", "reason": reason}, 503, {"Retry-After": "5"})
    return Reply(body)
