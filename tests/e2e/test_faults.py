"""Faults over real HTTP: Firestore unreachable, and a worker SIGKILLed mid-run.

The functions reach the session's emulator through tools/faultproxy.FaultProxy; taking
the proxy down is an outage from their point of view (connections refused and reset)
while the emulator keeps every document, so the test can check afterwards that nothing
was lost or duplicated (docs/reliability.md). The trials are bench/bench_faults.py's,
run fewer times and on smaller runs; that script repeats them and prints the figures.
As there, nobody resumes a cut-off run: the stack's sweeper timer (every second) does.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.bench_faults import (
    Http, create_template, fault_stack, kill_trial, mail_count, outage_trial, start_run, wait_for,
)
from tests.conftest import LOG_DIR

pytestmark = pytest.mark.e2e

FAULT_LOG_DIR = LOG_DIR / "faults"
# Slowest acceptable answer while Firestore is down: FIRESTORE_DEADLINE_SECONDS is 2 here,
# and no read endpoint may make more than one doomed call in a row before answering.
OUTAGE_ANSWER_SECONDS = 5.0


@pytest.fixture(scope="module")
def faults(emulator):
    with fault_stack(emulator, log_dir=FAULT_LOG_DIR) as stack:
        yield stack


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("FAULT_SEED") or int(time.time() * 1000) % 10**6)
    print(f"fault trial seed {seed} (FAULT_SEED={seed} replays its fault points)")  # shown when the test fails
    return random.Random(seed)


def assert_unavailable(response: requests.Response | None, seconds: float, what: str) -> None:
    assert response is not None, f"{what}: no answer at all"
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers.get("Retry-After", "").isdigit(), f"{what}: no Retry-After"
    error = response.json()["error"]
    assert error["code"] == "unavailable" and error["message"] and isinstance(error["details"], list), what
    assert "Traceback" not in response.text and 'File "' not in response.text, f"{what}: a stack in the body"
    assert seconds < OUTAGE_ANSWER_SECONDS, f"{what}: took {seconds:.1f}s"


def assert_completed_unattended_with_nothing_lost_or_duplicated(trial) -> None:
    print(trial.line())
    assert trial.error is None, trial.error
    assert trial.status == "completed", trial.line()
    check = trial.check
    assert check.duplicates == 0 and check.lost == 0 and check.not_sent == 0, trial.line()
    assert check.counts_ok and not check.reconciled, trial.line()
    # Healed with nobody's help: the test only watched, and nobody resumed or retried the job.
    assert trial.unattended and trial.operator_actions == 0 and not check.operator_codes, trial.line()


def timed(call):
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def test_reads_answer_503_with_retry_after_while_firestore_is_down_and_work_again_after(faults, db):
    faults.ensure_ready()
    http = Http(faults.url)
    template_id = create_template(http)
    start_run(http, "fault-reads", template_id, leads=20, batch_size=20)
    wait_for(lambda: http.get("/api/lead-runs/fault-reads/jobs").json()["job"]["status"] == "completed", 30,
             "the small run to finish", interval=0.2)
    paths = {
        "templates list": "/api/templates",
        "one template": f"/api/templates/{template_id}",
        "receipts": "/api/lead-runs/fault-reads/receipts?pageSize=5",
        "runs list": "/api/lead-runs?limit=5",
        "job status": "/api/lead-runs/fault-reads/jobs",
    }
    before = {name: http.get(path).json() for name, path in paths.items()}

    faults.proxy.down()
    try:
        # Twice, all at once: the first calls find their connections reset, the next ones
        # find nobody listening.
        with ThreadPoolExecutor(len(paths)) as pool:
            for _ in range(2):
                answers = pool.map(lambda path: timed(lambda: http.get(path, timeout=20)), paths.values())
                for name, (response, seconds) in zip(paths, answers):
                    assert_unavailable(response, seconds, f"GET {name} while down")
    finally:
        faults.proxy.up()

    # gRPC reconnects with backoff, so the first calls after the outage may still be 503s.
    wait_for(lambda: all(http.get(path).status_code == 200 for path in paths.values()), 30,
             "every endpoint to answer 200 again", interval=0.2)
    after = {name: http.get(path).json() for name, path in paths.items()}
    assert after["one template"] == before["one template"]
    assert after["receipts"]["leads"] == before["receipts"]["leads"]
    assert after["job status"]["job"]["counts"] == before["job status"]["job"]["counts"]
    assert not http.other_5xx() and not http.bad_503s()
    assert mail_count(db, "fault-reads") == 20


def test_reads_answer_503_within_the_deadline_when_firestore_stops_answering(faults, db):
    """A partition rather than a crash: connections stay open and nothing comes back, so
    only FIRESTORE_DEADLINE_SECONDS (2 s here) stands between a caller and a hang."""
    faults.ensure_ready()
    http = Http(faults.url)
    template_id = create_template(http)
    paths = ["/api/templates", f"/api/templates/{template_id}", "/api/lead-runs?limit=5"]
    faults.proxy.blackhole()
    try:
        with ThreadPoolExecutor(len(paths)) as pool:
            answers = list(pool.map(lambda path: timed(lambda: http.get(path, timeout=20)), paths))
    finally:
        faults.proxy.up()
    for path, (response, seconds) in zip(paths, answers):
        assert_unavailable(response, seconds, f"GET {path} during a partition")
    assert faults.proxy.stats.bytes_dropped > 0
    assert faults.ensure_ready() < 30
    assert http.get(f"/api/templates/{template_id}").status_code == 200


# A transaction that cannot begin used to be a 500 here: google-cloud-firestore's
# @transactional then rolls back a transaction that never began, and that ValueError hid the
# RetryError (docs/reliability.md, finding 1). shared/store/client.run_transaction unwraps it.
WRITES = ["POST template", "PATCH template", "DELETE template", "POST jobs start", "POST jobs pause",
          "POST schedule book", "POST telemetry"]


@pytest.fixture(scope="module")
def writes_while_down(faults) -> dict:
    """Every kind of write, sent at once while Firestore is unreachable: {name: (response, seconds)}."""
    faults.ensure_ready()
    http = Http(faults.url)
    template_id = create_template(http)
    other_id = create_template(http)
    start_run(http, "fault-writes", template_id, leads=5, batch_size=5)
    start = {"action": "start", "mode": "background", "leads": [{"email": "a@example.com", "firstName": "A"}],
             "config": {"templateId": template_id}}
    writes = {
        "POST template": lambda: http.post("/api/templates", {"name": "N", "subject": "S", "body": "B"}),
        "PATCH template": lambda: http.call("PATCH", f"/api/templates/{template_id}", json={"name": "R", "version": 1}),
        "DELETE template": lambda: http.call("DELETE", f"/api/templates/{other_id}?version=1"),
        "POST jobs start": lambda: http.post("/api/lead-runs/fault-writes-new/jobs", start),
        "POST jobs pause": lambda: http.post("/api/lead-runs/fault-writes/jobs", {"action": "pause"}),
        "POST schedule book": lambda: http.post("/api/calendar/schedule", {
            "candidateStarts": ["2030-06-03T09:00:00-04:00"], "durationMinutes": 30, "book": True,
            "calendarId": "faults"}),
        "POST telemetry": lambda: http.post("/api/telemetry/error", {"source": "manual", "message": "outage"}),
    }
    assert sorted(writes) == sorted(WRITES)
    faults.proxy.down()
    try:
        with ThreadPoolExecutor(len(writes)) as pool:
            futures = {name: pool.submit(timed, call) for name, call in writes.items()}
            answers = {name: future.result() for name, future in futures.items()}
    finally:
        faults.proxy.up()
    return answers


@pytest.mark.parametrize("name", WRITES)
def test_a_write_while_firestore_is_down_answers_503_with_retry_after(writes_while_down, name):
    response, seconds = writes_while_down[name]
    assert_unavailable(response, seconds, f"{name} while down")


def test_a_run_cut_off_by_an_outage_finishes_without_an_operator_with_nothing_lost_or_duplicated(faults, db, rng):
    trial = outage_trial(faults, db, 1, rng, leads=240, batch_size=30, outage=(3.0, 4.0), timeout=120)
    assert_completed_unattended_with_nothing_lost_or_duplicated(trial)
    # While it was down every probe answered, fast, with a 503 carrying Retry-After.
    assert trial.probes >= 3 and trial.probe_503s == trial.probes, trial.line()
    assert trial.probe_max_seconds < OUTAGE_ANSWER_SECONDS, trial.line()
    assert not trial.other_5xx and not trial.bad_503s and not trial.no_answer, trial.line()
    assert not trial.unhandled, trial.unhandled  # not even a 500 that nobody saw (a worker's hand-off)
    assert 0 < trial.fault_at < 240


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_worker_killed_at_a_random_point_is_healed_unattended_and_loses_and_duplicates_no_lead(
    faults, db, rng, attempt,
):
    trial = kill_trial(faults, db, attempt, rng, leads=240, batch_size=30, timeout=120)
    assert_completed_unattended_with_nothing_lost_or_duplicated(trial)
    assert not trial.other_5xx and not trial.bad_503s and not trial.unhandled, trial.line()
    assert 0 < trial.fault_at < 240, "the kill came after the run had finished"
    # The dead chain moved again after the kill: the worker's job writes hold no lock
    # (store/client.write_if_unchanged), so a worker killed mid-write leaves none behind to
    # hold up the sweeper's restart (docs/reliability.md, finding 3).
    assert trial.moved_after is not None, trial.line()
    assert faults.stack.functions["worker"].process.poll() is None  # the restarted worker serves on
