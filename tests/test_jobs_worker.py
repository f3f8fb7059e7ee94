"""The worker's lease, batch loop, checkpoint and hand-off, in-process against the emulator.

Hand-offs are captured instead of sent over HTTP, so each test drives the chain one
invocation at a time (tests/e2e/test_background_runs.py runs the real self-invoking chain).
"""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import Conflict, PermissionDenied, Unauthenticated
from shared.jobs import bodies, checkpoint, lease, loop, service, worker
from shared.jobs.chain_models import WorkerResult
from shared.outreach.errors import TransientError
from shared.outreach.providers import MailCollectionProvider
from shared.settings import get_settings
from shared.store import runs as repo
from tests.jobs_helpers import (
    Captured,
    all_leads,
    docs,
    job,
    make_leads,
    make_template,
    start_background,
    start_request,
)

RUN = "run-w"


def follow(db, captured: Captured, provider=None, limit=100) -> list[WorkerResult]:
    """Runs every hand-off the chain makes until it stops."""
    results = []
    while captured.calls and len(results) < limit:
        run_id, token, lease = captured.calls.pop(0)
        results.append(worker.handle(db, run_id, token, lease, dispatcher=captured, provider=provider))
    return results


class Hook(MailCollectionProvider):
    """The mail collection, calling `action` while delivering lead `at` (as another request would)."""

    def __init__(self, at: int, action):
        self.at, self.action, self.done = at, action, False

    def deliver(self, db, batch, email):
        if not self.done and email.lead_id == repo.lead_doc_id(self.at):
            self.done = True
            self.action()
        return super().deliver(db, batch, email)


def control(db, action, dispatcher=None):
    return service.post(db, RUN, bodies.parse_request({"action": action}), dispatcher=dispatcher or Captured())


@pytest.fixture(autouse=True)
def template(db, configure):
    # One lead at a time, so each test can name the exact lead an action stops at;
    # tests/test_jobs_concurrency.py holds the same guarantees with several leads in flight.
    configure(WORKER_LEAD_CONCURRENCY="1")
    make_template(db)


def test_the_chain_completes_with_one_mail_per_lead_and_one_job_write_per_batch(db):
    captured = start_background(db, RUN, make_leads(25), batchSize=10)
    results = follow(db, captured)
    assert [r.processed for r in results] == [10, 10, 5]
    assert results[-1].status == "completed" and results[-1].dispatched is None
    final = job(db, RUN)
    # The start, the first batch saying "running", then one checkpoint per batch.
    assert final["writes"] == 2 + len(results)
    assert final["counts"] == {"pending": 0, "sent": 25, "drafted": 0, "failed": 0, "skipped": 0}
    assert final["workerTokenHash"] is None and final["lease"] is None and final["finishedAt"] is not None
    assert len(docs(db, "mail")) == 25
    run = repo.get_run(db, RUN)
    assert run["status"] == "completed" and run["counts"] == final["counts"]
    assert not [d for d in final["diagnostics"] if d["code"] == "counts_reconciled"]


def test_pause_stops_after_the_lead_in_flight_and_resume_finishes(db):
    captured = start_background(db, RUN, make_leads(10), batchSize=10)
    hook = Hook(at=3, action=lambda: control(db, "pause"))
    (result,) = follow(db, captured, provider=hook)
    assert result.status == "paused" and result.processed == 4 and result.stop_reason == "paused"
    paused = job(db, RUN)
    assert paused["nextIndex"] == 4 and paused["counts"]["sent"] == 4 and paused["lease"] is None
    assert len(docs(db, "mail")) == 4 and captured.calls == []

    resumed = Captured()
    control(db, "resume", resumed)
    follow(db, resumed)
    final = job(db, RUN)
    assert final["status"] == "completed" and final["counts"]["sent"] == 10
    assert len(docs(db, "mail")) == 10


