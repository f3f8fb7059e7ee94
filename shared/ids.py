"""Identifiers that reach Firestore paths.

Every run, lead, template and action id passes through here, so no input can
name a path outside its collection (no '/', no '..', no reserved '__x__' ids).
"""

from __future__ import annotations

import re
import secrets

from shared.errors import field_error

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
_ID = re.compile(ID_PATTERN)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check_id(value: object, field: str) -> str:
    if not is_valid_id(value):
        raise field_error(
            field,
            "must be 1-128 characters of letters, digits, '-' or '_', starting with a letter or digit",
        )
    return value  # type: ignore[return-value]


def new_id() -> str:
    """20 url-safe characters, like Firestore's own auto ids, and valid under ID_PATTERN."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(20))
