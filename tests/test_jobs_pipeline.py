"""The per-lead outreach pipeline against the emulator: receipts, idempotency, retries,
permanent failures, draftFirst and the claim protocol of external providers."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from google.api_core import exceptions as gexc

from shared import clock
from shared.jobs import service
from shared.jobs.bodies import LeadIn
from shared.outreach import pipeline
from shared.outreach.errors import PermanentError, TransientError
from shared.outreach.providers import MailCollectionProvider
from shared.store import runs as repo
from tests.jobs_helpers import docs, make_leads, make_template

RUN = "run-pipe"


@pytest.fixture
def leads(db):
    make_template(db)
    lead_docs = service.lead_documents([LeadIn(**lead) for lead in make_leads(3)])
    repo.write_leads(db, RUN, lead_docs)
    return [repo.get_lead(db, RUN, lead_id) for lead_id, _ in lead_docs]


def context(db, provider=None, draft=False, max_attempts=3, sleeps=None):
    template = {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}"}
    return pipeline.RunContext(
        db=db, run_id=RUN, template=template, draft=draft, provider=provider or MailCollectionProvider(),
        max_attempts=max_attempts, sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


FAR = time.monotonic() + 3600


class Flaky(MailCollectionProvider):
    """The mail collection, failing its first `failures` calls with `error`."""

    def __init__(self, failures, error=None):
        self.failures, self.error, self.calls = failures, error or TransientError("503 from provider"), 0

    def deliver(self, db, batch, email):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().deliver(db, batch, email)


class External:
    """An external provider (like Gmail) that records what it was asked to send."""

    name = "fake-external"
    external = True

    def __init__(self, failures=0, seconds=0.0):
        self.sent, self.failures, self.seconds = [], failures, seconds

    def deliver(self, db, batch, email):
        time.sleep(self.seconds)  # the provider's round trip
        if len(self.sent) < self.failures:
            self.sent.append(None)
            raise TransientError("429 from provider")
        self.sent.append(email.message_id)
        return {"externalId": f"x-{len(self.sent)}"}


def test_a_send_writes_mail_receipt_and_lead_status(db, leads):
    outcome = pipeline.process_lead(context(db), leads[0], 0, FAR)
    assert outcome.status == "sent" and outcome.attempts == 1 and not outcome.earlier
    (mail,) = docs(db, "mail")
    assert mail["id"] == f"{RUN}-lead-000000-email-send"
    assert mail["to"] == "lead0@example.com"
    assert mail["message"] == {"subject": "Hi Lead0", "text": "Hello Lead0 at Acme", "html": "<p>Hello Lead0 at Acme</p>"}
    receipt = repo.action_ref(db, RUN, "lead-000000", "email-send").get().to_dict()
    assert receipt["type"] == "email.send" and receipt["status"] == "sent" and receipt["attempt"] == 1
    assert receipt["idempotencyKey"] == f"{RUN}:lead-000000:email-send"
    assert receipt["providerIds"] == {"mailId": mail["id"]} and receipt["error"] is None
    assert (receipt["runId"], receipt["leadDocId"], receipt["leadIndex"]) == (RUN, "lead-000000", 0)
    assert receipt["summary"] == "sent to lead0@example.com: Hi Lead0"
    lead = repo.get_lead(db, RUN, "lead-000000")
    assert lead["status"] == "sent" and lead["attempts"] == 1 and lead["lastError"] is None
    assert docs(db, "mail_drafts") == []


def test_running_a_lead_twice_never_sends_twice(db, leads):
    first = pipeline.process_lead(context(db), leads[1], 0, FAR)
    again = pipeline.process_lead(context(db), leads[1], 0, FAR)  # a stale 'pending' copy, as after a crash
    assert first.status == again.status == "sent"
    assert again.earlier and again.committed_at is not None
    assert len(docs(db, "mail")) == 1


def test_draft_first_creates_a_draft_and_never_a_mail(db, leads):
    outcome = pipeline.process_lead(context(db, draft=True), leads[0], 0, FAR)
    assert outcome.status == "drafted" and outcome.action_id == "email-draft"
    assert docs(db, "mail") == []
    (draft,) = docs(db, "mail_drafts")
    assert draft["message"]["subject"] == "Hi Lead0"
    receipt = repo.action_ref(db, RUN, "lead-000000", "email-draft").get().to_dict()
    assert receipt["type"] == "email.draft" and receipt["status"] == "drafted"
    assert receipt["providerIds"] == {"draftId": draft["id"]}


def test_transient_errors_retry_with_growing_backoff_then_succeed(db, leads):
    sleeps, provider = [], Flaky(failures=2)
    outcome = pipeline.process_lead(context(db, provider, sleeps=sleeps), leads[0], 0, FAR)
    assert outcome.status == "sent" and outcome.attempts == 3 and provider.calls == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9 / 2
    assert len(outcome.transient_errors) == 2
    assert len(docs(db, "mail")) == 1
    assert repo.get_lead(db, RUN, "lead-000000")["attempts"] == 3


def test_firestore_aborted_is_transient_too(db, leads):
    provider = Flaky(failures=1, error=gexc.Aborted("contention"))
    assert pipeline.process_lead(context(db, provider), leads[0], 0, FAR).status == "sent"


def test_transient_errors_past_max_attempts_fail_the_lead(db, leads):
    provider = Flaky(failures=10)
    outcome = pipeline.process_lead(context(db, provider, max_attempts=3), leads[0], 0, FAR)
    assert outcome.status == "failed" and outcome.attempts == 3 and provider.calls == 3
    assert "gave up after 3 attempts" in outcome.message
    lead = repo.get_lead(db, RUN, "lead-000000")
    assert lead["status"] == "failed" and lead["attempts"] == 3 and "503" in lead["lastError"]
    receipt = repo.action_ref(db, RUN, "lead-000000", "email-send").get().to_dict()
    assert receipt["status"] == "failed" and "gave up" in receipt["error"]
    assert docs(db, "mail") == []


def test_attempts_carry_over_from_an_earlier_invocation(db, leads):
    provider = Flaky(failures=10)
    outcome = pipeline.process_lead(context(db, provider, max_attempts=3), leads[0], 2, FAR)
    assert outcome.status == "failed" and outcome.attempts == 3 and provider.calls == 1


def test_a_permanent_provider_error_is_not_retried(db, leads):
    provider = Flaky(failures=1, error=PermanentError("mailbox does not exist", "provider_rejected"))
    outcome = pipeline.process_lead(context(db, provider), leads[0], 0, FAR)
    assert outcome.status == "failed" and provider.calls == 1 and outcome.code == "provider_rejected"


def test_a_missing_variable_fails_at_once_naming_it(db, leads):
    lead = {**leads[2], "firstName": ""}
    outcome = pipeline.process_lead(context(db), lead, 0, FAR)
    assert outcome.status == "failed" and outcome.code == "missing_variables" and "firstName" in outcome.message
    assert repo.get_lead(db, RUN, "lead-000002")["lastError"] == "missing template variables: firstName"


def test_no_time_left_for_the_backoff_means_retry_later(db, leads):
    provider = Flaky(failures=1)
    outcome = pipeline.process_lead(context(db, provider), leads[0], 0, time.monotonic() + 0.01)
    assert outcome.status == "retry_later" and outcome.attempts == 1
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "pending"


def test_external_provider_claims_then_records(db, leads):
    provider = External()
    outcome = pipeline.process_lead(context(db, provider), leads[0], 0, FAR)
    assert outcome.status == "sent" and provider.sent == [f"{RUN}-lead-000000-email-send"]
    receipt = repo.action_ref(db, RUN, "lead-000000", "email-send").get().to_dict()
    assert receipt["status"] == "sent" and receipt["providerIds"] == {"externalId": "x-1"}
    again = pipeline.process_lead(context(db, provider), leads[0], 0, FAR)
    assert again.status == "sent" and again.earlier and len(provider.sent) == 1


def test_external_provider_transient_error_releases_the_claim_and_retries(db, leads):
    provider = External(failures=1)
    outcome = pipeline.process_lead(context(db, provider), leads[0], 0, FAR)
    assert outcome.status == "sent" and outcome.attempts == 2 and len(provider.sent) == 2


def test_two_attempts_at_one_external_send_at_once_hand_it_to_the_provider_once(db, leads):
    """After a lease takeover two workers may reach the same lead together: the receipt's
    `sending` claim is a compare-and-set, so exactly one of them calls the provider; the
    others find the claim while the provider is still answering, and wait for it."""
    provider = External(seconds=0.3)
    barrier = threading.Barrier(4)
    outcomes = []

    def attempt():
        barrier.wait()
        outcomes.append(pipeline.process_lead(context(db, provider), leads[0], 0, FAR))

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert provider.sent == [f"{RUN}-lead-000000-email-send"]
    # The others waited for the claim's answer instead of failing a lead that was sent.
    assert [outcome.status for outcome in outcomes] == ["sent"] * 4
    assert sum(not outcome.earlier for outcome in outcomes) == 1
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "sent"
    assert repo.action_ref(db, RUN, "lead-000000", "email-send").get().to_dict()["status"] == "sent"


def claimed(db, age_seconds):
    """A `sending` claim left by another attempt `age_seconds` ago (None: no time on it)."""
    receipt_ref = repo.action_ref(db, RUN, "lead-000000", "email-send")
    claim = {"status": "sending", "attempt": 1}
    if age_seconds is not None:
        claim["at"] = clock.now() - dt.timedelta(seconds=age_seconds)
    receipt_ref.set(claim)
    return receipt_ref


@pytest.mark.parametrize("age", [None, pipeline.CLAIM_IN_FLIGHT_SECONDS + 1])
def test_an_interrupted_external_send_is_failed_not_repeated(db, leads, age):
    receipt_ref = claimed(db, age)  # a worker died between the claim and the answer
    provider = External()
    outcome = pipeline.process_lead(context(db, provider), leads[0], 0, FAR)
    assert outcome.status == "failed" and outcome.code == "outcome_unknown" and provider.sent == []
    assert receipt_ref.get().to_dict()["status"] == "failed"
    lead = repo.get_lead(db, RUN, "lead-000000")
    assert lead["status"] == "failed" and "may have been sent" in lead["lastError"]


def test_a_fresh_claim_is_waited_for_and_its_result_adopted(db, leads):
    receipt_ref = claimed(db, 5)
    provider, polls = External(), []

    def other_attempt_answers(seconds):
        polls.append(seconds)
        if len(polls) == 3:  # the claim's owner records its result while this attempt waits
            receipt_ref.set({"status": "sent", "attempt": 1, "providerIds": {"externalId": "x-other"}})
            repo.lead_ref(db, RUN, "lead-000000").update({"status": "sent", "attempts": 1})

    ctx = context(db, provider)
    ctx.sleep = other_attempt_answers
    outcome = pipeline.process_lead(ctx, leads[0], 0, FAR)
    assert outcome.status == "sent" and outcome.earlier and outcome.provider_ids == {"externalId": "x-other"}
    assert provider.sent == [] and polls == [pipeline.IN_FLIGHT_POLL_SECONDS] * 3


def test_a_fresh_claim_past_the_deadline_leaves_the_lead_pending_without_using_an_attempt(db, leads):
    receipt_ref = claimed(db, 5)
    provider = External()
    outcome = pipeline.process_lead(context(db, provider), leads[0], 1, time.monotonic())
    assert outcome.status == "retry_later" and outcome.code == pipeline.IN_FLIGHT and outcome.attempts == 1
    assert provider.sent == [] and receipt_ref.get().to_dict()["status"] == "sending"
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "pending"


def test_firestore_trouble_leaves_the_lead_pending_then_fails_it_after_patience(db, leads):
    provider = Flaky(failures=100, error=gexc.ServiceUnavailable("emulator down"))
    with pytest.raises(TransientError) as caught:
        pipeline.process_lead(context(db, provider, max_attempts=2), leads[0], 0, FAR)
    assert caught.value.attempts == 2 and provider.calls == 2
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "pending"
    # Later invocations try once each; at maxAttempts × FIRESTORE_PATIENCE the lead fails.
    with pytest.raises(TransientError):
        pipeline.process_lead(context(db, provider, max_attempts=2), leads[0], 2, FAR)
    limit = 2 * pipeline.FIRESTORE_PATIENCE
    outcome = pipeline.process_lead(context(db, provider, max_attempts=2), leads[0], limit - 1, FAR)
    assert outcome.status == "failed" and outcome.attempts == limit and "gave up" in outcome.message