def test_cancel_stops_and_the_old_token_is_refused(db):
    captured = start_background(db, RUN, make_leads(10), batchSize=10)
    token = captured.calls[0][1]
    hook = Hook(at=2, action=lambda: control(db, "cancel"))
    (result,) = follow(db, captured, provider=hook)
    assert result.status == "cancelled" and result.processed == 3
    final = job(db, RUN)
    assert final["counts"] == {"pending": 7, "sent": 3, "drafted": 0, "failed": 0, "skipped": 0}
    assert final["workerTokenHash"] is None
    with pytest.raises(PermissionDenied):
        worker.handle(db, RUN, token, None, dispatcher=Captured())


def test_a_worker_killed_mid_batch_is_finished_by_resume_without_duplicates(db, configure):
    configure(WORKER_LEASE_SECONDS="1")
    captured = start_background(db, RUN, make_leads(12), batchSize=5)
    run_id, old_token, handoff = captured.calls.pop()
    # What a worker does before dying: claim the hand-off, process some leads, never checkpoint.
    owner, _ = lease.acquire(db, RUN, old_token, handoff, get_settings())
    context_job = job(db, RUN)
    loop.run_batch(db, RUN, context_job, owner, time.monotonic() + 60, 3, MailCollectionProvider())
    assert len(docs(db, "mail")) == 3 and job(db, RUN)["nextIndex"] == 0

    deadline = time.monotonic() + 10
    while not service.status(db, RUN).job.stalled:
        assert time.monotonic() < deadline, "the job never looked stalled"
        time.sleep(0.2)
    resumed = Captured()
    control(db, "resume", resumed)
    follow(db, resumed)
    final = job(db, RUN)
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "sent": 12, "drafted": 0, "failed": 0, "skipped": 0}
    assert not [d for d in final["diagnostics"] if d["code"] == "counts_reconciled"]
    mails = docs(db, "mail")
    assert len(mails) == 12 and len({m["leadDocId"] for m in mails}) == 12
    with pytest.raises(PermissionDenied):  # resume rotated the token
        worker.handle(db, RUN, old_token, None, dispatcher=Captured())


def test_two_workers_with_the_same_hand_off_make_progress_once(db):
    captured = start_background(db, RUN, make_leads(30), batchSize=10)
    run_id, token, lease = captured.calls.pop()
    outcomes, barrier = [], threading.Barrier(2)

    def call():
        barrier.wait()
        try:
            outcomes.append(worker.handle(db, run_id, token, lease, dispatcher=Captured()))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "WorkerResult"]
    assert len(docs(db, "mail")) == 10 and job(db, RUN)["nextIndex"] == 10


def test_a_direct_call_cannot_take_a_held_lease_and_writes_nothing(db):
    captured = start_background(db, RUN, make_leads(5))
    _, token, _ = captured.calls.pop()
    before = job(db, RUN)
    with pytest.raises(Conflict, match="holds this job's lease"):
        worker.handle(db, RUN, token, None, dispatcher=Captured())
    assert job(db, RUN) == before and docs(db, "mail") == []


def test_a_direct_call_takes_an_expired_lease(db, configure):
    configure(WORKER_LEASE_SECONDS="1")
    captured = start_background(db, RUN, make_leads(5))
    _, token, _ = captured.calls.pop()
    time.sleep(1.1)
    chain = Captured()
    result = worker.handle(db, RUN, token, None, dispatcher=chain)
    assert result.status == "completed" and result.processed == 5


def test_missing_or_wrong_tokens_write_nothing(db):
    captured = start_background(db, RUN, make_leads(3))
    _, token, lease = captured.calls.pop()
    start_background(db, "run-other", make_leads(3))
    before = job(db, RUN)
    with pytest.raises(Unauthenticated):
        worker.handle(db, RUN, None, lease, dispatcher=Captured())
    with pytest.raises(PermissionDenied):
        worker.handle(db, RUN, token[:-1] + ("A" if token[-1] != "A" else "B"), lease, dispatcher=Captured())
    with pytest.raises(PermissionDenied):  # a valid token, of another run
        worker.handle(db, "run-other", token, lease, dispatcher=Captured())
    assert job(db, RUN) == before and docs(db, "mail") == []


