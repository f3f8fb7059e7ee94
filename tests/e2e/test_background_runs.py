"""Background runs over real HTTP: the jobs function, and a worker that really invokes
itself through the Hosting-like router (WORKER_URL), on the session's emulator.

The session stack gives the worker a 2 s budget, so a few hundred leads take several
self-invocations. The crash test starts a stack of its own, because it kills the worker.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from shared.jobs import bodies, service
from shared.store import runs as repo
from tests.conftest import LOG_DIR
from tests.jobs_helpers import Captured, docs, make_leads, make_template, start_request
from tools import localstack

pytestmark = pytest.mark.e2e


def create_template(url: str, draft_first: bool = False, **fields) -> str:
    body = {"name": "E2E", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}",
            "draftFirst": draft_first, **fields}
    response = requests.post(f"{url}/api/templates", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def post_job(url: str, run_id: str, body: dict) -> requests.Response:
    return requests.post(f"{url}/api/lead-runs/{run_id}/jobs", json=body, timeout=60)


def get_job(url: str, run_id: str) -> dict:
    response = requests.get(f"{url}/api/lead-runs/{run_id}/jobs", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["job"]


def wait_for(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def wait_until_finished(url: str, run_id: str, timeout: float = 60) -> dict:
    return wait_for(lambda: (lambda j: j if j["status"] not in ("queued", "running") else None)(get_job(url, run_id)),
                    timeout, f"run {run_id} to finish", interval=0.2)


def count(db, collection: str) -> int:
    return int(db.collection(collection).count().get()[0][0].value)


def done_past_checkpoint(db, run_id: str) -> int:
    """Mails sent beyond the job's last checkpoint. The count is read first, so a checkpoint
    landing between the two reads can only make this smaller, never larger than the truth.
    Killing the worker once this is positive lands mid-batch: between batches (checkpoint,
    then a hand-off of up to 2 s) it is 0, and a slow poll on a loaded machine used to
    kill there."""
    sent = count(db, "mail")
    job = repo.get_job(db, run_id)
    return sent - job["nextIndex"] if job else 0


def wait_until_quiet(db, run_id: str, timeout: float = 10) -> dict:
    """Until the worker saw the pause/cancel and wrote its checkpoint: the job's nextIndex
    accounts for every mail, and stays so."""
    def settled():
        job, mails = repo.get_job(db, run_id), count(db, "mail")
        if job["nextIndex"] != mails:
            return None
        time.sleep(0.5)
        again = repo.get_job(db, run_id)
        return again if again["nextIndex"] == count(db, "mail") == mails else None

    return wait_for(settled, timeout, "the worker to stop")


def assert_one_message_per_lead(db, run_id: str, total: int, collection: str = "mail") -> None:
    messages = [m for m in docs(db, collection) if m["runId"] == run_id]
    assert len(messages) == total
    assert sorted(m["leadDocId"] for m in messages) == [repo.lead_doc_id(i) for i in range(total)]


def test_a_background_run_of_250_leads_completes_with_one_mail_per_lead(stack, db):
    template_id = create_template(stack.url)
    response = post_job(stack.url, "bg-250", start_request(make_leads(250), templateId=template_id, batchSize=20))
    assert response.status_code == 202, response.text
    assert response.json()["job"]["status"] in ("queued", "running")
    again = post_job(stack.url, "bg-250", start_request(make_leads(250), templateId=template_id, batchSize=20))
    assert again.status_code == 200  # the same start again: answered, not run twice

    job = wait_until_finished(stack.url, "bg-250")
    assert job["status"] == "completed", job
    assert job["counts"] == {"pending": 0, "sent": 250, "drafted": 0, "failed": 0, "skipped": 0}
    assert job["nextIndex"] == 250 and job["finishedAt"] and not job["stalled"]
    assert_one_message_per_lead(db, "bg-250", 250)
    assert count(db, "mail_drafts") == 0
    # One job write at start, one when the first batch begins, then exactly one per worker
    # invocation (each claimed one hand-off).
    invocations = len(list(repo.job_ref(db, "bg-250").collection("leases").stream()))
    assert invocations >= 250 // 20 and job["writes"] == 2 + invocations
    assert not [d for d in job["diagnostics"] if d["code"] in ("counts_reconciled", "dispatch_failed")]
    assert repo.get_run(db, "bg-250")["counts"] == job["counts"]


def test_pause_stops_within_one_lead_and_resume_finishes(stack, db):
    template_id = create_template(stack.url)
    post_job(stack.url, "bg-pause", start_request(make_leads(400), templateId=template_id, batchSize=25))
    wait_for(lambda: count(db, "mail") >= 30, 30, "the run to get going")
    paused = post_job(stack.url, "bg-pause", {"action": "pause"})
    assert paused.status_code == 200 and paused.json()["job"]["status"] == "paused"
    at_pause = count(db, "mail")
    job = wait_until_quiet(db, "bg-pause")
    settled = count(db, "mail")
    assert settled - at_pause <= 1, "the worker went on after the pause"
    assert job["status"] == "paused" and job["nextIndex"] == settled < 400
    time.sleep(1.0)
    assert count(db, "mail") == settled

    resumed = post_job(stack.url, "bg-pause", {"action": "resume"})
    # The jobs API waits up to the hand-off's 2 s read timeout, so a fast chain may be done already.
    assert resumed.status_code == 200 and resumed.json()["job"]["status"] in ("running", "completed")
    job = wait_until_finished(stack.url, "bg-pause")
    assert job["status"] == "completed" and job["counts"]["sent"] == 400
    assert_one_message_per_lead(db, "bg-pause", 400)


def test_cancel_stops_the_run(stack, db):
    template_id = create_template(stack.url)
    post_job(stack.url, "bg-cancel", start_request(make_leads(400), templateId=template_id, batchSize=25))
    wait_for(lambda: count(db, "mail") >= 20, 30, "the run to get going")
    cancelled = post_job(stack.url, "bg-cancel", {"action": "cancel"})
    assert cancelled.status_code == 200 and cancelled.json()["job"]["status"] == "cancelled"
    wait_until_quiet(db, "bg-cancel")
    settled = count(db, "mail")
    time.sleep(1.0)
    assert count(db, "mail") == settled < 400
    view = get_job(stack.url, "bg-cancel")
    assert view["status"] == "cancelled" and view["nextIndex"] == settled == view["counts"]["sent"]
    assert view["counts"]["pending"] == 400 - settled
    assert post_job(stack.url, "bg-cancel", {"action": "resume"}).status_code == 409


def test_two_concurrent_worker_calls_make_progress_once(stack, db):
    make_template(db)
    captured = Captured()  # the first hand-off is made by the test, twice at once
    service.post(db, "bg-race", bodies.parse_request(start_request(make_leads(60), batchSize=20)), dispatcher=captured)
    _, token, lease = captured.calls[0]
    url = f"{stack.url}/api/lead-runs/bg-race/jobs/worker"
    answers, barrier = [], threading.Barrier(2)

    def call():
        barrier.wait()
        answers.append(requests.post(url, headers={"X-Worker-Token": token, "X-Worker-Lease": lease}, timeout=30))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert winner["processed"] == 20 and winner["dispatched"] is True
    job = wait_until_finished(stack.url, "bg-race")
    assert job["status"] == "completed"
    assert_one_message_per_lead(db, "bg-race", 60)


def test_a_draft_first_template_produces_only_drafts(stack, db):
    template_id = create_template(stack.url, draft_first=True)
    post_job(stack.url, "bg-drafts", start_request(make_leads(60), templateId=template_id, batchSize=20))
    job = wait_until_finished(stack.url, "bg-drafts")
    assert job["status"] == "completed" and job["counts"]["drafted"] == 60 and job["counts"]["sent"] == 0
    assert count(db, "mail") == 0
    assert_one_message_per_lead(db, "bg-drafts", 60, collection="mail_drafts")


def test_a_missing_variable_fails_alone_and_retry_requeues_only_failed_leads(stack, db):
    template_id = create_template(stack.url)
    leads = make_leads(60)
    for index in (5, 30, 59):
        del leads[index]["firstName"]
    post_job(stack.url, "bg-retry", start_request(leads, templateId=template_id, batchSize=20))
    job = wait_until_finished(stack.url, "bg-retry")
    assert job["status"] == "completed_with_errors"
    assert job["counts"] == {"pending": 0, "sent": 57, "drafted": 0, "failed": 3, "skipped": 0}
    failures = [d for d in job["diagnostics"] if d["code"] == "missing_variables"]
    assert [d["leadIndex"] for d in failures] == [5, 30, 59]
    assert all("firstName" in d["message"] for d in failures)
    first_mail = {m["id"]: m["createdAt"] for m in docs(db, "mail")}

    patched = requests.patch(f"{stack.url}/api/templates/{template_id}",
                             json={"subject": "Hello", "body": "Hello from {{company}}", "version": 1}, timeout=10)
    assert patched.status_code == 200, patched.text
    retried = post_job(stack.url, "bg-retry", {"action": "retry"})
    assert retried.status_code == 200, retried.text
    job = wait_until_finished(stack.url, "bg-retry")
    assert job["status"] == "completed" and job["counts"]["sent"] == 60 and job["counts"]["failed"] == 0
    assert_one_message_per_lead(db, "bg-retry", 60)
    assert {m["id"]: m["createdAt"] for m in docs(db, "mail") if m["id"] in first_mail} == first_mail


def test_bad_worker_tokens_over_http_write_nothing(stack, db):
    make_template(db)
    captured = Captured()
    service.post(db, "bg-token", bodies.parse_request(start_request(make_leads(5))), dispatcher=captured)
    url = f"{stack.url}/api/lead-runs/bg-token/jobs/worker"
    before = repo.get_job(db, "bg-token")
    assert requests.post(url, timeout=10).status_code == 401
    assert requests.post(url, headers={"X-Worker-Token": "forged"}, timeout=10).status_code == 403
    assert repo.get_job(db, "bg-token") == before and count(db, "mail") == 0


def test_a_killed_worker_is_resumed_with_no_duplicate_and_no_lost_lead(emulator, db):
    TOTAL = 1000  # large batches, so the kill lands mid-batch with leads done past nextIndex
    env = {"WORKER_TIME_BUDGET_SECONDS": "5", "WORKER_LEASE_SECONDS": "3"}
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), log_dir=LOG_DIR / "crash", env=env,
        names=["jobs", "templates", "worker"],
    ) as crash_stack:
        template_id = create_template(crash_stack.url)
        post_job(crash_stack.url, "bg-crash", start_request(make_leads(TOTAL), templateId=template_id, batchSize=500))
        # At most half the batch done: with every lead of the batch sent but its checkpoint not
        # yet read, the kill could land after the checkpoint (a CI run killed at 500 of 500).
        wait_for(lambda: 40 <= done_past_checkpoint(db, "bg-crash") <= 250, 30, "the run to get going", interval=0.01)
        victim = crash_stack.functions["worker"]
        os.killpg(victim.process.pid, signal.SIGKILL)  # the whole gunicorn group, mid-batch
        victim.process.wait()
        killed_at = count(db, "mail")
        assert killed_at < TOTAL
        persisted = repo.get_job(db, "bg-crash")
        assert persisted["status"] == "running"  # the first batch said so when it claimed the hand-off
        assert killed_at > persisted["nextIndex"]  # leads were done past the last checkpoint

        stalled = wait_for(lambda: (lambda j: j if j["stalled"] else None)(get_job(crash_stack.url, "bg-crash")),
                           15, "the job to look stalled", interval=0.2)
        assert stalled["status"] == "running" and stalled["nextIndex"] <= killed_at

        env_all = localstack.function_env(emulator, crash_stack.url, env)
        revived = localstack.start_function("worker", victim.port, env_all, LOG_DIR / "crash")
        crash_stack.functions["worker"] = revived
        localstack.wait_for_http(revived.url + "/", 60, revived.process)

        resumed = post_job(crash_stack.url, "bg-crash", {"action": "resume"})
        assert resumed.status_code == 200, resumed.text
        job = wait_until_finished(crash_stack.url, "bg-crash")
        assert job["status"] == "completed"
        assert job["counts"] == {"pending": 0, "sent": TOTAL, "drafted": 0, "failed": 0, "skipped": 0}
        assert not [d for d in job["diagnostics"] if d["code"] == "counts_reconciled"]
        assert_one_message_per_lead(db, "bg-crash", TOTAL)
