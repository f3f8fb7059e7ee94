"""Opaque page tokens.

A token names the listing it belongs to (`scope`), so a token from another run or
another endpoint is a 400 rather than a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from shared import clock, ids
from shared.errors import field_error


def bad_token() -> Exception:
    """The 400 for a page token this API did not issue, or one tampered with."""
    return field_error("pageToken", "is not a token this API issued")


def encode(scope: str, position: dict[str, Any]) -> str:
    raw = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, scope: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise bad_token() from None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("p"), dict):
        raise field_error("pageToken", "belongs to a different listing")
    return data["p"]


# Newest-first listings (templates, runs) page on (createdAt, document id).


def decode_newest_first(token: str | None, scope: str) -> tuple[dt.datetime, str] | None:
    """The (createdAt, id) after which the next page starts; None for the first page."""
    if not token:
        return None
    position = decode(token, scope)
    try:
        after = (clock.parse_rfc3339(position["createdAt"]), position["id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise bad_token() from None
    if not ids.is_valid_id(after[1]):
        raise bad_token()
    return after


def split_newest_first(docs: list[dict[str, Any]], size: int, scope: str) -> tuple[list[dict[str, Any]], str | None]:
    """`docs` was read with limit size + 1: the extra row only says another page exists."""
    page = docs[:size]
    if len(docs) <= size:
        return page, None
    last = page[-1]
    return page, encode(scope, {"createdAt": clock.rfc3339(last["createdAt"]), "id": last["id"]})
