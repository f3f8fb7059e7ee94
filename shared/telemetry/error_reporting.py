"""The report as one Cloud Error Reporting event, written as a structured log line.

Error Reporting reads a log entry as an error event when its jsonPayload carries
"@type": ReportedErrorEvent (https://cloud.google.com/error-reporting/docs/formatting-error-messages).
It then groups by the stack trace it finds in `message`, and it only parses
JavaScript stacks in V8's `error.stack` format, so Firefox/Safari frames
("fn@url:1:2") are rewritten as V8 frames ("    at fn (url:1:2)"). A report with
no stack (a manual one, or "Script error.") carries `context.reportLocation`
instead, which Error Reporting requires when the message has no stack.

Our own fingerprint, report id and the rest of the report ride along under
`telemetry`, so the triage pipeline can join the log line to
`telemetry_errors/{fingerprint}`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from shared import clock
from shared.telemetry.fingerprint import Frame, Grouping, error_type, parse_stack, split_url, strip_uncaught
from shared.telemetry.models import SafeReport

REPORTED_ERROR_EVENT = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"

# The Operations page is the service whose errors these are, not this function.
SERVICE = "operations-page"

# Error Reporting is the triage queue, so every report is logged at ERROR at
# least, whatever the reporter called it; the reported severity stays in the payload.
LOG_LEVELS = {"fatal": logging.CRITICAL}


def log_level(severity: str) -> int:
    return LOG_LEVELS.get(severity, logging.ERROR)


def _v8_frame(frame: Frame) -> str:
    if frame.line is None:
        location = "native" if "native" in frame.file else frame.file
    else:
        location = frame.location
    return f"    at {frame.function} ({location})" if frame.function else f"    at {location}"


def _headline(report: SafeReport, kind: str) -> str:
    text = strip_uncaught(report.message or "").strip()
    if not text:
        text = (report.description or "").strip()
        kind = kind if report.source == "auto" else "OperatorReport"
    text = text or "(no message)"
    # V8's first line is "Name: message"; Error Reporting reads the type from it.
    return text if error_type(text) else f"{kind}: {text}"


def event_message(report: SafeReport, grouping: Grouping) -> tuple[str, bool]:
    """The text Error Reporting groups on, and whether it holds a parseable stack."""
    header, frames = parse_stack(report.stack or "")
    if not frames:
        return _headline(report, grouping.error_type), False
    first = "\n".join(header).strip()
    if not first or not error_type(first):
        first = _headline(report, grouping.error_type)
    return "\n".join([first, *(_v8_frame(f) for f in frames)]), True


def _report_location(report: SafeReport) -> dict[str, Any]:
    path = split_url(report.url).path if report.url else ""
    return {
        "filePath": path or "unknown",
        "lineNumber": 0,  # "0 indicates that the line number is unknown"
        "functionName": "window.onerror" if report.source == "auto" else "manual report",
    }


def build_entry(
    report: SafeReport,
    grouping: Grouping,
    *,
    report_id: str,
    received_at: dt.datetime,
    version: str,
    user: str | None = None,
    remote_ip: str | None = None,
    referrer: str | None = None,
) -> dict[str, Any]:
    """A ReportedErrorEvent plus our own fields. `report` is already scrubbed; the
    caller scrubs `referrer` too, since it is a URL from the request headers."""
    message, has_stack = event_message(report, grouping)
    http_request = {
        "url": report.url,
        "userAgent": report.user_agent,
        "referrer": referrer,
        "remoteIp": remote_ip,
    }
    context: dict[str, Any] = {"httpRequest": {k: v for k, v in http_request.items() if v}}
    if user:
        context["user"] = user
    if not has_stack:
        context["reportLocation"] = _report_location(report)
    return {
        "@type": REPORTED_ERROR_EVENT,
        "eventTime": clock.utc_text(received_at),
        "serviceContext": {"service": SERVICE, "version": version},
        "message": message,
        "context": context,
        "telemetry": {
            "reportId": report_id,
            "fingerprint": grouping.fingerprint,
            "groupedBy": grouping.basis,
            "errorType": grouping.error_type,
            "source": report.source,
            "severity": report.severity,
            "runId": report.run_id,
            "leadDocId": report.lead_doc_id,
            "release": report.release,
            "description": report.description,
            "truncated": list(report.truncated),
            "context": report.context,
        },
    }
