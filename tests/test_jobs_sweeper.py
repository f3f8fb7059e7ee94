"""The sweeper (POST /api/jobs/sweep, shared/jobs/sweeper.py): restarts stalled chains once,
however many sweepers run, and only for Cloud Scheduler's OIDC token (or the local stack)."""

from __future__ import annotations

import threading
import time

import pytest

from shared import auth
from shared.jobs import bodies, service, sweeper
from shared.settings import get_settings
from shared.store import client as store_client
from shared.store import job_writes
from shared.store import runs as repo
from tests.jobs_helpers import Captured, docs, job, make_leads, make_template, start_request
from tests.tokens import TokenIssuer

RUN = "run-sweep"
AUDIENCE = "https://worker-abc-uc.a.run.app/api/jobs/sweep"
SCHEDULER = "sweeper@demo.iam.gserviceaccount.com"


@pytest.fixture(autouse=True)
def template(db, configure):
    configure(WORKER_LEASE_SECONDS="1", WORKER_LEAD_CONCURRENCY="1")
    make_template(db)


def broken_chain(db, run_id: str = RUN, leads: int = 4) -> None:
    """A started run whose first hand-off never arrived, once its lease (1 s + 1 s grace) lapsed."""
    service.post(db, run_id, bodies.parse_request(start_request(make_leads(leads))), dispatcher=lambda *call: False)
    wait_stalled(db, run_id)


def wait_stalled(db, run_id: str) -> None:
    deadline = time.monotonic() + 10
    while not service.status(db, run_id).job.stalled:
        assert time.monotonic() < deadline, "the job never looked stalled"
        time.sleep(0.1)


def follow(db, captured: Captured) -> None:
    from shared.jobs import worker

    while captured.calls:
        run_id, token, lease = captured.calls.pop(0)
        worker.handle(db, run_id, token, lease, dispatcher=captured)


def test_a_stalled_job_is_restarted_with_a_new_token_and_finishes(db):
    broken_chain(db)
    before = job(db, RUN)
    captured = Captured()
    answer = sweeper.sweep(db, get_settings(), captured)
    assert answer.resumed == [RUN] and answer.checked == 1
    ((run_id, token, lease),) = captured.calls
    restarted = job(db, RUN)
    assert restarted["workerTokenHash"] == auth.worker_token_hash(token) != before["workerTokenHash"]
    assert restarted["lease"]["owner"] == lease and restarted["status"] == "queued"
    note = restarted["diagnostics"][-1]
    assert note["code"] == "sweeper_restarted" and "the sweeper restarted the job at" in note["message"]
    follow(db, captured)
    assert job(db, RUN)["status"] == "completed" and len(docs(db, "mail")) == 4


def test_a_healthy_paused_or_finished_job_is_left_alone(db, configure):
    configure(WORKER_LEASE_SECONDS="60", WORKER_LEAD_CONCURRENCY="1")
    service.post(db, RUN, bodies.parse_request(start_request(make_leads(2))), dispatcher=Captured())
    service.post(db, "run-paused", bodies.parse_request(start_request(make_leads(2))), dispatcher=Captured())
    service.post(db, "run-paused", bodies.parse_request({"action": "pause"}), dispatcher=Captured())
    captured = Captured()
    answer = sweeper.sweep(db, get_settings(), captured)
    assert answer.resumed == [] and answer.checked == 1 and captured.calls == []
    assert job(db, "run-paused")["status"] == "paused"


def test_two_sweepers_at_once_restart_a_job_once(db, monkeypatch):
    broken_chain(db)
    broken_chain(db, "run-sweep-2")
    real = store_client.write_if_unchanged
    second: list = []
    armed = [True]

    def racing(db_, ref, body, attempts=8):
        def body_then_compete(snapshot, batch, unchanged):
            result = body(snapshot, batch, unchanged)
            if armed and armed.pop():  # the other sweeper commits between this one's read and commit
                second.append(sweeper.sweep(db, get_settings(), Captured()))
            return result
        return real(db_, ref, body_then_compete, attempts)

    monkeypatch.setattr(job_writes, "write_if_unchanged", racing)
    first = sweeper.sweep(db, get_settings(), Captured())
    assert sorted(first.resumed + second[0].resumed) == [RUN, "run-sweep-2"]
    assert not set(first.resumed) & set(second[0].resumed)
    for run_id in (RUN, "run-sweep-2"):
        codes = [d["code"] for d in job(db, run_id)["diagnostics"]]
        assert codes.count("sweeper_restarted") == 1


