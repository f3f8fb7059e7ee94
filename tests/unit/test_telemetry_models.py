"""The request model, and the scrub-then-bound pipeline that turns it into a SafeReport."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.telemetry import limits
from shared.telemetry.error_reporting import build_entry
from shared.telemetry.models import ErrorReportIn
from shared.telemetry.service import group_of, make_safe


def test_camel_case_fields_and_defaults():
    report = ErrorReportIn.model_validate({"source": "auto", "message": "m", "runId": "r", "leadDocId": "l",
                                           "userAgent": "UA"})
    assert (report.run_id, report.lead_doc_id, report.user_agent, report.severity) == ("r", "l", "UA", "error")


def test_unknown_fields_are_dropped():
    report = ErrorReportIn.model_validate({"source": "auto", "message": "m", "password": "p", "extra": {"a": 1}})
    assert "password" not in report.model_dump() and "extra" not in report.model_dump()


@pytest.mark.parametrize(("given_", "stored"), [("Error", "error"), (" WARN ", "warning"), ("critical", "fatal")])
def test_severity_spellings(given_, stored):
    assert ErrorReportIn.model_validate({"source": "auto", "message": "m", "severity": given_}).severity == stored


@pytest.mark.parametrize(
    "body",
    [{"source": "auto", "message": 1}, {"source": "auto", "message": "m", "context": []}, {"source": "x", "message": "m"},
     {"source": "auto"}, {"source": "auto", "message": "", "stack": "  "}],
)
def test_invalid_reports(body):
    with pytest.raises(ValidationError):
        ErrorReportIn.model_validate(body)


def test_make_safe_scrubs_before_it_truncates():
    token = secrets.token_urlsafe(32)
    # The token straddles the message limit: cut first, its front half would survive.
    message = "x" * (limits.MAX_MESSAGE_CHARS - 40) + " " + token
    safe = make_safe(ErrorReportIn.model_validate({"source": "auto", "message": message}))
    assert token[:20] not in safe.message
    assert safe.truncated == ()


def test_make_safe_names_the_truncated_fields_as_the_api_does():
    safe = make_safe(ErrorReportIn.model_validate(
        {"source": "auto", "message": "m", "userAgent": "u" * 600, "context": {"k": "v" * 600}}))
    assert safe.truncated == ("userAgent", "context")


def test_blank_fields_become_null():
    safe = make_safe(ErrorReportIn.model_validate({"source": "manual", "description": "d", "message": "  ", "url": ""}))
    assert safe.message is None and safe.url is None


text = st.one_of(st.none(), st.text(max_size=200), st.sampled_from(
    ["http://[::1", "https://[REDACTED]@h/x", "http://h:99999/", "    at f (http://[x:1:1)", "a@b:1:1", "\ud800"]))
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
contexts = st.none() | st.dictionaries(st.text(max_size=10), st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=20),
    max_size=6)


@settings(max_examples=300, deadline=None)
@given(text, text, text, text, text, text, contexts)
def test_any_valid_report_goes_through_the_pure_pipeline(message, stack, url, description, user_agent, run_id, context):
    body = {"source": "auto", "message": f"{message or ''}m", "stack": stack, "url": url, "description": description,
            "userAgent": user_agent, "runId": run_id, "context": context}
    safe = make_safe(ErrorReportIn.model_validate(body))
    grouping = group_of(safe)
    entry = build_entry(safe, grouping, report_id="r", received_at=dt.datetime.now(dt.timezone.utc), version="v")
    assert entry["message"]
