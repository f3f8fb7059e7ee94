"""suppressions/{id}, contacts/{id} and unsubscribe_tokens/{token}: the do-not-contact
list, the per-address record every send is guarded by, and one-click unsubscribe tokens.

`id` is shared/consent/keys.key_id of the normalised address or domain: a hash, so a
URL never shows the address. A suppression and the contact record of the same key
have the same id.

Why a contact record besides the list: a lead's outcome commit must fail when a
suppression lands between the check and the commit. Firestore preconditions guard
documents a commit writes, so the check reads contacts/{id} of the address and of its
domain and the lead's commit writes both with `last_update_time` (or creates them,
when they did not exist); a suppression rewrites the record, so the commit fails and
the check runs again (shared/consent/gate.py).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_query import BaseQuery, FieldFilter

from shared.store.client import as_dict, commit_args, newest_first, read_args, write_if_unchanged

if TYPE_CHECKING:
    from google.cloud import firestore

SUPPRESSIONS = "suppressions"
CONTACTS = "contacts"
TOKENS = "unsubscribe_tokens"
# Firestore commits at most 500 writes; an import writes two per row.
IMPORT_CHUNK = 200


def suppressions(db: "firestore.Client") -> "firestore.CollectionReference":
    return db.collection(SUPPRESSIONS)


def suppression_ref(db: "firestore.Client", key_id: str) -> "firestore.DocumentReference":
    return db.collection(SUPPRESSIONS).document(key_id)


def contact_ref(db: "firestore.Client", key_id: str) -> "firestore.DocumentReference":
    return db.collection(CONTACTS).document(key_id)


def token_ref(db: "firestore.Client", token: str) -> "firestore.DocumentReference":
    return db.collection(TOKENS).document(token)


# --- the list ---------------------------------------------------------------------


def add(db: "firestore.Client", key_id: str, document: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Creates the suppression and marks its contact record, in one commit.

    (stored suppression, created). An existing suppression is returned unchanged.
    """
    ref = suppression_ref(db, key_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> tuple[dict[str, Any], bool]:
        if snapshot.exists:
            return as_dict(snapshot), False
        batch.create(ref, document)
        queue_mark(batch, db, key_id, document["kind"], True, document["createdAt"])
        return {"id": key_id, **document}, True

    return write_if_unchanged(db, ref, apply)


def queue_mark(batch: Any, db: "firestore.Client", key_id: str, kind: str, suppressed: bool, at: dt.datetime) -> None:
    """Unconditional on purpose: it must change the record under any lead commit in flight."""
    batch.set(contact_ref(db, key_id), {"kind": kind, "suppressed": suppressed, "suppressedAt": at if suppressed else None,
                                        "changedAt": at}, merge=True)


def add_many(db: "firestore.Client", rows: list[tuple[str, dict[str, Any]]]) -> int:
    """An import: every (id, suppression) in commits of IMPORT_CHUNK rows. A row already
    on the list keeps its first reason and date. Returns how many were new."""
    added = 0
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start:start + IMPORT_CHUNK]
        existing = {s.id for s in db.get_all([suppression_ref(db, key_id) for key_id, _ in chunk], **read_args()) if s.exists}
        batch = db.batch()
        for key_id, document in chunk:
            if key_id in existing:
                continue
            batch.set(suppression_ref(db, key_id), document)
            queue_mark(batch, db, key_id, document["kind"], True, document["createdAt"])
            added += 1
        if len(batch):
            batch.commit(**commit_args())
    return added


def remove(db: "firestore.Client", key_id: str, at: dt.datetime) -> bool:
    """Deletes the suppression and clears its contact record; False when there was none."""
    ref = suppression_ref(db, key_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> bool:
        if not snapshot.exists:
            return False
        batch.delete(ref, option=unchanged)
        if snapshot.get("kind") == "domain":
            # A domain's record exists only while it is suppressed (shared/consent/gate.py).
            batch.delete(contact_ref(db, key_id))
        else:
            queue_mark(batch, db, key_id, snapshot.get("kind"), False, at)
        return True

    return write_if_unchanged(db, ref, apply)


def get(db: "firestore.Client", key_id: str) -> dict[str, Any] | None:
    return as_dict(suppression_ref(db, key_id).get(**read_args()))


def list_page(db: "firestore.Client", limit: int, after: tuple[dt.datetime, str] | None) -> list[dict[str, Any]]:
    return [as_dict(s) for s in newest_first(suppressions(db), after).limit(limit).stream(**read_args())]


def search_page(db: "firestore.Client", prefix: str, limit: int, after: tuple[str, str] | None) -> list[dict[str, Any]]:
    """Suppressions whose value starts with `prefix`, in value order (a range on one field)."""
    query = (
        suppressions(db)
        .where(filter=FieldFilter("value", ">=", prefix))
        .where(filter=FieldFilter("value", "<", prefix + "\uf8ff"))
        .order_by("value")
        .order_by("__name__", direction=BaseQuery.ASCENDING)
    )
    if after is not None:
        query = query.start_after({"value": after[0], "__name__": suppression_ref(db, after[1])})
    return [as_dict(s) for s in query.limit(limit).stream(**read_args())]


# --- contact records ------------------------------------------------------------------


def get_contacts(db: "firestore.Client", key_ids: list[str]) -> dict[str, Any]:
    """{id: snapshot} of the contact records, existing or not, in one round trip."""
    return {s.id: s for s in db.get_all([contact_ref(db, key_id) for key_id in key_ids], **read_args())}


# --- unsubscribe tokens ------------------------------------------------------------------


def get_token(db: "firestore.Client", token: str) -> dict[str, Any] | None:
    return as_dict(token_ref(db, token).get(**read_args()))
