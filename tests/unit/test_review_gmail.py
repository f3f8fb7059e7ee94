"""Review's Gmail send: drafts.update with the reviewed content, then drafts.send of that
draft id (Gmail API reference, users.drafts/update and users.drafts/send)."""

from __future__ import annotations

import base64
import email as email_lib
import json

import pytest
import requests

from shared.outreach import gmail
from shared.outreach.errors import PermanentError
from shared.outreach.providers import OutgoingEmail

REVIEWED = OutgoingEmail(
    to="ada@example.com", subject="Edited", text="Reviewed", html="<p>Reviewed</p>", run_id="run-1",
    lead_id="lead-000001", step="email-send", draft=False,
    headers=(("List-Unsubscribe", "<https://ops.example.com/u/tok>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
)


def answer(status, body):
    made = requests.Response()
    made.status_code, made._content = status, json.dumps(body).encode()
    return made


class Session:
    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def _record(self, method, url, json=None, timeout=None):
        self.calls.append((method, url, json))
        return self.answers.pop(0)

    def put(self, url, json=None, timeout=None):
        return self._record("PUT", url, json, timeout)

    def post(self, url, json=None, timeout=None):
        return self._record("POST", url, json, timeout)


def test_send_draft_replaces_the_content_then_sends_that_draft():
    session = Session(answer(200, {"id": "r-1", "message": {"id": "m-1"}}), answer(200, {"id": "m-2", "threadId": "t-2", "labelIds": ["SENT"]}))
    ids = gmail.GmailProvider(sender="me@example.com", session=session).send_draft("r-1", REVIEWED)
    assert ids == {"gmailMessageId": "m-2", "gmailDraftId": "r-1", "gmailThreadId": "t-2"}
    (update, send) = session.calls
    assert update[0] == "PUT" and update[1] == f"{gmail.GMAIL_API}/drafts/r-1" and update[2]["id"] == "r-1"
    assert send == ("POST", f"{gmail.GMAIL_API}/drafts/send", {"id": "r-1"})
    message = email_lib.message_from_bytes(base64.urlsafe_b64decode(update[2]["message"]["raw"]))
    assert message["Subject"] == "Edited" and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_send_draft_without_a_draft_id_or_refused_is_permanent():
    with pytest.raises(PermanentError):
        gmail.GmailProvider(session=Session()).send_draft("", REVIEWED)
    refused = Session(answer(200, {}), answer(400, {"error": {"code": 400, "message": "Invalid draft"}}))
    with pytest.raises(PermanentError):
        gmail.GmailProvider(session=refused).send_draft("r-1", REVIEWED)
