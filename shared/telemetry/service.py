"""The error-report use case: validate → scrub → bound → fingerprint → rate-limit → store → log.

Scrubbing runs before truncation on purpose: cutting first could leave the front
half of a token that the token rule no longer recognises. The rate limit is
counted only for a valid report, so bad input is refused without writing anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from pydantic.alias_generators import to_camel

from shared import clock, ids, logs
from shared.store import telemetry as store
from shared.telemetry import error_reporting, limits, ratelimit
from shared.telemetry.fingerprint import Grouping, fingerprint
from shared.telemetry.models import ErrorReportIn, ReportAccepted, SafeReport
from shared.telemetry.scrub import scrub_text, scrub_value

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.auth import User
    from shared.settings import Settings

logger = logging.getLogger("mission_control.telemetry")

# A group keeps its first report whole-ish as the example to read; events keep all.
SAMPLE_STACK_CHARS = 8_000


@dataclasses.dataclass(frozen=True)
class Reporter:
    """Who sent the report, from the request rather than from the report itself."""

    user: "User | None" = None
    ip: str | None = None
    referrer: str | None = None


def _safe_text(value: str | None, limit: int) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    text, cut = limits.truncate_text(scrub_text(limits.clean_text(value)), limit)
    return (text if text.strip() else None), cut


def make_safe(report: ErrorReportIn) -> SafeReport:
    truncated: list[str] = []
    values: dict[str, Any] = {}
    for field, limit in limits.FIELD_LIMITS.items():
        values[field], cut = _safe_text(getattr(report, field), limit)
        if cut:
            truncated.append(to_camel(field))
    stack = None
    if report.stack is not None:
        stack, cut = limits.truncate_stack(scrub_text(limits.clean_text(report.stack)))
        stack = stack if stack.strip() else None
        if cut:
            truncated.append("stack")
    context = None
    if report.context is not None:
        context, cut = limits.bound_context(scrub_value(report.context))
        if cut:
            truncated.append("context")
    return SafeReport(
        source=report.source,
        severity=report.severity,
        stack=stack,
        context=context,
        truncated=tuple(truncated),
        **values,
    )


def group_of(report: SafeReport) -> Grouping:
    return fingerprint(
        message=report.message, stack=report.stack, description=report.description, page_url=report.url
    )


def _event_document(
    report: SafeReport, grouping: Grouping, reporter: Reporter, received_at: dt.datetime, retention: dt.timedelta
) -> dict[str, Any]:
    user = reporter.user
    return {
        "fingerprint": grouping.fingerprint,
        "receivedAt": received_at,
        "source": report.source,
        "severity": report.severity,
        "errorType": grouping.error_type,
        "message": report.message,
        "stack": report.stack,
        "url": report.url,
        "runId": report.run_id,
        "leadDocId": report.lead_doc_id,
        "description": report.description,
        "userAgent": report.user_agent,
        "release": report.release,
        "context": report.context,
        "truncated": list(report.truncated),
        "user": {"uid": user.uid, "email": user.email} if user else None,
        "expireAt": received_at + retention,  # Firestore's TTL policy deletes it then
    }


def _group_document(report: SafeReport, grouping: Grouping, report_id: str) -> dict[str, Any]:
    """The fields a group gets when its first report creates it."""
    stack, _ = limits.truncate_text(report.stack or "", SAMPLE_STACK_CHARS)
    return {
        "errorType": grouping.error_type,
        "groupedBy": grouping.basis,
        "frames": list(grouping.frames),
        "sample": {
            "reportId": report_id,
            "source": report.source,
            "severity": report.severity,
            "message": report.message,
            "description": report.description,
            "stack": stack or None,
            "url": report.url,
            "release": report.release,
        },
    }


def submit_report(
    db: "firestore.Client",
    report: ErrorReportIn,
    reporter: Reporter,
    settings: "Settings",
    now: dt.datetime | None = None,
) -> ReportAccepted:
    received_at = now or clock.now()
    safe = make_safe(report)
    grouping = group_of(safe)
    ratelimit.check(
        db,
        ratelimit.client_key(reporter.user, reporter.ip),
        limit=settings.telemetry_rate_limit,
        window_seconds=settings.telemetry_rate_window_seconds,
        now=received_at,
    )
    report_id = ids.new_id()
    store.record_event(
        db,
        fingerprint=grouping.fingerprint,
        report_id=report_id,
        event=_event_document(
            safe, grouping, reporter, received_at, dt.timedelta(days=settings.telemetry_retention_days)
        ),
        group=_group_document(safe, grouping, report_id),
        received_at=received_at,
    )
    # Logged after the write: a report the client must retry (503) is not logged twice.
    entry = error_reporting.build_entry(
        safe,
        grouping,
        report_id=report_id,
        received_at=received_at,
        version=safe.release or settings.build_version,
        user=reporter.user.uid if reporter.user else None,
        remote_ip=reporter.ip,
        referrer=_safe_text(reporter.referrer, limits.MAX_URL_CHARS)[0],
    )
    message = entry.pop("message")
    logs.log(logger, error_reporting.log_level(safe.severity), message, **entry)
    return ReportAccepted(report_id=report_id, fingerprint=grouping.fingerprint)
