"""templates/{templateId}: the only module that knows the collection's path and shape."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shared.store.client import as_dict, newest_first, read_args

if TYPE_CHECKING:
    from google.cloud import firestore

TEMPLATES = "templates"


def collection(db: "firestore.Client") -> "firestore.CollectionReference":
    return db.collection(TEMPLATES)


def ref(db: "firestore.Client", template_id: str) -> "firestore.DocumentReference":
    return db.collection(TEMPLATES).document(template_id)


def get(db: "firestore.Client", template_id: str) -> dict[str, Any] | None:
    return as_dict(ref(db, template_id).get(**read_args()))


def list_page(
    db: "firestore.Client", page_size: int, after: tuple[dt.datetime, str] | None
) -> list[dict[str, Any]]:
    return [as_dict(s) for s in newest_first(collection(db), after).limit(page_size).stream(**read_args())]
