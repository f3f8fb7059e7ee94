"""Issue 14's atomic operations: two identical starts racing, a retry cut off between its
writes, and hand-off claims that expire (shared/store/job_writes.py)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from shared import clock
from shared.jobs import bodies, service, sweeper, worker
from shared.settings import get_settings
from shared.store import job_writes
from shared.store import runs as repo
from tests.jobs_helpers import Captured, all_leads, docs, job, make_leads, make_template, start_background, start_request

RUN = "run-x"


@pytest.fixture(autouse=True)
def template(db, configure):
    configure(WORKER_LEAD_CONCURRENCY="1")
    make_template(db)


def follow(db, captured: Captured) -> None:
    while captured.calls:
        run_id, token, handoff = captured.calls.pop(0)
        worker.handle(db, run_id, token, handoff, dispatcher=captured)


def test_an_identical_start_racing_never_resets_a_lead_the_first_start_processed(db, monkeypatch):
    """A double-click: start B adopts start A's claim while A is still writing the run (run
    absent: "continue"); before B writes the leads, A finishes and its worker sends every lead."""
    body = start_request(make_leads(6))
    real_create = repo.create_missing_leads
    a_wrote_leads, b_claimed, a_answered = threading.Event(), threading.Event(), threading.Event()
    first = Captured()

    def create(db_, run_id, lead_docs):
        if threading.current_thread().name == "start-a":
            created = real_create(db_, run_id, lead_docs)
            a_wrote_leads.set()
            assert b_claimed.wait(10)  # A creates the run only once B has adopted the claim
            return created
        assert a_answered.wait(10)  # meanwhile A created the run and invoked its worker,
        follow(db, first)  # which processes every lead
        return real_create(db_, run_id, lead_docs)

    monkeypatch.setattr(repo, "create_missing_leads", create)
    real_claim = job_writes.claim_start

    def claim(db_, run_id, decide):
        outcome = real_claim(db_, run_id, decide)
        if threading.current_thread().name == "start-b":
            assert outcome[0] == "continue"
            b_claimed.set()
        return outcome

    monkeypatch.setattr(job_writes, "claim_start", claim)
    def start_a():
        service.post(db, RUN, bodies.parse_request(body), dispatcher=first)
        a_answered.set()

    a = threading.Thread(name="start-a", target=start_a)
    a.start()
    assert a_wrote_leads.wait(10)
    second = Captured()
    b = threading.Thread(name="start-b", target=lambda: service.post(db, RUN, bodies.parse_request(body), dispatcher=second))
    b.start()
    b.join(30)
    a.join(30)
    assert [lead["status"] for lead in all_leads(db, RUN)] == ["sent"] * 6  # nothing reset to pending
    follow(db, second)
    follow(db, first)
    final = job(db, RUN)
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "sent": 6, "drafted": 0, "failed": 0, "skipped": 0}
    assert len(docs(db, "mail")) == 6


def failed_run(db, failing=(1, 4)) -> None:
    leads = make_leads(6)
    for index in failing:
        leads[index]["firstName"] = ""
    follow(db, start_background(db, RUN, leads))
    assert job(db, RUN)["counts"]["failed"] == len(failing)
    db.collection("templates").document("tpl-1").update({"subject": "Hello", "body": "Hello from {{company}}"})


def test_a_retry_resets_its_failed_leads_in_the_jobs_own_commit(db, monkeypatch):
    failed_run(db)

    def crash(*args, **kwargs):
        raise RuntimeError("the instance died after the job's commit")

    monkeypatch.setattr(repo, "update_leads", crash)  # any write after the job's commit is lost
    retried = Captured()
    service.post(db, RUN, bodies.parse_request({"action": "retry"}), dispatcher=retried)
    counts = job(db, RUN)["counts"]
    statuses = [lead["status"] for lead in all_leads(db, RUN)]
    assert counts["pending"] == statuses.count("pending") == 2 and counts["failed"] == statuses.count("failed") == 0
    follow(db, retried)
    assert job(db, RUN)["counts"]["sent"] == 6 and len(docs(db, "mail")) == 6


def test_a_retry_too_large_for_one_commit_is_reconciled_by_the_worker(db, monkeypatch, configure):
    configure(WORKER_LEAD_CONCURRENCY="1", WORKER_LEASE_SECONDS="1")
    failed_run(db)
    monkeypatch.setattr(job_writes, "LEADS_PER_JOB_COMMIT", 1)

    def crash(*args, **kwargs):
        raise RuntimeError("the instance died after the job's commit")

    monkeypatch.setattr(repo, "update_leads", crash)
    retried = Captured()
    with pytest.raises(RuntimeError):
        service.post(db, RUN, bodies.parse_request({"action": "retry"}), dispatcher=retried)
    assert [lead["status"] for lead in all_leads(db, RUN)].count("failed") == 2  # the crash left them failed
    assert job(db, RUN)["status"] == "running"
    # Nobody was invoked (the crash came first): the sweeper restarts the chain once its lease lapses.
    monkeypatch.undo()
    configure(WORKER_LEAD_CONCURRENCY="1", WORKER_LEASE_SECONDS="1")
    deadline = time.monotonic() + 10
    while not service.status(db, RUN).job.stalled:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    resumed = Captured()
    assert sweeper.sweep(db, get_settings(), resumed).resumed == [RUN]
    follow(db, resumed)
    final = job(db, RUN)
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "sent": 6, "drafted": 0, "failed": 0, "skipped": 0}
    assert not [d for d in final["diagnostics"] if d["code"] == "counts_reconciled"]
    assert len(docs(db, "mail")) == 6


def test_hand_off_claims_carry_an_expiry_for_the_ttl_policy(db):
    captured = start_background(db, RUN, make_leads(3), batchSize=1)
    follow(db, captured)
    claims = [s.to_dict() for s in repo.job_ref(db, RUN).collection(repo.LEASES).stream()]
    assert len(claims) == 3
    for claim in claims:
        retention = claim["expireAt"] - claim["claimedAt"]
        assert retention == job_writes.LEASE_CLAIM_RETENTION and claim["expireAt"] > clock.now() + dt.timedelta(days=6)
