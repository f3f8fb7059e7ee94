"""A lead's Gmail send through the whole pipeline (claim, send, receipt) against the emulator
and tools/gmail_server.py over real HTTP: a send whose answer was lost reaches the customer
exactly once (docs/reliability.md, "Ambiguous sends")."""

from __future__ import annotations

import time

import pytest
import requests

from shared.jobs import service
from shared.jobs.bodies import LeadIn
from shared.outreach import gmail, pipeline
from shared.retry import Policy
from shared.store import runs as repo
from tests.jobs_helpers import make_leads, make_template

RUN = "run-gmail"
FAR = time.monotonic() + 3600
QUICK_CONFIRM = Policy("the mailbox search, quickly", retry_on=gmail.CONFIRM_SEND.retry_on, initial=0.01, maximum=0.02)


@pytest.fixture
def lead(db):
    make_template(db)
    lead_docs = service.lead_documents([LeadIn(**make_leads(1)[0])])
    repo.write_leads(db, RUN, lead_docs)
    return repo.get_lead(db, RUN, lead_docs[0][0])


def send(db, gmail_server, lead):
    provider = gmail.GmailProvider(
        sender="ops@example.com", session=requests.Session(), base_url=gmail_server.base_url, timeout=(2, 0.5),
        confirm=QUICK_CONFIRM,
    )
    ctx = pipeline.RunContext(
        db=db, run_id=RUN, template={"subject": "Hi {{firstName}}", "body": "Hello {{firstName}}"},
        draft=False, provider=provider, max_attempts=3, sleep=lambda seconds: None,
    )
    return pipeline.process_lead(ctx, lead, 0, FAR)


def receipt(db, lead):
    return repo.action_ref(db, RUN, lead["id"], "email-send").get().to_dict()


@pytest.mark.parametrize("fault", ["accepted_then_dropped", "accepted_then_500"])
def test_a_send_whose_answer_was_lost_is_recorded_once_not_sent_again(db, gmail_server, lead, fault):
    getattr(gmail_server, fault)("messages.send")
    outcome = send(db, gmail_server, lead)
    (sent,) = gmail_server.sent()
    assert outcome.status == "sent" and outcome.attempts == 1
    assert receipt(db, lead)["providerIds"] == {"gmailMessageId": sent.id, "gmailThreadId": sent.thread_id}
    assert repo.get_lead(db, RUN, lead["id"])["status"] == "sent"
    assert gmail_server.calls["messages.send"] == 1


def test_a_send_lost_before_gmail_accepted_it_is_sent_by_the_next_attempt(db, gmail_server, lead):
    gmail_server.fail("messages.send", drop=True)
    outcome = send(db, gmail_server, lead)
    assert outcome.status == "sent" and outcome.attempts == 2
    assert len(gmail_server.sent()) == 1 and gmail_server.calls["messages.send"] == 2


def test_a_send_that_cannot_be_confirmed_fails_the_lead_rather_than_sending_twice(db, gmail_server, lead):
    gmail_server.accepted_then_late("messages.send", seconds=1.5)
    gmail_server.fail("messages.list", status=503, reason="backendError", times=gmail.CONFIRM_ATTEMPTS)
    outcome = send(db, gmail_server, lead)
    assert outcome.status == "failed" and outcome.code == "outcome_unknown"
    assert len(gmail_server.sent()) == 1 and gmail_server.calls["messages.send"] == 1
    assert "Sent folder" in repo.get_lead(db, RUN, lead["id"])["lastError"]
