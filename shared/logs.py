"""Structured JSON logs on stderr, in the shape Cloud Logging parses.

google-cloud-logging's StructuredLogHandler reads the Flask request's
`traceparent` / `X-Cloud-Trace-Context` itself, so every line a request writes
carries its trace id and Cloud Logging groups them under the request.
"""

from __future__ import annotations

import functools
import logging
import traceback
from typing import Any

from shared.settings import get_settings


@functools.cache
def configure() -> None:
    from google.cloud.logging_v2.handlers import StructuredLogHandler

    settings = get_settings()
    root = logging.getLogger()
    if not any(isinstance(h, StructuredLogHandler) for h in root.handlers):
        root.addHandler(StructuredLogHandler(project_id=settings.google_cloud_project))
    root.setLevel(settings.log_level.upper())
    # One line per request is ours to write; the HTTP libraries' chatter is not.
    for noisy in ("urllib3", "google.auth", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not settings.auth_enabled:
        logging.getLogger("mission_control.auth").warning(
            "AUTH_MODE=off: every request is accepted without a token. Local runs and tests only."
        )


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Fields land as top-level jsonPayload keys, searchable in Logs Explorer."""
    logger.log(level, message, extra={"json_fields": fields})


def log_unexpected(logger: logging.Logger, request_id: str, exc: BaseException) -> None:
    """The stack goes in the message text: that is what Error Reporting detects and groups."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.error(
        f"Unhandled error in request {request_id}\n{stack}",
        extra={"json_fields": {"requestId": request_id}},
    )
