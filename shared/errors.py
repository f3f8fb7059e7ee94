"""Domain errors. They know nothing of HTTP; shared/http.py maps each to a status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on; `message` is shown to the operator."""

    code = "failed"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidArgument(DomainError):
    code = "invalid_argument"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class PermissionDenied(DomainError):
    code = "permission_denied"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class TooLarge(DomainError):
    code = "too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class Unavailable(DomainError):
    code = "unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 5):
        super().__init__(message)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


def field_error(field: str, message: str, **extra: Any) -> InvalidArgument:
    """The common case: one field is wrong."""
    return InvalidArgument(f"{field}: {message}", [{"field": field, "message": message, **extra}])
