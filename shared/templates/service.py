"""Template use-cases. Edits are optimistic: the caller names the version it read,
and the write lands only if the document is unchanged since it was read, so a
save in between is a 409 (a compare-and-set commit: store/client.write_if_unchanged)."""

from __future__ import annotations

from typing import Any

from google.cloud import firestore

from shared import clock, ids, pagination
from shared.errors import Conflict, NotFound, field_error
from shared.store import templates as repo
from shared.store.client import as_dict, commit_args, write_if_unchanged
from shared.templates.models import Template, TemplateCreate, TemplateList, TemplatePatch, TemplateReplace

_LIST_SCOPE = "templates"


def to_api(doc: dict[str, Any]) -> Template:
    return Template(
        id=doc["id"],
        name=doc["name"],
        channel=doc.get("channel", "email"),
        subject=doc["subject"],
        body=doc["body"],
        draft_first=bool(doc.get("draftFirst", False)),
        version=doc["version"],
        created_at=clock.rfc3339(doc["createdAt"]),
        updated_at=clock.rfc3339(doc["updatedAt"]),
    )


def _document_fields(fields: TemplateCreate | TemplateReplace | TemplatePatch, only_set: bool) -> dict[str, Any]:
    names = fields.model_fields_set if only_set else type(fields).model_fields.keys()
    return {
        type(fields).model_fields[n].alias or n: getattr(fields, n) for n in names if n != "version"
    }


def create(db: firestore.Client, fields: TemplateCreate) -> Template:
    now = clock.now()
    doc = {**_document_fields(fields, only_set=False), "version": 1, "createdAt": now, "updatedAt": now}
    template_id = ids.new_id()
    repo.ref(db, template_id).create(doc, **commit_args())
    return to_api({"id": template_id, **doc})


def get(db: firestore.Client, template_id: str) -> Template:
    doc = repo.get(db, ids.check_id(template_id, "templateId"))
    if doc is None:
        raise NotFound(f"template {template_id} does not exist")
    return to_api(doc)


def list_templates(db: firestore.Client, page_size: int, page_token: str | None) -> TemplateList:
    after = pagination.decode_newest_first(page_token, _LIST_SCOPE)
    page, token = pagination.split_newest_first(repo.list_page(db, page_size + 1, after), page_size, _LIST_SCOPE)
    return TemplateList(templates=[to_api(d) for d in page], next_page_token=token)


def expected_version(body_version: int | None, if_match: str | None) -> int:
    """The version to check, from the body or an If-Match ETag ("3" or W/"3")."""
    if if_match:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise field_error("If-Match", "must be the template's version as an ETag, e.g. \"3\"")
        header_version = int(text)
        if body_version is not None and body_version != header_version:
            raise field_error("version", "disagrees with If-Match")
        return header_version
    if body_version is None:
        raise field_error("version", "is required: send the version you edited (or an If-Match header)")
    return body_version


def update(
    db: firestore.Client, template_id: str, fields: TemplateReplace | TemplatePatch, version: int, replace: bool
) -> Template:
    ref = repo.ref(db, ids.check_id(template_id, "templateId"))
    changes = _document_fields(fields, only_set=not replace)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        current = as_dict(snapshot)
        if current is None:
            raise NotFound(f"template {template_id} does not exist")
        if current["version"] != version:
            raise Conflict(
                f"template {template_id} was changed by someone else: you edited version {version}, "
                f"it is now at version {current['version']}",
                [{"field": "version", "expected": version, "current": current["version"]}],
            )
        updated = {**changes, "version": version + 1, "updatedAt": clock.now()}
        batch.update(ref, updated, option=unchanged)
        return {**current, **updated}

    return to_api(write_if_unchanged(db, ref, apply))


def delete(db: firestore.Client, template_id: str, version: int | None) -> None:
    ref = repo.ref(db, ids.check_id(template_id, "templateId"))

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> None:
        current = as_dict(snapshot)
        if current is None:
            raise NotFound(f"template {template_id} does not exist")
        if version is not None and current["version"] != version:
            raise Conflict(
                f"template {template_id} is at version {current['version']}, not {version}",
                [{"field": "version", "expected": version, "current": current["version"]}],
            )
        batch.delete(ref, option=unchanged)

    write_if_unchanged(db, ref, apply)
