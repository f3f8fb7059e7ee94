"""Logs: structured JSON on stderr in the shape Cloud Logging parses, or plain text locally.

google-cloud-logging's StructuredLogHandler reads the Flask request's
`traceparent` / `X-Cloud-Trace-Context` itself, so every line a request writes
carries its trace id and Cloud Logging groups them under the request.

LOG_FORMAT=text (set by `make dev` only) writes one readable line per log call
instead, plus one line per request (method, path, status, ms, run id). Deployed,
Cloud Run's own request log carries the request line, so JSON mode writes none.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from typing import Any

from shared.settings import get_settings

_RUN_ID = re.compile(r"^/api/lead-runs/([^/]+)")
request_logger = logging.getLogger("mission_control.request")


class TextFormatter(logging.Formatter):
    """`12:00:01 WARNING worker: lease lost runId=r1`: the fields after the message."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "json_fields", None) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        name = record.name.removeprefix("mission_control.")
        line = f"{stamp} {record.levelname:<7} {name}: {record.getMessage()}" + (f"  {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_configured: tuple | None = None


def configure() -> None:
    """Installs the handler LOG_FORMAT names; a no-op until the settings change (every request calls it)."""
    global _configured
    settings = get_settings()
    key = (settings.log_format, settings.log_level.upper(), settings.google_cloud_project, settings.auth_enabled)
    if key != _configured:
        _configure(*key)
        _configured = key


def _configure(log_format: str, level: str, project: str, auth_enabled: bool) -> None:
    from google.cloud.logging_v2.handlers import StructuredLogHandler

    root = logging.getLogger()
    text = log_format == "text"
    # One handler of the format asked for; a test that switches format swaps it.
    for handler in list(root.handlers):
        if isinstance(handler, StructuredLogHandler) and text or isinstance(handler.formatter, TextFormatter) and not text:
            root.removeHandler(handler)
    if text and not any(isinstance(h.formatter, TextFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
        root.addHandler(handler)
    if not text and not any(isinstance(h, StructuredLogHandler) for h in root.handlers):
        root.addHandler(StructuredLogHandler(project_id=project))
    root.setLevel(level)
    # One line per request is ours to write; the HTTP libraries' chatter is not.
    for noisy in ("urllib3", "google.auth", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not auth_enabled:
        logging.getLogger("mission_control.auth").warning(
            "AUTH_MODE=off: every request is accepted without a token. Local runs and tests only."
        )


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Fields land as top-level jsonPayload keys, searchable in Logs Explorer."""
    logger.log(level, message, extra={"json_fields": fields})


def log_request(method: str, path: str, status: int, started: float) -> None:
    """make dev's one line per request: `POST /api/lead-runs/r1/jobs 202 35ms run=r1`."""
    try:
        text = get_settings().log_format == "text"
    except ValueError:  # invalid settings: the request was already answered with the 500 envelope
        return
    if not text:
        return
    match = _RUN_ID.match(path)
    elapsed_ms = (time.monotonic() - started) * 1000
    run = f" run={match.group(1)}" if match else ""
    request_logger.info(f"{method} {path} {status} {elapsed_ms:.0f}ms{run}")


def log_unexpected(logger: logging.Logger, request_id: str, exc: BaseException) -> None:
    """The stack goes in the message text: that is what Error Reporting detects and groups."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.error(
        f"Unhandled error in request {request_id}\n{stack}",
        extra={"json_fields": {"requestId": request_id}},
    )
