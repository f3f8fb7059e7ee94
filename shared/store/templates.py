"""templates/{templateId}: the only module that knows the collection's path and shape."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_query import BaseQuery

if TYPE_CHECKING:
    from google.cloud import firestore

TEMPLATES = "templates"


def collection(db: "firestore.Client") -> "firestore.CollectionReference":
    return db.collection(TEMPLATES)


def ref(db: "firestore.Client", template_id: str) -> "firestore.DocumentReference":
    return db.collection(TEMPLATES).document(template_id)


def get(db: "firestore.Client", template_id: str, transaction: Any = None) -> dict[str, Any] | None:
    snapshot = ref(db, template_id).get(transaction=transaction)
    return {"id": snapshot.id, **snapshot.to_dict()} if snapshot.exists else None


def list_page(
    db: "firestore.Client", page_size: int, after: tuple[dt.datetime, str] | None
) -> list[dict[str, Any]]:
    """Newest first; the document id breaks ties so a page boundary never drops one."""
    query = collection(db).order_by("createdAt", direction=BaseQuery.DESCENDING).order_by(
        "__name__", direction=BaseQuery.DESCENDING
    )
    if after is not None:
        query = query.start_after({"createdAt": after[0], "__name__": after[1]})
    return [{"id": s.id, **s.to_dict()} for s in query.limit(page_size).stream()]
