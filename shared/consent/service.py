"""The suppression list: add, list, search, remove and import (docs/consent.md)."""

from __future__ import annotations

import csv
import io
from typing import Any

from shared import clock, pagination
from shared.consent import keys
from shared.consent.models import (
    MAX_IMPORT_ROWS,
    ImportResult,
    RowError,
    Suppression,
    SuppressionCreate,
    SuppressionList,
)
from shared.errors import InvalidArgument, NotFound, field_error
from shared.store import suppressions as repo

SCOPE = "suppressions"
_HEADERS = {"email", "emails", "domain", "domains", "address", "email address", "value"}


def document(kind: str, value: str, reason: str, source: str, by: str | None) -> dict[str, Any]:
    return {"kind": kind, "value": value, "reason": reason, "source": source, "createdAt": clock.now(), "createdBy": by}


def to_view(doc: dict[str, Any]) -> Suppression:
    return Suppression(
        id=doc["id"], kind=doc["kind"], value=doc["value"], reason=doc.get("reason") or "",
        source=doc.get("source") or "api", created_at=clock.rfc3339(doc.get("createdAt")), created_by=doc.get("createdBy"),
    )


def add(db: Any, request: SuppressionCreate, by: str | None, source: str = "api") -> tuple[Suppression, bool]:
    """(the suppression, created). Adding what is already suppressed returns the existing entry."""
    if request.email is not None:
        value, kind = keys.normal_email(request.email), keys.EMAIL
        if value is None:
            raise field_error("email", "is not an email address")
    else:
        value, kind = keys.normal_domain(request.domain or ""), keys.DOMAIN
        if value is None:
            raise field_error("domain", "is not a domain name")
    stored, created = repo.add(db, keys.key_id(kind, value), document(kind, value, request.reason, source, by))
    return to_view(stored), created


def suppress_address(db: Any, address: str, reason: str, source: str) -> tuple[Suppression, bool]:
    return add(db, SuppressionCreate(email=address, reason=reason), None, source)


def list_page(db: Any, page_size: int, page_token: str | None, prefix: str | None) -> SuppressionList:
    if prefix is not None:
        return _search(db, prefix.strip().lower(), page_size, page_token)
    after = pagination.decode_newest_first(page_token, SCOPE)
    docs = repo.list_page(db, page_size + 1, after)
    page, token = pagination.split_newest_first(docs, page_size, SCOPE)
    return SuppressionList(suppressions=[to_view(d) for d in page], next_page_token=token)


def _search(db: Any, prefix: str, page_size: int, page_token: str | None) -> SuppressionList:
    scope = f"{SCOPE}:{prefix}"
    after = None
    if page_token:
        position = pagination.decode(page_token, scope)
        if not isinstance(position.get("value"), str) or not isinstance(position.get("id"), str):
            raise pagination.bad_token()
        after = (position["value"], position["id"])
    docs = repo.search_page(db, prefix, page_size + 1, after)
    page = docs[:page_size]
    token = pagination.encode(scope, {"value": page[-1]["value"], "id": page[-1]["id"]}) if len(docs) > page_size else None
    return SuppressionList(suppressions=[to_view(d) for d in page], next_page_token=token)


def remove(db: Any, suppression_id: str) -> None:
    if not repo.remove(db, suppression_id, clock.now()):
        raise NotFound(f"suppression {suppression_id} does not exist")


def import_csv(db: Any, text: str, reason: str, by: str | None) -> ImportResult:
    """One column of addresses or domains. Bad rows are reported by line (1-based) and the
    good ones kept; a header row naming the column is allowed."""
    rows: dict[str, dict[str, Any]] = {}
    rejected: list[RowError] = []
    duplicates = 0
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        for cells in reader:
            line = reader.line_num
            values = [c.strip() for c in cells if c.strip()]
            if not values:
                continue
            if len(values) > 1:
                rejected.append(RowError(line=line, value=",".join(values)[:200], message="one column expected"))
                continue
            if line == 1 and values[0].lower() in _HEADERS:
                continue
            entry = keys.parse_entry(values[0])
            if entry is None:
                rejected.append(RowError(line=line, value=values[0][:200], message="not an email address or domain"))
                continue
            key_id = keys.key_id(*entry)
            if key_id in rows:
                duplicates += 1
                continue
            if len(rows) >= MAX_IMPORT_ROWS:
                raise field_error("csv", f"at most {MAX_IMPORT_ROWS} rows per import")
            rows[key_id] = document(entry[0], entry[1], reason, "import", by)
    except csv.Error as exc:
        raise InvalidArgument(f"the CSV is malformed at line {reader.line_num}: {exc}",
                              [{"field": "csv", "line": reader.line_num, "message": str(exc)}]) from None
    added = repo.add_many(db, list(rows.items()))
    return ImportResult(added=added, already=len(rows) - added + duplicates, rejected=rejected)
