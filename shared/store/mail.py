"""mail/{id} and mail_drafts/{id}: outbound email in the shape of Firebase's
"Trigger Email from Firestore" extension ({to, message: {subject, text, html}})."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import firestore

MAIL = "mail"
MAIL_DRAFTS = "mail_drafts"


def mail_ref(db: "firestore.Client", mail_id: str) -> "firestore.DocumentReference":
    return db.collection(MAIL).document(mail_id)


def draft_ref(db: "firestore.Client", draft_id: str) -> "firestore.DocumentReference":
    return db.collection(MAIL_DRAFTS).document(draft_id)


def outbox_ref(db: "firestore.Client", message_id: str, draft: bool) -> "firestore.DocumentReference":
    return draft_ref(db, message_id) if draft else mail_ref(db, message_id)
