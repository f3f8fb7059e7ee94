"""The Gmail provider's request building and error classification, on recorded
response shapes (no network: the session is a stand-in that records the call)."""

from __future__ import annotations

import base64
import datetime as dt
import email
import json
from email import policy

import pytest
import requests

from shared.outreach import gmail
from shared.outreach.errors import PermanentError, ProviderQuotaError, TransientError, retry_after_seconds
from shared.outreach.providers import OutgoingEmail

SEND = OutgoingEmail(
    to="ada@example.com", subject="Hi Ada", text="Hello Ada\nBye", html="<p>Hello Ada<br>Bye</p>",
    run_id="run-1", lead_id="lead-000007", step="email-send", draft=False,
)
DRAFT = OutgoingEmail(**{**SEND.__dict__, "step": "email-draft", "draft": True})

# Shapes as the Gmail API documents and returns them.
SENT_BODY = {"id": "18c1f2a3b4c5d6e7", "threadId": "18c1f2a3b4c5d6e7", "labelIds": ["SENT"]}
DRAFT_BODY = {"id": "r-1234567890", "message": {"id": "18c1f2a3b4c5d6e8", "threadId": "18c1f2a3b4c5d6e8"}}


def google_error(status: int, message: str, reason: str, status_text: str) -> dict:
    return {"error": {"code": status, "message": message, "status": status_text,
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}


def response(status: int, body: dict | None = None) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = json.dumps(body or {}).encode()
    made.headers["Content-Type"] = "application/json"
    made.reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "")
    return made


class RecordingSession:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def post(self, url, json=None, timeout=None):
        self.calls.append({"url": url, "json": json, "timeout": timeout})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def decode(raw: str) -> email.message.EmailMessage:
    return email.message_from_bytes(base64.urlsafe_b64decode(raw), policy=policy.default)


def test_send_posts_a_raw_rfc2822_message_to_messages_send():
    session = RecordingSession(response(200, SENT_BODY))
    ids = gmail.GmailProvider(sender="ops@example.com", session=session).deliver(None, None, SEND)
    assert ids == {"gmailMessageId": "18c1f2a3b4c5d6e7", "gmailThreadId": "18c1f2a3b4c5d6e7"}
    (call,) = session.calls
    assert call["url"] == "https://gmail.googleapis.com/gmail/v1/users/me/messages/send"
    assert set(call["json"]) == {"raw"}
    message = decode(call["json"]["raw"])
    assert message["To"] == "ada@example.com" and message["From"] == "ops@example.com"
    assert message["Subject"] == "Hi Ada"
    assert message["X-Mission-Control-Key"] == "run-1:lead-000007:email-send"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Ada\nBye"
    assert "<br>" in message.get_body(("html",)).get_content()


def test_draft_posts_to_drafts_create_and_never_sends():
    session = RecordingSession(response(200, DRAFT_BODY))
    ids = gmail.GmailProvider(session=session).deliver(None, None, DRAFT)
    assert ids == {"gmailDraftId": "r-1234567890", "gmailMessageId": "18c1f2a3b4c5d6e8"}
    (call,) = session.calls
    assert call["url"] == "https://gmail.googleapis.com/gmail/v1/users/me/drafts"
    assert "send" not in call["url"]
    assert decode(call["json"]["message"]["raw"])["Subject"] == "Hi Ada"


def test_raw_is_base64url_without_plus_or_slash():
    raw = gmail.raw(OutgoingEmail(**{**SEND.__dict__, "text": "?" * 500 + "ÿ" * 50}), "")
    assert "+" not in raw and "/" not in raw


