"""Opaque page tokens.

A token names the listing it belongs to (`scope`), so a token from another run or
another endpoint is a 400 rather than a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.errors import field_error


def encode(scope: str, position: dict[str, Any]) -> str:
    raw = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, scope: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise field_error("pageToken", "is not a token this API issued") from None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("p"), dict):
        raise field_error("pageToken", "belongs to a different listing")
    return data["p"]