def test_a_template_deleted_mid_run_fails_the_job(db):
    captured = start_background(db, RUN, make_leads(3))
    db.collection("templates").document("tpl-1").delete()
    (result,) = follow(db, captured)
    assert result.status == "failed"
    final = job(db, RUN)
    assert final["diagnostics"][-1]["code"] == "template_missing" and final["workerTokenHash"] is None


def test_retry_requeues_only_the_failed_leads(db):
    leads = make_leads(6)
    leads[1]["firstName"] = leads[4]["firstName"] = ""
    captured = start_background(db, RUN, leads)
    follow(db, captured)
    first = job(db, RUN)
    assert first["status"] == "completed_with_errors"
    assert first["counts"] == {"pending": 0, "sent": 4, "drafted": 0, "failed": 2, "skipped": 0}
    sent_at = {m["id"]: m["createdAt"] for m in docs(db, "mail")}

    # The operator fixes the template, then retries.
    db.collection("templates").document("tpl-1").update({"subject": "Hello", "body": "Hello from {{company}}"})
    retried = Captured()
    control(db, "retry", retried)
    assert job(db, RUN)["nextIndex"] == 1 and job(db, RUN)["counts"]["failed"] == 0
    follow(db, retried)
    final = job(db, RUN)
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "sent": 6, "drafted": 0, "failed": 0, "skipped": 0}
    mails = docs(db, "mail")
    assert len(mails) == 6
    assert {m["id"]: m["createdAt"] for m in mails if m["id"] in sent_at} == sent_at  # the others untouched
    assert [lead["status"] for lead in all_leads(db, RUN)] == ["sent"] * 6


def test_a_lead_that_keeps_failing_transiently_fails_alone(db):
    class Down(MailCollectionProvider):
        def deliver(self, db, batch, email):
            if email.lead_id == "lead-000001":
                raise TransientError("provider answered 503")
            return super().deliver(db, batch, email)

    captured = start_background(db, RUN, make_leads(3), maxAttempts=2)
    follow(db, captured, provider=Down())
    final = job(db, RUN)
    assert final["status"] == "completed_with_errors" and final["counts"]["failed"] == 1
    assert [d["code"] for d in final["diagnostics"]] == ["transient", "transient", "transient"]
    assert "gave up after 2 attempts" in final["diagnostics"][-1]["message"]
    assert final["attemptsByLead"] == {}
    assert repo.get_lead(db, RUN, "lead-000001")["attempts"] == 2


def test_a_broken_chain_is_reported_stalled_and_resume_restarts_it(db, configure):
    configure(WORKER_LEASE_SECONDS="1")
    service.post(db, RUN, bodies.parse_request(start_request(make_leads(4))), dispatcher=lambda *call: False)
    assert job(db, RUN)["diagnostics"][-1]["code"] == "dispatch_failed"
    assert not service.status(db, RUN).job.stalled
    time.sleep(2.1)  # the lease (1 s) plus the grace (1 s)
    assert service.status(db, RUN).job.stalled
    resumed = Captured()
    control(db, "resume", resumed)
    follow(db, resumed)
    assert job(db, RUN)["status"] == "completed" and len(docs(db, "mail")) == 4


def test_the_largest_run_is_created_whole(db):
    captured = start_background(db, RUN, [{"email": f"l{i}@example.com"} for i in range(bodies.MAX_LEADS)])
    assert len(captured.calls) == 1
    run = repo.get_run(db, RUN)
    assert run["totalLeads"] == bodies.MAX_LEADS and run["counts"]["pending"] == bodies.MAX_LEADS
    assert repo.count_leads(db, RUN)["pending"] == bodies.MAX_LEADS
    assert repo.get_lead(db, RUN, "lead-009999")["index"] == 9999


