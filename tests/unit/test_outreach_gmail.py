"""The Gmail provider over real HTTP against tools/gmail_server.py, a local server speaking
the Gmail API's wire format: the requests it makes, how it sorts Google's errors, and how it
resolves a send whose answer was lost (docs/reliability.md, "Ambiguous sends")."""

from __future__ import annotations

import base64
import datetime as dt
import email
import socket
from email import policy

import pytest
import requests

from shared.outreach import gmail
from shared.outreach.errors import PermanentError, ProviderQuotaError, TransientError, retry_after_seconds
from shared.outreach.providers import OutgoingEmail
from shared.retry import Policy
from tools.gmail_server import GmailServer

SEND = OutgoingEmail(
    to="ada@example.com", subject="Hi Ada", text="Hello Ada\nBye", html="<p>Hello Ada<br>Bye</p>",
    run_id="run-1", lead_id="lead-000007", step="email-send", draft=False,
)
DRAFT = OutgoingEmail(**{**SEND.__dict__, "step": "email-draft", "draft": True})
# The tests' read timeout, and a `delay` fault longer than it.
READ_TIMEOUT = 0.5
LATE = 1.5
QUICK_CONFIRM = Policy("the mailbox search, quickly", retry_on=gmail.CONFIRM_SEND.retry_on, initial=0.01, maximum=0.02)


def provider(gmail_server, sender="ops@example.com", **kwargs):
    return gmail.GmailProvider(
        sender=sender, session=requests.Session(), base_url=gmail_server.base_url, timeout=(2, READ_TIMEOUT),
        confirm=QUICK_CONFIRM, **kwargs,
    )


