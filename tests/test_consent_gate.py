"""Every send and draft passes the consent gate: suppressed and recently contacted leads are
skipped, a suppression landing between the check and the commit stops the lead, and sent
mail carries RFC 8058's one-click unsubscribe headers."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import email as email_lib
import time

import pytest

from shared.consent import gate, keys, service as consent
from shared.consent.models import SuppressionCreate
from shared.jobs import bodies, service
from shared.jobs.bodies import LeadIn
from shared.outreach import gmail, pipeline
from shared.outreach.providers import MailCollectionProvider
from shared.store import runs as repo
from shared.store import suppressions as store
from tests.jobs_helpers import all_leads, docs, make_leads, make_template, start_request

FAR = time.monotonic() + 3600


class External:
    """An external provider (like Gmail) that records what it was asked to send."""

    name = "fake-external"
    external = True

    def __init__(self):
        self.sent = []

    def deliver(self, db, batch, email):
        self.sent.append(email)
        return {"externalId": f"x-{len(self.sent)}"}


def write_leads(db, run_id, leads):
    lead_docs = service.lead_documents([LeadIn(**lead) for lead in leads])
    repo.write_leads(db, run_id, lead_docs)
    return [repo.get_lead(db, run_id, lead_id) for lead_id, _ in lead_docs]


def context(db, run_id="run-c", provider=None, draft=False, window=None):
    template = {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}}"}
    return pipeline.RunContext(
        db=db, run_id=run_id, template=template, draft=draft, provider=provider or MailCollectionProvider(),
        max_attempts=3, sleep=lambda s: None, contact_window_days=window,
    )


def suppress(db, **target):
    consent.add(db, SuppressionCreate(**target), "ops@example.com")


def skip_receipt(db, run_id, lead_id):
    return repo.action_ref(db, run_id, lead_id, pipeline.SKIP_STEP).get().to_dict()


@pytest.mark.parametrize("draft", [False, True])
@pytest.mark.parametrize("target", [{"email": "LEAD0@example.com"}, {"domain": "example.com"}])
def test_a_suppressed_address_or_domain_is_skipped_never_sent_or_drafted(db, draft, target):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    suppress(db, **target)
    outcome = pipeline.process_lead(context(db, draft=draft), lead, 0, FAR)
    assert outcome.status == "skipped" and outcome.code == gate.SUPPRESSED
    assert docs(db, "mail") == [] and docs(db, "mail_drafts") == []
    receipt = skip_receipt(db, "run-c", lead["id"])
    assert receipt["type"] == "email.skip" and receipt["status"] == "skipped" and receipt["reason"] == "suppressed"
    stored = repo.get_lead(db, "run-c", lead["id"])
    assert stored["status"] == "skipped" and stored["skipReason"] == "suppressed"


def test_an_external_provider_is_never_called_for_a_suppressed_address(db):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    suppress(db, email="lead0@example.com")
    provider = External()
    assert pipeline.process_lead(context(db, provider=provider), lead, 0, FAR).status == "skipped"
    assert provider.sent == []


def land_a_suppression_after_the_check(monkeypatch, db, address=None, domain=None):
    """The race: the first check finds the address clear, then a suppression lands before the commit."""
    original, calls = gate.check, []

    def check_then_suppress(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(result.skip_reason)
        if len(calls) == 1:
            suppress(db, **({"email": address} if address else {"domain": domain}))
        return result

    monkeypatch.setattr(gate, "check", check_then_suppress)
    return calls


@pytest.mark.parametrize("target", [{"address": "lead0@example.com"}, {"domain": "example.com"}])
@pytest.mark.parametrize("external", [False, True])
@pytest.mark.parametrize("draft", [False, True])
def test_a_suppression_landing_between_check_and_commit_stops_the_lead(db, monkeypatch, external, draft, target):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    calls = land_a_suppression_after_the_check(monkeypatch, db, **target)
    provider = External() if external else MailCollectionProvider()
    outcome = pipeline.process_lead(context(db, provider=provider, draft=draft), lead, 0, FAR)
    assert calls[0] is None and gate.SUPPRESSED in calls  # clear at first, then checked again
    assert outcome.status == "skipped" and outcome.code == gate.SUPPRESSED
    assert docs(db, "mail") == [] and docs(db, "mail_drafts") == []
    if external:
        assert provider.sent == []
        assert not repo.action_ref(db, "run-c", lead["id"], pipeline.step_for(draft)).get().exists
    assert repo.get_lead(db, "run-c", lead["id"])["status"] == "skipped"


def test_leads_of_one_domain_at_once_never_contend_on_its_record(db):
    """The domain's guard writes nothing while the domain is not suppressed: twelve leads of
    one company committed at once all go out on their first check."""
    leads = write_leads(db, "run-c", make_leads(12))
    checks = []
    original = gate.check

    def counting(*args, **kwargs):
        checks.append(1)
        return original(*args, **kwargs)

    gate.check, restore = counting, gate.check
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            outcomes = list(pool.map(lambda lead: pipeline.process_lead(context(db), lead, 0, FAR), leads))
    finally:
        gate.check = restore
    assert [o.status for o in outcomes] == ["sent"] * 12
    assert len(checks) == 12 and len(docs(db, "mail")) == 12
    assert not repo_contacts_domain(db).exists


def test_a_removed_domain_suppression_leaves_no_record_to_guard(db):
    suppress(db, domain="example.com")
    assert repo_contacts_domain(db).exists
    (entry,) = store.list_page(db, 10, None)
    assert store.remove(db, entry["id"], dt.datetime.now(dt.timezone.utc))
    assert not repo_contacts_domain(db).exists
    (lead,) = write_leads(db, "run-c", make_leads(1))
    assert pipeline.process_lead(context(db), lead, 0, FAR).status == "sent"


def repo_contacts_domain(db):
    return store.contact_ref(db, keys.domain_id("example.com")).get()


def test_a_suppression_landing_after_the_commit_does_not_undo_the_send(db):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    assert pipeline.process_lead(context(db), lead, 0, FAR).status == "sent"
    suppress(db, email="lead0@example.com")
    assert len(docs(db, "mail")) == 1 and repo.get_lead(db, "run-c", lead["id"])["status"] == "sent"


def test_recently_contacted_addresses_are_skipped_only_within_the_window(db):
    (first,) = write_leads(db, "run-a", make_leads(1))
    assert pipeline.process_lead(context(db, "run-a"), first, 0, FAR).status == "sent"
    (again,) = write_leads(db, "run-b", [{"email": "Lead0@Example.com", "firstName": "L"}])
    outcome = pipeline.process_lead(context(db, "run-b", window=30), again, 0, FAR)
    assert outcome.status == "skipped" and outcome.code == gate.RECENTLY_CONTACTED
    assert skip_receipt(db, "run-b", again["id"])["reason"] == "recently_contacted"
    (third,) = write_leads(db, "run-c", make_leads(1))
    assert pipeline.process_lead(context(db, "run-c"), third, 0, FAR).status == "sent"  # no window, no skip


def test_a_draft_does_not_count_as_contact(db):
    (first,) = write_leads(db, "run-a", make_leads(1))
    assert pipeline.process_lead(context(db, "run-a", draft=True), first, 0, FAR).status == "drafted"
    (again,) = write_leads(db, "run-b", make_leads(1))
    assert pipeline.process_lead(context(db, "run-b", window=30), again, 0, FAR).status == "sent"


def test_sent_mail_carries_one_click_headers_and_a_token_for_its_address(db, configure):
    configure(PUBLIC_BASE_URL="https://ops.example.com/")
    (lead,) = write_leads(db, "run-c", make_leads(1))
    pipeline.process_lead(context(db), lead, 0, FAR)
    (mail,) = docs(db, "mail")
    headers = mail["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"]
    assert url.startswith("<https://ops.example.com/u/") and url.endswith(">")
    token = url[1:-1].rsplit("/", 1)[1]
    record = store.get_token(db, token)
    assert record["email"] == "lead0@example.com" and record["runId"] == "run-c" and record["leadDocId"] == lead["id"]


def test_drafts_carry_no_unsubscribe_headers(db):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    pipeline.process_lead(context(db, draft=True), lead, 0, FAR)
    (draft,) = docs(db, "mail_drafts")
    assert "headers" not in draft and docs(db, "unsubscribe_tokens") == []


def test_gmail_messages_carry_the_headers_in_their_mime(db):
    (lead,) = write_leads(db, "run-c", make_leads(1))
    provider = External()
    pipeline.process_lead(context(db, provider=provider), lead, 0, FAR)
    (sent,) = provider.sent
    message = email_lib.message_from_bytes(gmail.build_message(sent, "me@example.com").as_bytes())
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unfolded = "".join(message["List-Unsubscribe"].split())  # a long header may be folded (RFC 5322 2.2.3)
    assert unfolded.startswith("<http") and "/u/" in unfolded
    assert len(docs(db, "unsubscribe_tokens")) == 1


def test_a_run_counts_skipped_leads_and_still_completes(db):
    make_template(db)
    suppress(db, email="lead1@example.com")
    body = start_request(make_leads(3), mode="foreground", skipIfContactedWithinDays=7)
    reply = service.post(db, "run-fg", bodies.parse_request(body))
    job = reply.response.job
    assert job.status == "completed" and job.counts.skipped == 1 and job.counts.sent == 2
    assert job.config.skip_if_contacted_within_days == 7
    results = {r.lead_doc_id: (r.status, r.action_id) for r in reply.response.results}
    assert results["lead-000001"] == ("skipped", pipeline.SKIP_STEP)
    assert [lead["status"] for lead in all_leads(db, "run-fg")] == ["sent", "skipped", "sent"]


@pytest.mark.parametrize("days", [0, -1, 3651, "7", 1.5])
def test_bad_contact_window_is_400(days):
    from shared.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as raised:
        bodies.parse_request(start_request(make_leads(1), skipIfContactedWithinDays=days))
    assert raised.value.details[0]["field"] == "config.skipIfContactedWithinDays"
