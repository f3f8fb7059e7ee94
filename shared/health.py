"""GET /api/health: is this build up, and can it reach Firestore right now?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from shared import clock
from shared.models import ApiModel
from shared.settings import Settings

if TYPE_CHECKING:
    from google.cloud import firestore

FIRESTORE_TIMEOUT_SECONDS = 3.0
# How soon a client should ask again when Firestore is unreachable.
RETRY_AFTER_SECONDS = 5


class Health(ApiModel):
    """The documented shape; `reason` is present only when Firestore is unreachable."""

    status: Literal["ok", "error"]
    version: str
    time: str
    firestore: Literal["ok", "error"]
    reason: str | None = None


def status(db: "firestore.Client", settings: Settings) -> Health:
    """The answer; `firestore == "error"` is for the edge to send as 503 + Retry-After."""
    body = {"status": "ok", "version": settings.build_version, "time": clock.rfc3339(clock.now()), "firestore": "ok"}
    try:
        # A read of a document that need not exist: it proves the path to Firestore, costs one read.
        db.collection("health_checks").document("ping").get(timeout=FIRESTORE_TIMEOUT_SECONDS, retry=None)
    except Exception as exc:  # any failure to reach the database is the answer, not an error
        return Health(**{**body, "status": "error", "firestore": "error", "reason": type(exc).__name__})
    return Health(**body)
