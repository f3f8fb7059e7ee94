"""A chain that heals itself (issue 13, item 3), over real HTTP.

Every hand-off goes through tools/faultproxy.HttpFaultProxy (WORKER_URL), which answers
429 + Retry-After to everything for a while, as Cloud Run does when no instance can take
a request. The worker's retries ride out what they can; the sweeper, POSTed every second
as Cloud Scheduler would every minute, restarts what they cannot. Nobody presses Resume.
"""

from __future__ import annotations

import threading

import pytest
import requests

from shared.store import runs as repo
from tests.conftest import LOG_DIR
from tests.e2e.test_background_runs import (
    assert_one_message_per_lead,
    create_template,
    get_job,
    post_job,
    wait_for,
)
from tests.jobs_helpers import make_leads, start_request
from tools import localstack
from tools.faultproxy import HttpFaultProxy

pytestmark = pytest.mark.e2e


class Scheduler:
    """POSTs /api/jobs/sweep every `interval` seconds until stopped; keeps every answer."""

    def __init__(self, url: str, interval: float):
        self.url, self.interval, self.answers = url, interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                response = requests.post(f"{self.url}/api/jobs/sweep", timeout=60)
                self.answers.append((response.status_code, response.json()))
            except requests.RequestException as exc:
                self.answers.append((0, repr(exc)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(70)


def test_a_429_storm_on_every_hand_off_ends_in_one_mail_per_lead_without_an_operator(emulator, db):
    TOTAL = 300
    port = localstack.free_port()
    front = HttpFaultProxy(f"http://127.0.0.1:{port}", retry_after="1")
    env = {"WORKER_URL": front.url, "WORKER_TIME_BUDGET_SECONDS": "1", "WORKER_LEASE_SECONDS": "3"}
    try:
        with localstack.running_stack(
            emulator=emulator, port=port, log_dir=LOG_DIR / "self-healing", env=env,
            names=["jobs", "templates", "worker"],
        ) as stack:
            template_id = create_template(stack.url)
            scheduler = Scheduler(stack.url, interval=1.0)
            try:
                started = post_job(stack.url, "bg-429", start_request(make_leads(TOTAL), templateId=template_id,
                                                                     batchSize=20))
                assert started.status_code == 202, started.text
                wait_for(lambda: get_job(stack.url, "bg-429")["nextIndex"] >= 40, 30, "the chain to get going")
                # Longer than the hand-off's own retries (about 8 s of backoff): some chains break.
                front.refuse_for(20)
                left_at_storm = TOTAL - get_job(stack.url, "bg-429")["nextIndex"]
                wait_for(lambda: front.refused >= 5, 30, "the storm to meet the chain")
                job = wait_for(
                    lambda: (lambda j: j if j["status"] not in ("queued", "running") else None)(get_job(stack.url, "bg-429")),
                    120, "the run to finish on its own", interval=0.5,
                )
            finally:
                scheduler.stop()
    finally:
        front.close()
    assert job["status"] == "completed", job
    assert job["counts"] == {"pending": 0, "sent": TOTAL, "drafted": 0, "failed": 0, "skipped": 0}
    assert not [d for d in job["diagnostics"] if d["code"] == "counts_reconciled"]
    assert_one_message_per_lead(db, "bg-429", TOTAL)
    # The storm really cut hand-offs off: it met the chain with leads still to go, refused
    # them, and the sweeper had to restart the job (below). How long the run then took is
    # the machine's business (under load the chain can be near its end when the storm comes).
    assert front.refused >= 5 and left_at_storm > 0
    stored = repo.get_job(db, "bg-429")
    restarts = [d for d in stored["diagnostics"] if d["code"] == "sweeper_restarted"]
    assert restarts, "the retries alone rode out a 20 s storm: the sweeper was not exercised"
    assert all(status == 200 for status, _ in scheduler.answers), scheduler.answers
    assert not [d for d in stored["diagnostics"] if d["code"] in ("resume", "retry")]  # no operator action
