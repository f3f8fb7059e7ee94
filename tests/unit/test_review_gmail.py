"""Review's Gmail send: drafts.update with the reviewed content, then drafts.send of that
draft id (Gmail API reference, users.drafts/update and users.drafts/send), against the
local Gmail-shaped gmail_server (tools/gmail_server.py)."""

from __future__ import annotations

import email as email_lib
from email import policy

import pytest
import requests

from shared.outreach import gmail
from shared.outreach.errors import PermanentError
from shared.outreach.providers import OutgoingEmail

DRAFTED = OutgoingEmail(
    to="ada@example.com", subject="First take", text="Draft", html="<p>Draft</p>", run_id="run-1",
    lead_id="lead-000001", step="email-draft", draft=True,
)
REVIEWED = OutgoingEmail(
    to="ada@example.com", subject="Edited", text="Reviewed", html="<p>Reviewed</p>", run_id="run-1",
    lead_id="lead-000001", step="email-send", draft=False,
    headers=(("List-Unsubscribe", "<https://ops.example.com/u/tok>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
)


def provider(gmail_server):
    return gmail.GmailProvider(sender="me@example.com", session=requests.Session(), base_url=gmail_server.base_url, timeout=(2, 2))


def test_send_draft_replaces_the_content_then_sends_that_draft(gmail_server):
    drafted = provider(gmail_server).deliver(None, None, DRAFTED)
    draft_id = drafted["gmailDraftId"]
    ids = provider(gmail_server).send_draft(draft_id, REVIEWED)
    (sent,) = gmail_server.sent()
    assert ids["gmailDraftId"] == draft_id and ids["gmailMessageId"] == sent.id
    assert gmail_server.calls["drafts.update"] == 1 and gmail_server.calls["drafts.send"] == 1
    message = email_lib.message_from_bytes(sent.raw, policy=policy.default)
    assert message["Subject"] == "Edited" and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Reviewed" in message.get_body(("plain",)).get_content()


def test_send_draft_without_a_draft_id_or_refused_is_permanent(gmail_server):
    with pytest.raises(PermanentError):
        provider(gmail_server).send_draft("", REVIEWED)
    draft_id = provider(gmail_server).deliver(None, None, DRAFTED)["gmailDraftId"]
    gmail_server.fail("drafts.send", status=400, reason="invalidArgument", message="Invalid draft")
    with pytest.raises(PermanentError):
        provider(gmail_server).send_draft(draft_id, REVIEWED)
    assert gmail_server.sent() == []


def test_send_draft_whose_answer_was_lost_is_not_sent_again(gmail_server):
    draft_id = provider(gmail_server).deliver(None, None, DRAFTED)["gmailDraftId"]
    gmail_server.accepted_then_dropped("drafts.send")
    with pytest.raises(PermanentError) as caught:
        provider(gmail_server).send_draft(draft_id, REVIEWED)
    assert caught.value.code == "outcome_unknown"
    assert len(gmail_server.sent()) == 1