def test_concurrent_sweeps_in_threads_restart_each_job_once(db):
    for i in range(3):
        broken_chain(db, f"run-t{i}", leads=1)
    answers, calls = [], []

    def sweep_once():
        captured = Captured()
        answers.append(sweeper.sweep(db, get_settings(), captured))
        calls.extend(captured.calls)

    threads = [threading.Thread(target=sweep_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    resumed = [run_id for answer in answers for run_id in answer.resumed]
    assert sorted(resumed) == ["run-t0", "run-t1", "run-t2"]
    assert sorted(call[0] for call in calls) == ["run-t0", "run-t1", "run-t2"]


# --- the endpoint and its caller ----------------------------------------------------------


@pytest.fixture
def issuer():
    made = TokenIssuer(project="unused")
    yield made
    made.close()


@pytest.fixture
def production(configure, issuer):
    """Settings of a deployed worker: no emulator skip (not a demo- project), Scheduler's token."""
    def apply(**extra):
        configure(**{"GOOGLE_CLOUD_PROJECT": "mission-control-prod", "AUTH_MODE": "firebase", "SWEEPER_AUDIENCE": AUDIENCE,
                     "SWEEPER_SERVICE_ACCOUNT": SCHEDULER, "SWEEPER_CERTS_URL": issuer.certs_url,
                     "WORKER_LEASE_SECONDS": "1", **extra})
    apply()
    return apply


def oidc(issuer: TokenIssuer, **claims) -> dict[str, str]:
    token = issuer.token(SCHEDULER, **{"iss": "https://accounts.google.com", "aud": AUDIENCE, "sub": "1234567890", **claims})
    return {"Authorization": f"Bearer {token}"}


def test_the_endpoint_answers_resumed_and_checked(function_client, db):
    broken_chain(db)
    response = function_client("worker").post("/api/jobs/sweep")  # the local stack: no token needed
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"resumed": [RUN], "checked": 1}
    assert response.headers["Cache-Control"] == "no-store"
    client = function_client("worker")
    # A second broken chain: whether the first run is still active by now depends on how
    # fast its restarted worker finishes, so `checked` is not asserted here.
    broken_chain(db, "run-two")
    with_body = client.post("/api/jobs/sweep", json={})  # Scheduler may send an empty JSON body
    assert with_body.status_code == 200 and "run-two" in with_body.get_json()["resumed"]
    bad = client.post("/api/jobs/sweep", json={"runIds": ["x"]})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_argument"
    assert client.post("/api/jobs/sweep", data="sweep", content_type="text/plain").status_code == 415


def test_a_deployed_sweeper_requires_schedulers_oidc_token(function_client, db, production, issuer):
    broken_chain(db)
    client = function_client("worker")
    assert client.post("/api/jobs/sweep").status_code == 401
    assert client.post("/api/jobs/sweep", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    wrong_audience = issuer.token(SCHEDULER, iss="https://accounts.google.com", aud="https://elsewhere")
    assert client.post("/api/jobs/sweep", headers={"Authorization": f"Bearer {wrong_audience}"}).status_code == 401
    assert client.post("/api/jobs/sweep", headers=oidc(issuer, iss="https://evil.example.com")).status_code == 401
    other = issuer.token("someone@demo.iam.gserviceaccount.com", iss="https://accounts.google.com", aud=AUDIENCE)
    assert client.post("/api/jobs/sweep", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    assert client.get("/api/jobs/sweep").status_code == 405
    assert repo.get_job(db, RUN)["diagnostics"][-1]["code"] == "dispatch_failed"  # nothing restarted yet
    response = client.post("/api/jobs/sweep", headers=oidc(issuer))
    assert response.status_code == 200 and response.get_json()["resumed"] == [RUN]


def test_keys_that_cannot_be_fetched_are_a_503_not_a_401(function_client, db, production, issuer):
    headers = oidc(issuer)
    production(SWEEPER_CERTS_URL="http://127.0.0.1:9/certs")  # nothing listens on the discard port
    response = function_client("worker").post("/api/jobs/sweep", headers=headers)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "unavailable"


def test_a_job_from_before_hashed_tokens_is_restarted_and_loses_its_raw_token(db):
    broken_chain(db)
    repo.job_ref(db, RUN).update({"workerToken": "raw-token-of-an-old-deploy", "workerTokenHash": None})
    captured = Captured()
    assert sweeper.sweep(db, get_settings(), captured).resumed == [RUN]
    restarted = job(db, RUN)
    assert "workerToken" not in restarted and restarted["workerTokenHash"] == auth.worker_token_hash(captured.calls[0][1])
