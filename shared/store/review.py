"""The review state of a run's drafts: it lives on the draft's own mail_drafts document
(store/mail.py), beside the rendered message, as `version` and `reviewStatus`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.cloud import firestore as fs

from shared.store import mail, runs
from shared.store.client import read_args

if TYPE_CHECKING:
    from google.cloud import firestore

PENDING, SENDING, SENT, DISCARDED, SKIPPED = "pending", "sending", "sent", "discarded", "skipped"
DRAFT_STEP, SEND_STEP = "email-draft", "email-send"


def draft_id(run_id: str, lead_id: str) -> str:
    """The id the pipeline gave the draft (providers.OutgoingEmail.message_id)."""
    return f"{run_id}-{lead_id}-{DRAFT_STEP}"


def draft_ref(db: "firestore.Client", run_id: str, lead_id: str) -> "firestore.DocumentReference":
    return mail.draft_ref(db, draft_id(run_id, lead_id))


def get_drafts(db: "firestore.Client", run_id: str, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """{leadDocId: draft document} for those that exist, in one round trip."""
    refs = {draft_ref(db, run_id, lead_id).path: lead_id for lead_id in lead_ids}
    found = db.get_all([draft_ref(db, run_id, lead_id) for lead_id in lead_ids], **read_args())
    return {refs[s.reference.path]: s.to_dict() for s in found if s.exists}


def queue_counts(db: "firestore.Client", batch: Any, run_id: str, was: str, now_is: str) -> None:
    """Moves one lead between the job's and the run's counts, by increments (no read needed)."""
    moved = {f"counts.{was}": fs.Increment(-1), f"counts.{now_is}": fs.Increment(1)}
    batch.update(runs.job_ref(db, run_id), moved)
    batch.update(runs.run_ref(db, run_id), moved)
