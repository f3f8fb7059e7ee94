"""Who is calling: Firebase ID tokens for operators, per-job tokens for the worker."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
import time
from typing import Any

from shared.errors import PermissionDenied, Unauthenticated
from shared.settings import Settings, get_settings

LOCAL_USER_UID = "local-dev"
_CLOCK_SKEW_SECONDS = 10
_DEFAULT_CERT_TTL_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class User:
    uid: str
    email: str | None = None


class _CertCache:
    """Google's signing certs rotate daily and say so in Cache-Control: fetch once per max-age."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._url = ""
        self._expires = 0.0

    def get(self, url: str) -> dict[str, str]:
        with self._lock:
            if url == self._url and time.monotonic() < self._expires:
                return self._certs
            import requests

            response = requests.get(url, timeout=5)
            response.raise_for_status()
            match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
            ttl = int(match.group(1)) if match else _DEFAULT_CERT_TTL_SECONDS
            self._certs, self._url = response.json(), url
            self._expires = time.monotonic() + ttl
            return self._certs


_certs = _CertCache()


def verify_id_token(token: str, settings: Settings) -> dict[str, Any]:
    """Checks signature, expiry, audience and issuer the way the Firebase Admin SDK does."""
    from google.auth import exceptions, jwt

    try:
        certs = _certs.get(settings.auth_certs_url)
    except Exception as exc:  # network or parse failure: the caller can retry
        raise Unauthenticated("could not fetch token signing keys; try again") from exc
    try:
        claims = jwt.decode(
            token,
            certs=certs,
            audience=settings.google_cloud_project,
            clock_skew_in_seconds=_CLOCK_SKEW_SECONDS,
        )
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated("the ID token is invalid or expired") from exc
    expected_issuer = f"https://securetoken.google.com/{settings.google_cloud_project}"
    if claims.get("iss") != expected_issuer or not claims.get("sub"):
        raise Unauthenticated("the ID token was not issued for this project")
    return claims


def _bearer(headers: Any) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_allowed(email: str | None, email_verified: bool, settings: Settings) -> bool:
    """An empty allow-list admits nobody: a Firebase project may let anyone sign up."""
    if not email or not email_verified:
        return False
    email = email.lower()
    if email in {e.lower() for e in settings.auth_allowed_emails}:
        return True
    domain = email.rpartition("@")[2]
    return domain in {d.lower().lstrip("@") for d in settings.auth_allowed_domains}


def require_user(headers: Any, settings: Settings | None = None) -> User:
    settings = settings or get_settings()
    if not settings.auth_enabled:
        return User(uid=LOCAL_USER_UID)
    token = _bearer(headers)
    if token is None:
        raise Unauthenticated("sign in: an 'Authorization: Bearer <Firebase ID token>' header is required")
    claims = verify_id_token(token, settings)
    email = claims.get("email")
    if not is_allowed(email, bool(claims.get("email_verified")), settings):
        raise PermissionDenied(f"{email or 'this account'} is not on the allow-list")
    return User(uid=claims["sub"], email=email)


def optional_user(headers: Any, settings: Settings | None = None) -> User | None:
    """For public routes that still want to know who called, when they can tell."""
    settings = settings or get_settings()
    if not settings.auth_enabled:
        return None
    token = _bearer(headers)
    if token is None:
        return None
    try:
        claims = verify_id_token(token, settings)
    except Unauthenticated:
        return None
    return User(uid=claims["sub"], email=claims.get("email"))


def new_worker_token() -> str:
    """256 bits of randomness, url-safe so it travels in a header unescaped. Only its
    worker_token_hash is stored: the raw token exists in flight (X-Worker-Token) only."""
    return secrets.token_urlsafe(32)


def worker_token_hash(token: str) -> str:
    """What the job stores of its worker token: SHA-256, hex. A 256-bit random token needs
    no salt or slow hash: nothing is guessable to precompute."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(given: str | None, stored_hash: str | None) -> bool:
    """Whether `given` is the token whose hash the job stores, compared in constant time."""
    if not given or not stored_hash:
        return False
    return hmac.compare_digest(worker_token_hash(given).encode(), stored_hash.encode())
