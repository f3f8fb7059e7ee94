"""A reviewed Gmail send never stays `sending` forever (docs/review.md, "A send that never
finished"): against the emulator and tools/gmail_server.py over HTTP, a `sending` claim
younger than the in-flight bound is 409; an older one is settled by searching the mailbox
for the message's Message-ID: found, it is recorded sent; not found, it is sent once; the
mailbox unreachable, it stays `sending` and the answer is 503 + Retry-After. Time moves by
writing an old `sendingAt` into the draft, not by sleeping."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time

import pytest
import requests

from shared import clock
from shared.consent import keys
from shared.errors import Conflict, Unavailable
from shared.jobs import service as jobs
from shared.jobs.bodies import LeadIn
from shared.outreach import gmail, pipeline
from shared.review import service as review
from shared.store import review as store
from shared.store import runs as repo
from tests.jobs_helpers import make_leads

RUN = "run-stuck"
LEAD = "lead-000000"


def provider(gmail_server):
    return gmail.GmailProvider(sender="ops@example.com", session=requests.Session(), base_url=gmail_server.base_url,
                               timeout=(2, 1))


@pytest.fixture
def drafted(db, gmail_server):
    """One lead drafted in the Gmail-shaped mailbox, as the pipeline drafts it for review."""
    lead_docs = jobs.lead_documents([LeadIn(**lead) for lead in make_leads(1)])
    repo.write_leads(db, RUN, lead_docs)
    db.document(f"lead_runs/{RUN}").set({"name": "stuck", "counts": {"drafted": 1, "sent": 0}})
    db.document(f"lead_runs/{RUN}/jobs/default").set({"status": "completed", "counts": {"drafted": 1, "sent": 0}})
    ctx = pipeline.RunContext(db=db, run_id=RUN, template={"subject": "Hi", "body": "Hello"}, draft=True,
                              provider=provider(gmail_server), max_attempts=3, sleep=lambda s: None)
    assert pipeline.process_lead(ctx, repo.get_lead(db, RUN, LEAD), 0, time.monotonic() + 60).status == "drafted"
    return store.draft_ref(db, RUN, LEAD)


def interrupted(gmail_server, db, after_accept):
    """A send whose drafts.send answer never came: Gmail sent it (after_accept) or not."""
    gmail_server.fail("drafts.send", drop=True, after_accept=after_accept)
    outcome = review.send(db, RUN, LEAD, None, provider(gmail_server))
    assert outcome.outcome == "failed" and "Sent folder" in outcome.reason
    assert draft(db)["reviewStatus"] == "sending" and len(gmail_server.sent()) == (1 if after_accept else 0)


def age(db, seconds=pipeline.CLAIM_IN_FLIGHT_SECONDS + 1):
    store.draft_ref(db, RUN, LEAD).update({"sendingAt": clock.now() - dt.timedelta(seconds=seconds)})


def draft(db):
    return store.draft_ref(db, RUN, LEAD).get().to_dict()


def counts(db):
    return db.document(f"lead_runs/{RUN}").get().get("counts")


def test_a_stale_claim_whose_message_left_is_recorded_sent_without_a_second_send(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=True)
    age(db)
    outcome = review.send(db, RUN, LEAD, None, provider(gmail_server))
    (sent,) = gmail_server.sent()
    assert outcome.outcome == "already_sent" and outcome.version == 1 and outcome.content_sha256
    assert gmail_server.calls["drafts.send"] == 1 and gmail_server.calls["messages.list"] == 1
    assert draft(db)["reviewStatus"] == "sent" and draft(db)["sentSha256"] == outcome.content_sha256
    receipt = repo.action_ref(db, RUN, LEAD, "email-send").get().to_dict()
    assert receipt["status"] == "sent" and receipt["adoptedFromMailbox"] is True
    assert receipt["providerIds"]["gmailMessageId"] == sent.id and receipt["contentSha256"] == outcome.content_sha256
    assert repo.get_lead(db, RUN, LEAD)["status"] == "sent"
    assert counts(db) == {"drafted": 0, "sent": 1}
    contact = db.collection("contacts").document(keys.email_id("lead0@example.com")).get().to_dict()
    assert contact["lastRunId"] == RUN and contact["lastLeadDocId"] == LEAD  # the consent record of a send
    again = review.send(db, RUN, LEAD, None, provider(gmail_server))
    assert again.outcome == "already_sent" and again.content_sha256 == outcome.content_sha256


def test_a_stale_claim_whose_message_never_left_is_sent_once(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=False)
    token = draft(db)["unsubscribeToken"]
    age(db)
    outcome = review.send(db, RUN, LEAD, None, provider(gmail_server))
    (sent,) = gmail_server.sent()
    assert outcome.outcome == "sent" and draft(db)["reviewStatus"] == "sent"
    # The re-taken claim sends the very message the first claim meant: same token, same Message-ID.
    assert token in sent.raw.decode() and sent.message_id == f"<{RUN}.{LEAD}.email-send@example.com>"
    assert repo.get_lead(db, RUN, LEAD)["status"] == "sent" and counts(db) == {"drafted": 0, "sent": 1}


def test_a_young_claim_is_409_and_shows_in_the_list(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=False)
    age(db, pipeline.CLAIM_IN_FLIGHT_SECONDS - 10)
    with pytest.raises(Conflict) as caught:
        review.send(db, RUN, LEAD, None, provider(gmail_server))
    assert "being sent right now" in caught.value.message and gmail_server.calls["messages.list"] == 0
    (view,) = review.list_drafts(db, RUN, 10, None).drafts
    assert view.status == "sending" and view.sending_at == clock.rfc3339(draft(db)["sendingAt"])


def test_a_mailbox_that_cannot_be_searched_leaves_the_claim_sending(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=True)
    age(db)
    gmail_server.fail("messages.list", status=503, reason="backendError")
    with pytest.raises(Unavailable) as caught:
        review.send(db, RUN, LEAD, None, provider(gmail_server))
    assert caught.value.retry_after_seconds == review.MAILBOX_RETRY_SECONDS
    assert draft(db)["reviewStatus"] == "sending" and len(gmail_server.sent()) == 1
    bulk = review.send_many(db, RUN, [LEAD], provider(gmail_server))  # the fault was used: this search answers
    assert [r.outcome for r in bulk.results] == ["already_sent"] and len(gmail_server.sent()) == 1


def test_two_sends_of_one_stale_claim_send_one_message(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=False)
    age(db)
    # Both searches answer before either re-takes the claim, so both find nothing.
    gmail_server.fail("messages.list", after_accept=True, delay=0.3, times=2)

    def send(_):
        try:
            return review.send(db, RUN, LEAD, None, provider(gmail_server)).outcome
        except Conflict:
            return "conflict"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(send, range(2)))
    assert outcomes[1] == "sent" and outcomes[0] in ("already_sent", "conflict"), outcomes
    assert gmail_server.calls["messages.list"] == 2  # both searched and found nothing
    assert len(gmail_server.sent()) == 1 and gmail_server.calls["drafts.send"] == 2  # the interrupted one and one more
    assert repo.get_lead(db, RUN, LEAD)["status"] == "sent" and counts(db) == {"drafted": 0, "sent": 1}


def test_discard_settles_a_stale_claim_first(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=False)
    with pytest.raises(Conflict):
        review.discard(db, RUN, LEAD, None, provider(gmail_server))  # young: a send may still be under way
    age(db)
    view = review.discard(db, RUN, LEAD, None, provider(gmail_server))
    assert view.status == "discarded" and repo.get_lead(db, RUN, LEAD)["status"] == "skipped"
    assert gmail_server.sent() == []


def test_discard_of_a_stale_claim_whose_message_left_records_it_sent(db, gmail_server, drafted):
    interrupted(gmail_server, db, after_accept=True)
    age(db)
    with pytest.raises(Conflict) as caught:
        review.discard(db, RUN, LEAD, None, provider(gmail_server))
    assert caught.value.details == [{"field": "status", "status": "sent"}]
    assert draft(db)["reviewStatus"] == "sent" and repo.get_lead(db, RUN, LEAD)["status"] == "sent"


def test_over_http_the_list_shows_sending_at_and_an_unsearchable_mailbox_is_503(db, gmail_server, drafted, function_client,
                                                                              monkeypatch):
    from shared.outreach import providers

    monkeypatch.setattr(providers, "_cached", lambda settings: provider(gmail_server))
    client = function_client("review")
    interrupted(gmail_server, db, after_accept=False)
    listed = client.get(f"/api/lead-runs/{RUN}/drafts").get_json()["drafts"]
    assert listed[0]["status"] == "sending" and listed[0]["sendingAt"] == clock.rfc3339(draft(db)["sendingAt"])
    assert client.post(f"/api/lead-runs/{RUN}/drafts/{LEAD}:send", json={}).status_code == 409
    age(db)
    gmail_server.fail("messages.list", status=503, reason="backendError")
    response = client.post(f"/api/lead-runs/{RUN}/drafts/{LEAD}:send", json={})
    assert response.status_code == 503 and response.headers["Retry-After"] == str(review.MAILBOX_RETRY_SECONDS)
    assert "mailbox could not be searched" in response.get_json()["error"]["message"]
    response = client.post(f"/api/lead-runs/{RUN}/drafts/{LEAD}:send", json={})
    assert response.status_code == 200 and response.get_json()["outcome"] == "sent" and len(gmail_server.sent()) == 1
