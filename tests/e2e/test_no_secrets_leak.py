"""After a full run through the secured stack, no response, log line or stored
document holds a worker token, an Authorization header or an ID token.

Worker tokens are learnt in flight (the hand-off header, through the stack's WORKER_URL
proxy): the job stores only their SHA-256, so no stored document may hold one."""

from __future__ import annotations

import json
import time

import pytest
import requests

from shared import auth
from tests.e2e.conftest import SECURED_LOG_DIR

pytestmark = pytest.mark.e2e

RUN_ID = "leak-scan-run"


def _every_document(db):
    """(path, data) of every document in the database, subcollections included."""
    pending = list(db.collections())
    while pending:
        collection = pending.pop()
        for snapshot in collection.stream():
            yield snapshot.reference.path, snapshot.to_dict()
            pending.extend(snapshot.reference.collections())


def _full_run(stack, db) -> tuple[list[str], set[str]]:
    """Drives every endpoint once; returns every response body it saw and every worker token."""
    bodies, worker_tokens = [], set()
    job_ref = db.document(f"lead_runs/{RUN_ID}/jobs/default")

    def call(method, path, **kwargs):
        response = requests.request(method, stack.url + path, headers=stack.headers(), timeout=60, **kwargs)
        bodies.append(response.text)
        assert response.status_code < 500, (path, response.status_code, response.text)
        return response

    template = call("POST", "/api/templates", json={"name": "Leak", "subject": "Hi {{firstName}}", "body": "B {{company}}"}).json()
    # One lead a batch: many hand-offs, and a token alive long enough to be read.
    leads = [{"email": f"lead{i}@example.com", "firstName": f"L{i}", "company": "Acme"} for i in range(40)]
    call("POST", f"/api/lead-runs/{RUN_ID}/jobs", json={
        "action": "start", "mode": "background", "config": {"templateId": template["id"], "batchSize": 1}, "leads": leads})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = job_ref.get().to_dict() or {}
        assert "workerToken" not in stored
        worker_tokens.add(stored.get("workerTokenHash"))
        job = call("GET", f"/api/lead-runs/{RUN_ID}/jobs").json()["job"]
        if job["status"] in ("completed", "completed_with_errors"):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the run did not finish: {job}")
    call("GET", f"/api/lead-runs/{RUN_ID}/receipts?pageSize=50")
    call("GET", "/api/lead-runs?limit=5")
    call("POST", "/api/calendar/schedule", json={
        "slotSearch": {"timeZone": "Europe/London", "startDate": "2031-01-06", "days": 2}, "book": True,
        "runId": RUN_ID, "leadDocId": "lead-000000"})
    call("GET", "/api/health")
    hashes = worker_tokens - {None}
    in_flight = {seen["X-Worker-Token"] for seen in stack.handoffs.seen if seen.get("X-Worker-Token")}
    assert hashes <= {auth.worker_token_hash(token) for token in in_flight}
    return bodies, in_flight


def test_no_token_or_credential_is_stored_logged_or_returned(secured_stack, db):
    id_token = secured_stack.headers()["Authorization"].split(" ", 1)[1]
    bodies, worker_tokens = _full_run(secured_stack, db)
    assert worker_tokens, "no worker token was seen while the run went on"
    worker_token = sorted(worker_tokens)[0]
    assert len(worker_token) >= 43

    # The same tokens, pasted by an operator into an error report, must be scrubbed too.
    report = requests.post(
        secured_stack.url + "/api/telemetry/error",
        headers=secured_stack.headers(),
        json={"source": "manual", "description": f"token {worker_token} and Bearer {id_token}",
              "message": f"Authorization: Bearer {id_token}", "context": {"workerToken": worker_token}},
        timeout=30,
    )
    assert report.status_code == 202, report.text
    bodies.append(report.text)

    secrets = {"ID token": id_token, "ID token signature": id_token.rsplit(".", 1)[1]}
    secrets.update({f"worker token {i}": token for i, token in enumerate(sorted(worker_tokens))})
    for path, data in _every_document(db):
        text = json.dumps(data, default=str)
        for name, secret in secrets.items():
            assert secret not in text, f"{name} stored in {path}"
    for body in bodies:
        for name, secret in secrets.items():
            assert secret not in body, f"{name} returned in a response"
    logs = {p.name: p.read_text(errors="replace") for p in SECURED_LOG_DIR.glob("*.log")}
    assert logs, "the secured stack wrote no logs to scan"
    for file, text in logs.items():
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in {file}"
