"""Review's send with an external provider (Gmail-shaped): the draft is claimed `sending`
by a compare-and-set commit, so concurrent sends hand it to the provider once."""

from __future__ import annotations

import concurrent.futures
import threading
import time

from shared.errors import Conflict
from shared.jobs.bodies import LeadIn
from shared.jobs import service as jobs
from shared.outreach import pipeline
from shared.review import service as review
from shared.store import runs as repo
from tests.jobs_helpers import make_leads


class Mailbox:
    """Drafts and sends like Gmail: drafts.create gives a draft id; send_draft sends it."""

    name = "fake-gmail"
    external = True

    def __init__(self):
        self.sent, self.lock = [], threading.Lock()

    def deliver(self, db, batch, email):
        return {"gmailDraftId": f"r-{email.lead_id}", "gmailMessageId": "m-0"}

    def send_draft(self, draft_id, email):
        time.sleep(0.2)
        with self.lock:
            self.sent.append((draft_id, email.subject))
        return {"gmailMessageId": f"m-{len(self.sent)}", "gmailDraftId": draft_id}


def test_concurrent_review_sends_reach_the_provider_once_with_the_edit(db):
    mailbox = Mailbox()
    lead_docs = jobs.lead_documents([LeadIn(**lead) for lead in make_leads(1)])
    repo.write_leads(db, "run-x", lead_docs)
    db.document("lead_runs/run-x").set({"name": "x", "counts": {"drafted": 0}})
    db.document("lead_runs/run-x/jobs/default").set({"status": "completed", "counts": {"drafted": 0}})
    ctx = pipeline.RunContext(db=db, run_id="run-x", template={"subject": "Hi", "body": "Hello"}, draft=True,
                              provider=mailbox, max_attempts=3, sleep=lambda s: None)
    lead = repo.get_lead(db, "run-x", "lead-000000")
    assert pipeline.process_lead(ctx, lead, 0, time.monotonic() + 60).status == "drafted"
    review.edit(db, "run-x", "lead-000000", "Edited", None, 1)

    def send(_):
        try:
            return review.send(db, "run-x", "lead-000000", None, mailbox).outcome
        except Conflict:
            return "conflict"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(send, range(4)))
    assert outcomes.count("sent") == 1, outcomes
    assert mailbox.sent == [("r-lead-000000", "Edited")]
    receipt = repo.action_ref(db, "run-x", "lead-000000", "email-send").get().to_dict()
    assert receipt["status"] == "sent" and receipt["draftVersion"] == 2 and receipt["providerIds"]["gmailDraftId"] == "r-lead-000000"
    assert review.send(db, "run-x", "lead-000000", None, mailbox).outcome == "already_sent"


class Refusing(Mailbox):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def send_draft(self, draft_id, email):
        raise self.error


def drafted_with(db, mailbox):
    lead_docs = jobs.lead_documents([LeadIn(**lead) for lead in make_leads(1)])
    repo.write_leads(db, "run-y", lead_docs)
    db.document("lead_runs/run-y").set({"name": "y", "counts": {"drafted": 0}})
    db.document("lead_runs/run-y/jobs/default").set({"status": "completed", "counts": {"drafted": 0}})
    ctx = pipeline.RunContext(db=db, run_id="run-y", template={"subject": "Hi", "body": "Hello"}, draft=True,
                              provider=mailbox, max_attempts=3, sleep=lambda s: None)
    pipeline.process_lead(ctx, repo.get_lead(db, "run-y", "lead-000000"), 0, time.monotonic() + 60)


def test_a_refused_send_leaves_the_draft_pending_and_an_unanswered_one_blocks_a_second_send(db):
    from shared.outreach.errors import PermanentError
    from shared.store import review as store

    drafted_with(db, Refusing(PermanentError("refused (400)", "provider_rejected")))
    refused = review.send(db, "run-y", "lead-000000", None, Refusing(PermanentError("refused (400)", "provider_rejected")))
    assert refused.outcome == "failed"
    assert store.draft_ref(db, "run-y", "lead-000000").get().get("reviewStatus") == "pending"
    unknown = review.send(db, "run-y", "lead-000000", None, Refusing(PermanentError("no answer", "outcome_unknown")))
    assert unknown.outcome == "failed"
    assert store.draft_ref(db, "run-y", "lead-000000").get().get("reviewStatus") == "sending"
    try:
        review.send(db, "run-y", "lead-000000", None, Mailbox())
        raise AssertionError("a draft whose send may have happened was sent again")
    except Conflict:
        pass
