"""Several leads of a batch in flight (WORKER_LEAD_CONCURRENCY): every guarantee of the
one-at-a-time worker still holds (tests/test_jobs_worker.py pins them one lead at a time)."""

from __future__ import annotations

import threading
import time

import pytest
from google.api_core import exceptions as gexc

from shared.jobs import bodies, lease, loop, service, worker
from shared.jobs.chain_models import WorkerResult
from shared.outreach.providers import MailCollectionProvider
from shared.settings import get_settings
from shared.store import runs as repo
from tests.jobs_helpers import Captured, all_leads, docs, job, make_leads, make_template, start_background

RUN = "run-c"
LANES = 4


@pytest.fixture(autouse=True)
def template(db, configure):
    configure(WORKER_LEAD_CONCURRENCY=str(LANES))
    make_template(db)


def follow(db, captured: Captured, provider=None) -> list[WorkerResult]:
    results = []
    while captured.calls:
        run_id, token, handoff = captured.calls.pop(0)
        results.append(worker.handle(db, run_id, token, handoff, dispatcher=captured, provider=provider))
    return results


class Slow(MailCollectionProvider):
    """Holds each delivery a little, so leads really overlap; records the most in flight at once."""

    def __init__(self, hold: float = 0.02):
        self.hold, self.lock, self.now, self.most = hold, threading.Lock(), 0, 0

    def deliver(self, db, batch, email):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return super().deliver(db, batch, email)


def assert_exact(db, total: int) -> None:
    final = job(db, RUN)
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "sent": total, "drafted": 0, "failed": 0, "skipped": 0}
    assert not [d for d in final["diagnostics"] if d["code"] == "counts_reconciled"]
    mails = docs(db, "mail")
    assert len(mails) == total and len({m["leadDocId"] for m in mails}) == total


def test_leads_overlap_and_the_chain_keeps_one_mail_per_lead_and_one_job_write_per_batch(db):
    captured = start_background(db, RUN, make_leads(30), batchSize=10)
    provider = Slow()
    results = follow(db, captured, provider)
    assert provider.most == LANES  # never more than the bound, and really concurrent
    assert [r.processed for r in results] == [10, 10, 10]
    assert_exact(db, 30)
    assert job(db, RUN)["writes"] == 2 + len(results)


def test_pause_stops_within_the_leads_in_flight_and_next_index_is_a_done_prefix(db):
    captured = start_background(db, RUN, make_leads(20), batchSize=20)

    class PauseAt(Slow):
        def deliver(self, db_, batch, email):
            if email.lead_id == repo.lead_doc_id(5):
                service.post(db, RUN, bodies.parse_request({"action": "pause"}), dispatcher=Captured())
            return super().deliver(db_, batch, email)

    (result,) = follow(db, captured, PauseAt())
    assert result.status == "paused" and result.stop_reason == "paused"
    assert 6 <= result.processed <= 6 + LANES  # lead 5 and those already in flight, no more
    paused = job(db, RUN)
    leads = all_leads(db, RUN)
    assert all(lead["status"] == "sent" for lead in leads[: paused["nextIndex"]])
    assert paused["counts"]["sent"] == len(docs(db, "mail")) == result.processed
    resumed = Captured()
    service.post(db, RUN, bodies.parse_request({"action": "resume"}), dispatcher=resumed)
    follow(db, resumed)
    assert_exact(db, 20)


def test_a_lead_that_stops_the_batch_holds_next_index_while_later_leads_are_booked(db):
    class Unavailable(Slow):
        def deliver(self, db_, batch, email):
            if email.lead_id == repo.lead_doc_id(2) and not getattr(self, "failed", False):
                self.failed = True
                raise gexc.ServiceUnavailable("connection refused")
            return super().deliver(db_, batch, email)

    captured = start_background(db, RUN, make_leads(12), batchSize=12, maxAttempts=1)
    run_id, token, handoff = captured.calls.pop()
    chain = Captured()
    result = worker.handle(db, run_id, token, handoff, dispatcher=chain, provider=Unavailable(hold=0.05))
    assert result.stop_reason == "firestore_unavailable" and result.next_index == 2
    stopped = job(db, RUN)
    assert stopped["nextIndex"] == 2 and repo.get_lead(db, RUN, "lead-000002")["status"] == "pending"
    later = [lead["index"] for lead in all_leads(db, RUN) if lead["status"] == "sent" and lead["index"] > 2]
    assert later, "no lead after the stopped one was in flight"
    assert stopped["counts"]["sent"] == result.processed == 2 + len(later)
    follow(db, chain)
    assert_exact(db, 12)


def test_a_worker_killed_with_leads_in_flight_loses_and_duplicates_nothing(db, configure):
    configure(WORKER_LEASE_SECONDS="1", WORKER_LEAD_CONCURRENCY=str(LANES))
    captured = start_background(db, RUN, make_leads(16), batchSize=8)
    run_id, old_token, handoff = captured.calls.pop()
    owner, claimed = lease.acquire(db, RUN, old_token, handoff, get_settings())
    loop.run_batch(db, RUN, claimed, owner, time.monotonic() + 60, 6, Slow(), concurrency=LANES)  # never checkpoints
    assert len(docs(db, "mail")) == 6 and job(db, RUN)["nextIndex"] == 0
    deadline = time.monotonic() + 10
    while not service.status(db, RUN).job.stalled:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    resumed = Captured()
    service.post(db, RUN, bodies.parse_request({"action": "resume"}), dispatcher=resumed)
    follow(db, resumed)
    assert_exact(db, 16)


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_a_lead_whose_commit_landed_but_whose_answer_was_lost_is_counted_once(db, monkeypatch, max_attempts):
    """In an outage a lead's outcome commit can land while its worker sees an error: the
    batch stops without counting it, and the next batch must count it although its commit
    is older than that checkpoint (no `counts_reconciled` at the end)."""
    from shared.store import job_writes

    original, lost = job_writes.commit_lead_outcome, []

    def land_then_lose(batch, *args, **kwargs):
        landed = original(batch, *args, **kwargs)
        if len(lost) < max_attempts:  # every retry of the same lead loses its answer too
            lost.append(1)
            raise gexc.ServiceUnavailable("the commit landed; its answer was lost")
        return landed

    monkeypatch.setattr(job_writes, "commit_lead_outcome", land_then_lose)
    captured = start_background(db, RUN, make_leads(12), batchSize=12, maxAttempts=max_attempts)
    follow(db, captured)
    assert lost
    assert_exact(db, 12)