@pytest.mark.parametrize(
    "status, body, kind, code",
    [
        # Throttling is the mailbox's quota (issue 16): still transient, now a sender pause.
        (429, google_error(429, "Too many concurrent requests for user", "rateLimitExceeded", "RESOURCE_EXHAUSTED"), ProviderQuotaError, "provider_quota"),
        (403, google_error(403, "User-rate limit exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"), ProviderQuotaError, "provider_quota"),
        (403, google_error(403, "Rate Limit Exceeded", "rateLimitExceeded", "PERMISSION_DENIED"), ProviderQuotaError, "provider_quota"),
        (403, google_error(403, "Daily Limit Exceeded", "dailyLimitExceeded", "PERMISSION_DENIED"), ProviderQuotaError, "provider_quota"),
        (500, google_error(500, "Backend Error", "backendError", "INTERNAL"), TransientError, "provider_transient"),
        (503, google_error(503, "The service is currently unavailable.", "backendError", "UNAVAILABLE"), TransientError, "provider_transient"),
        (400, google_error(400, "Invalid To header", "invalidArgument", "INVALID_ARGUMENT"), PermanentError, "provider_rejected"),
        (403, google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED"), PermanentError, "provider_rejected"),
    ],
)
def test_error_responses_are_classified(status, body, kind, code):
    session = RecordingSession(response(status, body))
    with pytest.raises(kind) as caught:
        gmail.GmailProvider(session=session).deliver(None, None, SEND)
    assert caught.value.code == code
    assert body["error"]["message"] in caught.value.message


@pytest.mark.parametrize(
    "status, body, retry_after, seconds, daily",
    [
        # "User-rate limit exceeded (Mail sending)" with a time to retry (Gmail "Resolve errors", 429).
        (429, google_error(429, "User-rate limit exceeded", "rateLimitExceeded", "RESOURCE_EXHAUSTED"), "120", 120.0, False),
        (403, google_error(403, "User Rate Limit Exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"), None, None, False),
        (403, google_error(403, "Daily Limit Exceeded", "dailyLimitExceeded", "PERMISSION_DENIED"), "60", None, True),
        (429, google_error(429, "Daily user sending quota exceeded.", "rateLimitExceeded", "RESOURCE_EXHAUSTED"), None, None, True),
    ],
)
def test_quota_refusals_carry_retry_after_and_the_daily_flag(status, body, retry_after, seconds, daily):
    answer = response(status, body)
    if retry_after:
        answer.headers["Retry-After"] = retry_after
    with pytest.raises(ProviderQuotaError) as caught:
        gmail.GmailProvider(session=RecordingSession(answer)).deliver(None, None, SEND)
    assert caught.value.retry_after_seconds == seconds
    assert caught.value.daily is daily


def test_retry_after_as_an_http_date():
    now = dt.datetime(2030, 6, 3, 12, 0, tzinfo=dt.timezone.utc)
    assert retry_after_seconds("Mon, 03 Jun 2030 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Mon, 03 Jun 2030 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_an_error_body_that_is_not_json_still_classifies():
    broken = response(502)
    broken._content = b"<html>Bad Gateway</html>"
    with pytest.raises(TransientError):
        gmail.GmailProvider(session=RecordingSession(broken)).deliver(None, None, SEND)


def test_connection_failure_is_transient():
    session = RecordingSession(requests.ConnectionError("refused"))
    with pytest.raises(TransientError) as caught:
        gmail.GmailProvider(session=session).deliver(None, None, SEND)
    assert caught.value.code == "provider_unreachable"


def test_a_send_without_an_answer_is_not_retried_it_may_have_gone_out():
    session = RecordingSession(requests.ReadTimeout("slow"))
    with pytest.raises(PermanentError) as caught:
        gmail.GmailProvider(session=session).deliver(None, None, SEND)
    assert caught.value.code == "outcome_unknown"


def test_a_draft_without_an_answer_is_retried():
    session = RecordingSession(requests.ReadTimeout("slow"))
    with pytest.raises(TransientError):
        gmail.GmailProvider(session=session).deliver(None, None, DRAFT)


def test_provider_is_selected_by_configuration(configure):
    from shared.outreach.providers import MailCollectionProvider, build_provider
    from shared.settings import get_settings

    assert isinstance(build_provider(get_settings()), MailCollectionProvider)
    configure(EMAIL_PROVIDER="gmail", GMAIL_SENDER="ops@example.com")
    provider = build_provider(get_settings())
    assert isinstance(provider, gmail.GmailProvider) and provider.sender == "ops@example.com" and provider.external
