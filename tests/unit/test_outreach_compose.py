"""Composing one lead's message, address checks, error classification and backoff."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from shared.outreach import errors, pipeline
from shared.outreach.errors import PermanentError, TransientError

TEMPLATE = {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}\n\nIndustry: {{industry}}"}
LEAD = {"id": "lead-000001", "index": 1, "email": "ada@example.com", "firstName": "Ada", "company": "A&B <Ltd>",
        "fields": {"industry": "Looms"}, "status": "pending", "attempts": 0}


def test_compose_renders_subject_text_and_escaped_html():
    email = pipeline.compose(TEMPLATE, LEAD, "run-1", draft=False)
    assert email.to == "ada@example.com" and email.subject == "Hi Ada"
    assert email.text == "Hello Ada at A&B <Ltd>\n\nIndustry: Looms"
    assert "A&amp;B &lt;Ltd&gt;" in email.html and "<script" not in email.html
    assert email.step == "email-send" and email.message_id == "run-1-lead-000001-email-send"
    assert email.idempotency_key == "run-1:lead-000001:email-send"


def test_draft_uses_the_draft_step():
    email = pipeline.compose(TEMPLATE, LEAD, "run-1", draft=True)
    assert email.draft and email.step == "email-draft" and email.message_id.endswith("email-draft")


def test_a_missing_variable_is_permanent_and_names_it():
    with pytest.raises(PermanentError) as caught:
        pipeline.compose(TEMPLATE, {**LEAD, "firstName": "", "fields": {}}, "run-1", draft=False)
    assert caught.value.code == "missing_variables"
    assert "firstName" in caught.value.message and "industry" in caught.value.message


def test_bookkeeping_fields_are_not_template_variables():
    with pytest.raises(PermanentError) as caught:
        pipeline.compose({"subject": "{{status}}", "body": "{{attempts}}"}, LEAD, "run-1", draft=False)
    assert "status" in caught.value.message


def test_newlines_in_a_subject_cannot_inject_headers():
    email = pipeline.compose(TEMPLATE, {**LEAD, "firstName": "Ada\r\nBcc: x@evil.test"}, "run-1", draft=False)
    assert "\n" not in email.subject and "\r" not in email.subject


@pytest.mark.parametrize("address", ["ada@example.com", "a.b+tag@sub.example.co.uk", "o'neil@example.ie"])
def test_valid_addresses(address):
    assert pipeline.is_valid_email(address)


@pytest.mark.parametrize(
    "address", ["", "ada", "ada@", "@example.com", "ada@example", "ada example@x.com", "a@b.com\nBcc: c@d.com",
                "ada@-example.com", "x" * 250 + "@example.com"],
)
def test_invalid_addresses_fail_the_lead_permanently(address):
    assert not pipeline.is_valid_email(address)
    with pytest.raises(PermanentError) as caught:
        pipeline.compose(TEMPLATE, {**LEAD, "email": address}, "run-1", draft=False)
    assert caught.value.code == "invalid_email"


@pytest.mark.parametrize(
    "exc", [gexc.Aborted("x"), gexc.ServiceUnavailable("x"), gexc.DeadlineExceeded("x"), gexc.TooManyRequests("x")]
)
def test_firestore_hiccups_are_transient(exc):
    assert isinstance(errors.classify(exc), TransientError)


def test_a_bug_is_not_classified():
    assert errors.classify(KeyError("x")) is None
    assert errors.classify(gexc.PermissionDenied("x")) is None


@pytest.mark.parametrize("status, transient", [(429, True), (500, True), (503, True), (400, False), (404, False)])
def test_http_statuses(status, transient):
    assert isinstance(errors.for_http_status(status, "m"), TransientError) is transient


def test_backoff_grows_and_is_capped():
    for attempt in range(1, 10):
        delay = pipeline.backoff_seconds(attempt)
        ceiling = min(pipeline.BACKOFF_CAP_SECONDS, pipeline.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