def test_firestore_trouble_stops_the_batch_and_keeps_the_lead_pending(db):
    from google.api_core import exceptions as gexc

    class Unavailable(MailCollectionProvider):
        def deliver(self, db, batch, email):
            if email.lead_id == "lead-000002":
                raise gexc.ServiceUnavailable("connection refused")
            return super().deliver(db, batch, email)

    captured = start_background(db, RUN, make_leads(5), maxAttempts=2)
    run_id, token, lease = captured.calls.pop()
    chain = Captured()
    result = worker.handle(db, run_id, token, lease, dispatcher=chain, provider=Unavailable())
    assert result.processed == 2 and result.stop_reason == "firestore_unavailable" and result.next_index == 2
    stored = job(db, RUN)
    assert stored["status"] == "running" and stored["attemptsByLead"] == {"lead-000002": 2}
    assert repo.get_lead(db, RUN, "lead-000002")["status"] == "pending"
    follow(db, chain)  # the database is back: the chain carries on
    final = job(db, RUN)
    assert final["status"] == "completed" and final["counts"]["sent"] == 5 and final["attemptsByLead"] == {}


def test_the_per_lead_check_reads_status_and_lease_owner(db):
    assert repo.read_job_control(db, "no-such-run") is None
    captured = start_background(db, RUN, make_leads(2))
    lease = captured.calls[0][2]
    assert repo.read_job_control(db, RUN) == {"status": "queued", "lease": {"owner": lease}}
    control(db, "cancel")
    assert repo.read_job_control(db, RUN)["status"] == "cancelled"


def test_diagnostics_keep_the_newest_fifty(db):
    start_background(db, RUN, make_leads(2))
    old = [checkpoint.diagnostic("transient", f"old {i}") for i in range(checkpoint.MAX_DIAGNOSTICS)]
    repo.job_ref(db, RUN).update({"diagnostics": old})
    control(db, "pause")
    control(db, "resume")  # adds one diagnostic
    kept = job(db, RUN)["diagnostics"]
    assert len(kept) == checkpoint.MAX_DIAGNOSTICS
    assert kept[0]["message"] == "old 1" and kept[-1]["code"] == "resume"


def test_the_per_lead_check_takes_the_unary_masked_read(db, monkeypatch):
    """shared/store/client.read_masked_strings reaches into the client's generated API for a
    unary GetDocument (measured, docs/jobs.md: the public streaming get() cost the chain
    ~16 % of its leads/s). If a new google-cloud-firestore moves it, this fails loudly
    instead of silently going slow."""
    from google.cloud.firestore_v1.document import DocumentReference

    captured = start_background(db, RUN, make_leads(1))
    assert hasattr(db._firestore_api, "get_document")

    def streaming(*args, **kwargs):
        raise AssertionError("the per-lead check fell back to the streaming get()")

    monkeypatch.setattr(DocumentReference, "get", streaming)
    assert repo.read_job_control(db, RUN) == {"status": "queued", "lease": {"owner": captured.calls[0][2]}}
    assert repo.read_job_control(db, "no-such-run") is None


def test_without_the_generated_api_the_check_is_the_public_masked_read(db, monkeypatch):
    """The fallback when the generated API has moved: the same answer through the public
    DocumentReference.get, masked and bounded by store/client.read_args."""
    from google.cloud.firestore_v1.document import DocumentReference

    from shared.store.client import read_args

    captured = start_background(db, RUN, make_leads(1))
    calls = []
    public_get = DocumentReference.get

    def recorded(self, *args, **kwargs):
        calls.append((self.path, args, kwargs))
        return public_get(self, *args, **kwargs)

    class WithoutGeneratedApi:  # the client as a release that moved `_firestore_api` would have it
        def __getattr__(self, name):
            if name == "_firestore_api":
                raise AttributeError(name)
            return getattr(db, name)

    monkeypatch.setattr(DocumentReference, "get", recorded)
    moved = WithoutGeneratedApi()
    assert repo.read_job_control(moved, RUN) == {"status": "queued", "lease": {"owner": captured.calls[0][2]}}
    assert calls == [(repo.job_ref(db, RUN).path, (), {"field_paths": ["status", "lease.owner"], **read_args()})]
    assert repo.read_job_control(moved, "no-such-run") is None
