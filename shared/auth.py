"""Who is calling: Firebase ID tokens for operators, per-job tokens for the worker.

ID tokens are verified by google-auth (`google.oauth2.id_token.verify_token`, the
call firebase-admin's `auth.verify_id_token` makes itself) against the keys at
AUTH_CERTS_URL. Tokens of the Firebase Auth emulator are unsigned; they are accepted
only when FIREBASE_AUTH_EMULATOR_HOST is set and the project is a `demo-` project
(docs/operations-page.md, "Sign-in").
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from typing import Any

from shared.errors import PermissionDenied, Unauthenticated, Unavailable
from shared.settings import Settings, get_settings

LOCAL_USER_UID = "local-dev"
_CLOCK_SKEW_SECONDS = 10
_DEFAULT_CERT_TTL_SECONDS = 3600
_CERTS_TIMEOUT_SECONDS = 5
_KEYS_RETRY_AFTER_SECONDS = 5
logger = logging.getLogger("mission_control.auth")


@dataclasses.dataclass(frozen=True)
class User:
    uid: str
    email: str | None = None


class UnsafeAuthMode(RuntimeError):
    """AUTH_MODE=off outside an emulator-backed demo- project: a configuration error."""


def refuse_unsafe_auth_off(settings: Settings | None = None) -> None:
    """AUTH_MODE=off serves only emulator data of a `demo-` project (which can reach no
    real resource); anywhere else every request fails closed instead of opening the API."""
    settings = settings or get_settings()
    if settings.auth_enabled:
        return
    if settings.firestore_emulator_host and settings.google_cloud_project.startswith("demo-"):
        return
    logger.error(
        "REFUSING TO SERVE: AUTH_MODE=off is allowed only with FIRESTORE_EMULATOR_HOST set and a "
        "demo- project (project %r, FIRESTORE_EMULATOR_HOST %r). Set AUTH_MODE=firebase.",
        settings.google_cloud_project, settings.firestore_emulator_host or "unset",
    )
    raise UnsafeAuthMode("AUTH_MODE=off outside an emulator-backed demo- project")


def emulator_tokens_accepted(settings: Settings) -> bool:
    """The Auth emulator's tokens carry no signature: trust them only where nothing is real."""
    return bool(settings.firebase_auth_emulator_host) and settings.google_cloud_project.startswith("demo-")


def _transport():
    from google.auth.transport import Request as TransportRequest
    from google.auth.transport.requests import Request as RequestsRequest

    class CachingRequest(TransportRequest):
        """google-auth fetches the certs on every verification; Google's certs say in
        Cache-Control how long they hold (they rotate daily), so answer from a cache
        until then. Only a 200 is kept: a failed fetch is retried on the next call."""

        def __init__(self) -> None:
            self._inner = RequestsRequest()
            self._lock = threading.Lock()
            self._cache: dict[str, tuple[float, Any]] = {}

        def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
            if method != "GET":
                return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
            with self._lock:
                hit = self._cache.get(url)
                if hit and time.monotonic() < hit[0]:
                    return hit[1]
                response = self._inner(url, method="GET", headers=headers, timeout=timeout or _CERTS_TIMEOUT_SECONDS)
                if response.status == 200:
                    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
                    ttl = int(match.group(1)) if match else _DEFAULT_CERT_TTL_SECONDS
                    self._cache[url] = (time.monotonic() + ttl, response)
                return response

    return CachingRequest()


_request = None
_request_lock = threading.Lock()


def _cached_transport():
    global _request
    with _request_lock:
        if _request is None:
            _request = _transport()
        return _request


def _check_firebase_claims(claims: dict[str, Any], settings: Settings) -> dict[str, Any]:
    expected_issuer = f"https://securetoken.google.com/{settings.google_cloud_project}"
    subject = claims.get("sub")
    if claims.get("iss") != expected_issuer or not isinstance(subject, str) or not subject or len(subject) > 128:
        raise Unauthenticated("the ID token was not issued for this project")
    return claims


def _verify_emulator_token(token: str, settings: Settings) -> dict[str, Any]:
    """What firebase-admin checks on an emulator token: the claims, as there is no signature."""
    from google.auth import jwt

    try:
        claims = jwt.decode(token, verify=False)
    except (ValueError, TypeError) as exc:
        raise Unauthenticated("the ID token is invalid or expired") from exc
    now = time.time()
    if (
        claims.get("aud") != settings.google_cloud_project
        or not isinstance(claims.get("exp"), (int, float))
        or claims["exp"] < now - _CLOCK_SKEW_SECONDS
        or not isinstance(claims.get("iat"), (int, float))
        or claims["iat"] > now + _CLOCK_SKEW_SECONDS
    ):
        raise Unauthenticated("the ID token is invalid or expired")
    return _check_firebase_claims(claims, settings)


def verify_id_token(token: str, settings: Settings) -> dict[str, Any]:
    """Signature, expiry, audience and issuer, by google-auth; a key outage is a 503."""
    if emulator_tokens_accepted(settings):
        return _verify_emulator_token(token, settings)
    from google.auth import exceptions
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_token(
            token,
            _cached_transport(),
            audience=settings.google_cloud_project,
            certs_url=settings.auth_certs_url,
            clock_skew_in_seconds=_CLOCK_SKEW_SECONDS,
        )
    except (exceptions.TransportError, json.JSONDecodeError) as exc:
        # Google's keys unreachable says nothing about the token: signing everyone out
        # (a 401) would be wrong; the caller retries.
        logger.warning("could not fetch the ID-token signing keys from %s: %s", settings.auth_certs_url, exc)
        raise Unavailable(
            "could not fetch the sign-in keys to check your ID token; try again shortly",
            retry_after_seconds=_KEYS_RETRY_AFTER_SECONDS,
        ) from exc
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated("the ID token is invalid or expired") from exc
    return _check_firebase_claims(claims, settings)


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
    except (Unauthenticated, Unavailable):
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
