"""Normalised addresses and domains, and the hashed ids they are stored under.

An address is compared lower-cased and trimmed (so `Ann@Example.com` and
`ann@example.com` are one contact); a domain likewise, without a leading '@'. The id
is a SHA-256 of kind and value, so a document id (and every URL carrying it) never
shows the address.
"""

from __future__ import annotations

import hashlib
import re

EMAIL = "email"
DOMAIN = "domain"
_DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


def normal_email(address: str) -> str | None:
    """The address as stored, or None when it is not an email address."""
    from shared.outreach.pipeline import is_valid_email

    value = address.strip().lower()
    return value if is_valid_email(value) else None


def normal_domain(domain: str) -> str | None:
    value = domain.strip().lower().removeprefix("@")
    return value if _DOMAIN.fullmatch(value) else None


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def key_id(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def email_id(address: str) -> str:
    return key_id(EMAIL, address)


def domain_id(domain: str) -> str:
    return key_id(DOMAIN, domain)


def parse_entry(text: str) -> tuple[str, str] | None:
    """(kind, normalised value) of one list entry, an address or a domain; None if neither."""
    text = text.strip()
    if "@" in text.lstrip("@"):
        value = normal_email(text)
        return (EMAIL, value) if value else None
    value = normal_domain(text)
    return (DOMAIN, value) if value else None
