"""Why a lead's outreach failed, and whether trying again can help.

The pipeline retries a TransientError with backoff up to the job's maxAttempts and
fails the lead at once on a PermanentError. `classify` maps what the libraries
raise (google.api_core exceptions from Firestore, requests errors and HTTP
statuses from providers) onto those two.
"""

from __future__ import annotations


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


FIRESTORE_UNAVAILABLE = "firestore_unavailable"

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


def for_http_status(status: int, message: str, reason: str | None = None) -> OutreachError:
    """A provider's error response. Google APIs also throttle with 403 + a rate-limit reason."""
    if status in TRANSIENT_STATUSES or reason in {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}:
        return TransientError(f"provider answered {status}: {message}", "provider_transient")
    return PermanentError(f"provider refused the message ({status}): {message}", "provider_rejected")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
