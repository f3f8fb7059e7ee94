"""Why a lead's outreach failed, and whether trying again can help.

The pipeline retries a TransientError with backoff up to the job's maxAttempts and
fails the lead at once on a PermanentError. `classify` maps what the libraries
raise (google.api_core exceptions from Firestore, requests errors and HTTP
statuses from providers) onto those two.
"""

from __future__ import annotations

from typing import Any


class OutreachError(Exception):
    """`code` goes into the job's diagnostics and the receipt; `message` is for the operator."""

    code = "outreach_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.attempts: int | None = None  # set when a lead's attempts so far travel with the error
        if code:
            self.code = code


class TransientError(OutreachError):
    code = "transient"


class PermanentError(OutreachError):
    code = "permanent"


class ProviderQuotaError(TransientError):
    """The provider refused for the mailbox's quota: the sender pauses, the lead stays
    pending with its attempt unused (docs/deliverability.md). `retry_after_seconds` is
    the provider's Retry-After when it sent one; `daily` marks the daily sending quota."""

    code = "provider_quota"

    def __init__(self, message: str, retry_after_seconds: float | None = None, daily: bool = False):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.daily = daily


FIRESTORE_UNAVAILABLE = "firestore_unavailable"
# Gmail's throttling reasons (Gmail API "Resolve errors" page): per-user and per-project
# rate limits come back as 403 with these reasons, mail-sending limits as 429.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
DAILY_LIMIT_REASONS = frozenset({"dailyLimitExceeded"})

# Provider HTTP statuses worth another try: throttling and server-side trouble.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def classify(exc: BaseException) -> OutreachError | None:
    """The OutreachError `exc` amounts to, or None when it is a bug that should surface."""
    if isinstance(exc, OutreachError):
        return exc
    from google.api_core import exceptions as gexc

    if isinstance(
        exc,
        (
            gexc.Aborted,
            gexc.ServiceUnavailable,
            gexc.DeadlineExceeded,
            gexc.InternalServerError,
            gexc.TooManyRequests,
            gexc.ResourceExhausted,
            gexc.RetryError,
        ),
    ):
        return TransientError(f"Firestore: {type(exc).__name__}: {_first_line(exc)}", FIRESTORE_UNAVAILABLE)
    import requests

    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        return TransientError(f"provider unreachable: {type(exc).__name__}", "provider_unreachable")
    return None


def for_http_status(
    status: int, message: str, reason: str | None = None, retry_after: str | None = None
) -> OutreachError:
    """A provider's error response. Google APIs also throttle with 403 + a rate-limit reason."""
    if reason in DAILY_LIMIT_REASONS or (status in (403, 429) and "sending quota" in message.lower()):
        return ProviderQuotaError(f"provider daily quota spent ({status}): {message}", None, daily=True)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return ProviderQuotaError(f"provider rate limit ({status}): {message}", retry_after_seconds(retry_after))
    if status in TRANSIENT_STATUSES or reason in {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}:
        return TransientError(f"provider answered {status}: {message}", "provider_transient")
    return PermanentError(f"provider refused the message ({status}): {message}", "provider_rejected")


def retry_after_seconds(value: str | None, now: Any = None) -> float | None:
    """An HTTP Retry-After (RFC 9110: delay-seconds or an HTTP-date) in seconds, None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import datetime as dt
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