def decode(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def test_send_posts_a_raw_rfc2822_message_to_messages_send(gmail_server):
    ids = provider(gmail_server).deliver(None, None, SEND)
    (sent,) = gmail_server.sent()
    assert ids == {"gmailMessageId": sent.id, "gmailThreadId": sent.thread_id}
    assert dict(gmail_server.calls) == {"messages.send": 1}
    assert gmail.request_for(SEND, "")[0] == "https://gmail.googleapis.com/gmail/v1/users/me/messages/send"
    assert set(gmail.request_for(SEND, "")[1]) == {"raw"}
    message = decode(sent.raw)
    assert message["To"] == "ada@example.com" and message["From"] == "ops@example.com"
    assert message["Subject"] == "Hi Ada"
    assert message["X-Mission-Control-Key"] == "run-1:lead-000007:email-send"
    assert message["Message-ID"] == "<run-1.lead-000007.email-send@example.com>"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Ada\nBye"
    assert "<br>" in message.get_body(("html",)).get_content()


def test_the_message_id_is_the_same_for_every_attempt_and_differs_per_step():
    assert gmail.message_id_header(SEND, "") == gmail.message_id_header(SEND, "") == "<run-1.lead-000007.email-send@mission-control.local>"
    assert gmail.message_id_header(DRAFT, "") != gmail.message_id_header(SEND, "")


def test_draft_posts_to_drafts_create_and_never_sends(gmail_server):
    ids = provider(gmail_server).deliver(None, None, DRAFT)
    (drafted,) = gmail_server.draft_messages()
    assert ids == {"gmailDraftId": next(iter(gmail_server.drafts)), "gmailMessageId": drafted.id}
    assert gmail_server.sent() == []
    assert dict(gmail_server.calls) == {"drafts.create": 1}
    url = gmail.request_for(DRAFT, "")[0]
    assert url == "https://gmail.googleapis.com/gmail/v1/users/me/drafts"
    assert "send" not in url
    assert decode(drafted.raw)["Subject"] == "Hi Ada"


def test_raw_is_base64url_without_plus_or_slash():
    raw = gmail.raw(OutgoingEmail(**{**SEND.__dict__, "text": "?" * 500 + "ÿ" * 50}), "")
    assert "+" not in raw and "/" not in raw
    assert base64.urlsafe_b64decode(raw)


@pytest.mark.parametrize(
    "status, reason, message, kind, code",
    [
        # Throttling is the mailbox's quota (docs/deliverability.md): a sender pause, not a lead failure.
        (429, "rateLimitExceeded", "Too many concurrent requests for user", ProviderQuotaError, "provider_quota"),
        (403, "userRateLimitExceeded", "User-rate limit exceeded", ProviderQuotaError, "provider_quota"),
        (403, "rateLimitExceeded", "Rate Limit Exceeded", ProviderQuotaError, "provider_quota"),
        (403, "dailyLimitExceeded", "Daily Limit Exceeded", ProviderQuotaError, "provider_quota"),
        (500, "backendError", "Backend Error", TransientError, "provider_transient"),
        (503, "backendError", "The service is currently unavailable.", TransientError, "provider_transient"),
        (400, "invalidArgument", "Invalid To header", PermanentError, "provider_rejected"),
        (403, "insufficientPermissions", "Request had insufficient authentication scopes.", PermanentError, "provider_rejected"),
        (401, "authError", "Invalid Credentials", PermanentError, "provider_rejected"),
    ],
)
def test_error_responses_are_classified(gmail_server, status, reason, message, kind, code):
    gmail_server.fail("messages.send", status=status, reason=reason, message=message)
    with pytest.raises(kind) as caught:
        provider(gmail_server).deliver(None, None, SEND)
    assert caught.value.code == code
    assert message in caught.value.message
    assert gmail_server.sent() == []
    # Only a 5xx may have come after the message was accepted: only then is the mailbox searched.
    assert (gmail_server.calls["messages.list"] > 0) == (status >= 500)


def test_a_429_carries_retry_after_and_sends_nothing(gmail_server):
    gmail_server.rate_limited("messages.send", retry_after=7)
    response = requests.post(f"{gmail_server.base_url}/gmail/v1/users/me/messages/send", json={"raw": gmail.raw(SEND, "")}, timeout=5)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert gmail_server.sent() == []


@pytest.mark.parametrize(
    "status, reason, message, retry_after, seconds, daily",
    [
        # "User-rate limit exceeded (Mail sending)" with a time to retry (Gmail "Resolve errors", 429).
        (429, "rateLimitExceeded", "User-rate limit exceeded", 120, 120.0, False),
        (403, "userRateLimitExceeded", "User Rate Limit Exceeded", None, None, False),
        (403, "dailyLimitExceeded", "Daily Limit Exceeded", 60, None, True),
        (429, "rateLimitExceeded", "Daily user sending quota exceeded.", None, None, True),
    ],
)
def test_quota_refusals_carry_retry_after_and_the_daily_flag(gmail_server, status, reason, message, retry_after, seconds, daily):
    spec = {"retry_after": retry_after} if retry_after else {}
    gmail_server.fail("messages.send", status=status, reason=reason, message=message, domain="usageLimits", **spec)
    with pytest.raises(ProviderQuotaError) as caught:
        provider(gmail_server).deliver(None, None, SEND)
    assert caught.value.retry_after_seconds == seconds
    assert caught.value.daily is daily
    assert gmail_server.sent() == []


def test_retry_after_as_an_http_date():
    now = dt.datetime(2030, 6, 3, 12, 0, tzinfo=dt.timezone.utc)
    assert retry_after_seconds("Mon, 03 Jun 2030 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Mon, 03 Jun 2030 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_an_error_body_that_is_not_json_still_classifies(gmail_server):
    gmail_server.fail("messages.send", status=502, text="<html>Bad Gateway</html>")
    with pytest.raises(TransientError):
        provider(gmail_server).deliver(None, None, SEND)


def test_connection_failure_is_transient():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    unreachable = gmail.GmailProvider(session=requests.Session(), base_url=f"http://127.0.0.1:{port}", timeout=(2, 1))
    with pytest.raises(TransientError) as caught:
        unreachable.deliver(None, None, SEND)
    assert caught.value.code == "provider_unreachable"


@pytest.mark.parametrize("fault", ["accepted_then_dropped", "accepted_then_500", "accepted_then_late"])
def test_a_send_whose_answer_was_lost_is_found_in_the_mailbox_and_adopted(gmail_server, fault):
    getattr(gmail_server, fault)("messages.send", **({"seconds": LATE} if fault == "accepted_then_late" else {}))
    ids = provider(gmail_server).deliver(None, None, SEND)
    (sent,) = gmail_server.sent()
    assert ids == {"gmailMessageId": sent.id, "gmailThreadId": sent.thread_id}
    assert gmail_server.calls["messages.send"] == 1, "sent twice"
    assert gmail_server.calls["messages.list"] >= 1


def test_a_draft_whose_answer_was_lost_is_found_among_the_drafts(gmail_server):
    gmail_server.accepted_then_dropped("drafts.create")
    ids = provider(gmail_server).deliver(None, None, DRAFT)
    (drafted,) = gmail_server.draft_messages()
    assert ids == {"gmailDraftId": next(iter(gmail_server.drafts)), "gmailMessageId": drafted.id}
    assert gmail_server.calls["drafts.create"] == 1 and gmail_server.calls["drafts.list"] >= 1


def test_a_lost_answer_that_never_reached_the_mailbox_is_transient_and_the_retry_sends_once(gmail_server):
    gmail_server.fail("messages.send", drop=True)  # the line drops before Gmail accepted anything
    gmail_provider = provider(gmail_server)
    with pytest.raises(TransientError):
        gmail_provider.deliver(None, None, SEND)
    assert gmail_server.sent() == [] and gmail_server.calls["messages.list"] == gmail.CONFIRM_ATTEMPTS
    gmail_provider.deliver(None, None, SEND)
    assert len(gmail_server.sent()) == 1


def test_a_send_without_an_answer_is_not_retried_it_may_have_gone_out(gmail_server):
    gmail_server.accepted_then_late("messages.send", seconds=LATE)
    gmail_server.fail("messages.list", status=503, reason="backendError", times=gmail.CONFIRM_ATTEMPTS)
    with pytest.raises(PermanentError) as caught:
        provider(gmail_server).deliver(None, None, SEND)
    assert caught.value.code == "outcome_unknown"
    assert gmail_server.calls["messages.send"] == 1 and len(gmail_server.sent()) == 1


def test_a_draft_without_an_answer_is_retried(gmail_server):
    gmail_server.accepted_then_late("drafts.create", seconds=LATE)
    gmail_server.fail("drafts.list", drop=True, times=gmail.CONFIRM_ATTEMPTS)
    with pytest.raises(TransientError):
        provider(gmail_server).deliver(None, None, DRAFT)


def test_the_server_speaks_the_rest_of_the_drafts_api(gmail_server):
    """drafts.get/update/send/list/delete and messages.get, as other engineers use them."""
    base = f"{gmail_server.base_url}/gmail/v1/users/me"
    draft = requests.post(f"{base}/drafts", json={"message": {"raw": gmail.raw(DRAFT, "")}}, timeout=5).json()
    got = requests.get(f"{base}/drafts/{draft['id']}", timeout=5).json()
    assert got["message"]["labelIds"] == ["DRAFT"]
    updated = requests.put(f"{base}/drafts/{draft['id']}", json={"message": {"raw": gmail.raw(SEND, "")}}, timeout=5).json()
    assert updated["id"] == draft["id"] and updated["message"]["id"] != draft["message"]["id"]
    listed = requests.get(f"{base}/drafts", params={"q": f"rfc822msgid:{gmail.message_id_header(SEND, '')}"}, timeout=5).json()
    assert [d["id"] for d in listed["drafts"]] == [draft["id"]]
    sent = requests.post(f"{base}/drafts/send", json={"id": draft["id"]}, timeout=5).json()
    assert sent["labelIds"] == ["SENT"]
    assert requests.get(f"{base}/drafts/{draft['id']}", timeout=5).json()["error"]["code"] == 404
    raw = requests.get(f"{base}/messages/{sent['id']}", params={"format": "raw"}, timeout=5).json()["raw"]
    assert decode(base64.urlsafe_b64decode(raw))["Subject"] == "Hi Ada"
    other = requests.post(f"{base}/drafts", json={"message": {"raw": gmail.raw(DRAFT, "")}}, timeout=5).json()
    assert requests.delete(f"{base}/drafts/{other['id']}", timeout=5).status_code == 204
    assert requests.get(f"{base}/drafts", timeout=5).json() == {"resultSizeEstimate": 0}


def test_the_server_answers_daily_limit_and_auth_errors_in_googles_envelope(gmail_server):
    gmail_server.daily_limit("messages.send")
    answer = requests.post(f"{gmail_server.base_url}/gmail/v1/users/me/messages/send", json={"raw": gmail.raw(SEND, "")}, timeout=5)
    assert answer.status_code == 403
    assert answer.json()["error"]["errors"][0] == {
        "message": "Daily user sending quota exceeded", "domain": "usageLimits", "reason": "dailyLimitExceeded"}
    with GmailServer(require_token="t0ken") as guarded:
        denied = requests.get(f"{guarded.base_url}/gmail/v1/users/me/drafts", timeout=5)
        assert denied.status_code == 401 and denied.json()["error"]["errors"][0]["reason"] == "authError"
        allowed = requests.get(f"{guarded.base_url}/gmail/v1/users/me/drafts", headers={"Authorization": "Bearer t0ken"}, timeout=5)
        assert allowed.status_code == 200


def test_provider_is_selected_by_configuration(configure):
    from shared.outreach.providers import MailCollectionProvider, build_provider
    from shared.settings import get_settings

    assert isinstance(build_provider(get_settings()), MailCollectionProvider)
    configure(EMAIL_PROVIDER="gmail", GMAIL_SENDER="ops@example.com", GMAIL_API_BASE_URL="http://127.0.0.1:8025/")
    provider = build_provider(get_settings())
    assert isinstance(provider, gmail.GmailProvider) and provider.sender == "ops@example.com" and provider.external
    assert provider.base_url == "http://127.0.0.1:8025"
