"""The Cloud Error Reporting entry built from a safe report (no I/O)."""

from __future__ import annotations

import datetime as dt
import logging

from shared.telemetry.error_reporting import REPORTED_ERROR_EVENT, build_entry, event_message, log_level
from shared.telemetry.fingerprint import fingerprint
from shared.telemetry.models import SafeReport

WHEN = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)


def safe(**fields) -> SafeReport:
    values = dict(source="auto", severity="error", message=None, stack=None, url=None, run_id=None, lead_doc_id=None,
                  description=None, user_agent=None, release=None, context=None, truncated=())
    values.update(fields)
    return SafeReport(**values)


def entry_for(report: SafeReport, **kwargs):
    grouping = fingerprint(message=report.message, stack=report.stack, description=report.description,
                           page_url=report.url)
    return build_entry(report, grouping, report_id="rep1", received_at=WHEN, version="v9", **kwargs), grouping


def test_the_entry_is_a_reported_error_event():
    report = safe(message="Uncaught TypeError: x is undefined", url="https://mc.web.app/ops", user_agent="UA",
                  stack="TypeError: x is undefined\n    at f (https://mc.web.app/a.js:1:2)", run_id="r1",
                  context={"screen": "runs"}, truncated=("message",))
    entry, grouping = entry_for(report, user="uid-1", remote_ip="203.0.113.1", referrer="https://mc.web.app/")
    assert entry == {
        "@type": REPORTED_ERROR_EVENT,
        "eventTime": "2026-03-01T12:30:00Z",
        "serviceContext": {"service": "operations-page", "version": "v9"},
        "message": "TypeError: x is undefined\n    at f (https://mc.web.app/a.js:1:2)",
        "context": {
            "httpRequest": {"url": "https://mc.web.app/ops", "userAgent": "UA", "referrer": "https://mc.web.app/",
                            "remoteIp": "203.0.113.1"},
            "user": "uid-1",
        },
        "telemetry": {
            "reportId": "rep1", "fingerprint": grouping.fingerprint, "groupedBy": "stack", "errorType": "TypeError",
            "source": "auto", "severity": "error", "runId": "r1", "leadDocId": None, "release": None,
            "description": None, "truncated": ["message"], "context": {"screen": "runs"},
        },
    }


def test_a_stack_without_a_header_gets_one_from_the_message():
    report = safe(message="Uncaught TypeError: x", stack="    at f (https://x.io/a.js:1:2)")
    text, has_stack = event_message(report, fingerprint(message=report.message, stack=report.stack))
    assert has_stack
    assert text == "TypeError: x\n    at f (https://x.io/a.js:1:2)"


def test_a_message_without_a_type_is_given_one():
    report = safe(message="x is undefined", stack="f@https://x.io/a.js:1:2\nforEach@[native code]")
    text, _ = event_message(report, fingerprint(message=report.message, stack=report.stack))
    assert text == "Error: x is undefined\n    at f (https://x.io/a.js:1:2)\n    at forEach (native)"


def test_no_stack_means_a_report_location():
    entry, _ = entry_for(safe(source="manual", description="Save does nothing", url="https://mc.web.app/ops?tab=t"))
    assert entry["message"] == "OperatorReport: Save does nothing"
    assert entry["context"] == {
        "httpRequest": {"url": "https://mc.web.app/ops?tab=t"},
        "reportLocation": {"filePath": "/ops", "lineNumber": 0, "functionName": "manual report"},
    }


def test_an_auto_report_without_frames():
    entry, _ = entry_for(safe(message="Script error.", stack="unhandledrejection"))
    assert entry["message"] == "Error: Script error."
    assert entry["context"]["reportLocation"] == {"filePath": "unknown", "lineNumber": 0, "functionName": "window.onerror"}


def test_every_report_is_logged_at_error_or_above():
    assert [log_level(s) for s in ("debug", "info", "warning", "error", "fatal")] == [
        logging.ERROR, logging.ERROR, logging.ERROR, logging.ERROR, logging.CRITICAL]
