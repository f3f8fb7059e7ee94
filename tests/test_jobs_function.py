"""The jobs and worker functions through functions-framework's real app, on the emulator:
validation, foreground runs, idempotent starts, transitions, the status view."""

from __future__ import annotations

import pytest

from shared.jobs import bodies
from tests.jobs_helpers import docs, everything, make_leads, make_template, start_background, start_request

RUN = "run-f"
URL = f"/api/lead-runs/{RUN}/jobs"


@pytest.fixture
def client(function_client):
    return function_client("jobs")


@pytest.fixture
def worker_client(function_client):
    return function_client("worker")


@pytest.fixture(autouse=True)
def template(db):
    make_template(db)
    make_template(db, "tpl-draft", draft_first=True)


def error_fields(response) -> list[str]:
    return [d.get("field") for d in response.get_json()["error"]["details"]]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"action": "explode"}, 400, "action"),
        ({}, 400, "action"),
        ([{"action": "start"}], 400, "(body)"),
        (start_request(make_leads(1), mode="sideways"), 400, "mode"),
        ({"action": "start", "config": {"templateId": "tpl-1"}, "leads": make_leads(1)}, 400, "mode"),
        (start_request(make_leads(1), templateId="nope"), 400, "config.templateId"),
        (start_request(make_leads(1), templateId="../x"), 400, "config.templateId"),
        (start_request(make_leads(1), batchSize=0), 400, "config.batchSize"),
        (start_request(make_leads(1), batchSize="10"), 400, "config.batchSize"),
        (start_request(make_leads(1), maxAttempts=99), 400, "config.maxAttempts"),
        (start_request(make_leads(1), draftFirst="yes"), 400, "config.draftFirst"),
        (start_request([{"email": 7}]), 400, "leads.0.email"),
        (start_request([{"firstName": "No email"}]), 400, "leads.0.email"),
        (start_request([{"email": "a@example.com", "shoeSize": 9}]), 400, "leads.0.shoeSize"),
        (start_request([{"email": "a@example.com", "fields": {"bad key": "x"}}]), 400, "leads.0.fields"),
        (start_request([]), 400, "leads"),
        (start_request(make_leads(1), mode="foreground") | {"extra": 1}, 400, "extra"),
        ({"action": "pause", "mode": "background"}, 400, "mode"),
        (start_request(None), 404, None),
    ],
)
def test_bad_requests_get_their_4xx_and_write_nothing(client, db, body, status, field):
    before = everything(db)
    response = client.post(URL, json=body)
    assert response.status_code == status, response.get_json()
    if field:
        assert field in error_fields(response)
    assert everything(db) == before


def test_too_many_leads_is_400_before_anything_is_written(client, db):
    before = everything(db)
    response = client.post(URL, json=start_request([{"email": "a@x.io"}] * (bodies.MAX_LEADS + 1)))
    assert response.status_code == 400 and "leads" in error_fields(response)
    assert everything(db) == before


def test_not_json_is_415_and_a_bad_run_id_is_400(client, db):
    assert client.post(URL, data="action=start", content_type="text/plain").status_code == 415
    response = client.post("/api/lead-runs/bad.id/jobs", json={"action": "pause"})
    assert response.status_code == 400 and "runId" in error_fields(response)
    assert client.get("/api/lead-runs/bad.id/jobs").status_code == 400
    assert everything(db) == sorted(["templates/tpl-1", "templates/tpl-draft"])


def test_unknown_run_is_404(client):
    assert client.get(URL).status_code == 404
    assert client.post(URL, json={"action": "pause"}).status_code == 404


def test_foreground_run_returns_each_leads_outcome(client, db):
    leads = make_leads(5)
    leads[2]["firstName"] = ""
    leads[3]["email"] = "not-an-address"
    response = client.post(URL, json=start_request(leads, mode="foreground"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "sent"), (1, "sent"), (2, "failed"), (3, "failed"), (4, "sent")
    ]
    assert body["results"][2]["error"] == "missing template variables: firstName"
    assert body["results"][0] == {
        "index": 0, "leadDocId": "lead-000000", "email": "lead0@example.com", "status": "sent",
        "actionId": "email-send", "error": None,
    }
    job = body["job"]
    assert job["status"] == "completed_with_errors" and job["mode"] == "foreground"
    assert job["counts"] == {"pending": 0, "sent": 3, "drafted": 0, "failed": 2, "skipped": 0}
    assert job["nextIndex"] == job["totalLeads"] == 5
    assert {d["code"] for d in job["diagnostics"]} == {"missing_variables", "invalid_email"}
    assert len(docs(db, "mail")) == 3
    run = db.collection("lead_runs").document(RUN).get().to_dict()
    assert run["totalLeads"] == 5 and run["status"] == "completed_with_errors" and run["counts"] == job["counts"]
    assert run["name"] == RUN and run["templateId"] == "tpl-1"


def test_status_view_has_the_documented_shape_and_never_the_token(client, db):
    start_background(db, RUN, make_leads(3), batchSize=2)
    response = client.get(URL)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    job = response.get_json()["job"]
    assert set(job) == {
        "id", "runId", "mode", "status", "nextIndex", "totalLeads", "counts", "diagnostics", "attemptsByLead",
        "stalled", "config", "leaseExpiresAt", "createdAt", "updatedAt", "startedAt", "finishedAt", "progressAt",
        "writes", "wakeAt", "waitReason", "senderId",
    }
    assert job["status"] == "queued" and job["stalled"] is False and job["nextIndex"] == 0
    assert job["wakeAt"] is None and job["waitReason"] is None
    assert job["config"] == {"templateId": "tpl-1", "batchSize": 2, "maxAttempts": 3, "draftFirst": None,
                             "timeBudgetSeconds": None, "senderId": None, "sendWindow": None,
                             "skipIfContactedWithinDays": None}
    stored = db.collection("lead_runs").document(RUN).collection("jobs").document("default").get().to_dict()
    assert stored["workerTokenHash"] and stored["workerTokenHash"] not in response.get_data(as_text=True)
    assert "workerToken" not in response.get_data(as_text=True)


def test_foreground_above_the_bound_is_413_pointing_to_background(client, db, configure):
    configure(FOREGROUND_MAX_LEADS="3")
    before = everything(db)
    response = client.post(URL, json=start_request(make_leads(4), mode="foreground"))
    assert response.status_code == 413
    assert "background" in response.get_json()["error"]["message"]
    assert everything(db) == before


def test_the_same_start_again_is_answered_not_rerun(client, db):
    first = client.post(URL, json=start_request(make_leads(3), mode="foreground"))
    again = client.post(URL, json=start_request(make_leads(3), mode="foreground"))
    assert first.status_code == again.status_code == 200
    assert again.get_json()["results"] == first.get_json()["results"]
    assert again.get_json()["job"]["writes"] == first.get_json()["job"]["writes"]
    assert len(docs(db, "mail")) == 3


def test_other_leads_for_an_existing_run_are_409(client, db):
    client.post(URL, json=start_request(make_leads(3), mode="foreground"))
    response = client.post(URL, json=start_request(make_leads(4), mode="foreground"))
    assert response.status_code == 409 and "other leads" in response.get_json()["error"]["message"]


def test_a_different_start_while_a_job_is_live_is_409(client, db):
    start_background(db, RUN, make_leads(3))
    response = client.post(URL, json=start_request(make_leads(3), batchSize=7))
    assert response.status_code == 409
    assert "queued" in response.get_json()["error"]["message"]


def test_a_finished_run_can_be_started_again_for_its_pending_leads(client, db):
    start_background(db, RUN, make_leads(4))
    client.post(URL, json={"action": "cancel"})
    response = client.post(URL, json=start_request(None, mode="foreground"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["job"]["counts"]["sent"] == 4 and len(docs(db, "mail")) == 4


def test_draft_first_template_only_drafts(client, db):
    response = client.post(URL, json=start_request(make_leads(3), mode="foreground", templateId="tpl-draft"))
    assert [r["status"] for r in response.get_json()["results"]] == ["drafted"] * 3
    assert [r["actionId"] for r in response.get_json()["results"]] == ["email-draft"] * 3
    assert docs(db, "mail") == [] and len(docs(db, "mail_drafts")) == 3


def test_the_jobs_draft_first_overrides_the_template(client, db):
    response = client.post(URL, json=start_request(make_leads(2), mode="foreground", draftFirst=True))
    assert response.get_json()["job"]["counts"]["drafted"] == 2 and docs(db, "mail") == []


@pytest.mark.parametrize("action", ["pause", "resume", "retry", "cancel"])
def test_illegal_transitions_are_409_naming_the_status(client, db, action):
    client.post(URL, json=start_request(make_leads(2), mode="foreground"))
    before = everything(db)
    response = client.post(URL, json={"action": action})
    assert response.status_code == 409
    assert "completed" in response.get_json()["error"]["message"]
    assert everything(db) == before


def test_pause_then_cancel_then_pause_again(client, db):
    start_background(db, RUN, make_leads(3))
    paused = client.post(URL, json={"action": "pause"})
    assert paused.status_code == 200 and paused.get_json()["job"]["status"] == "paused"
    assert client.post(URL, json={"action": "pause"}).status_code == 200  # repeating is harmless
    cancelled = client.post(URL, json={"action": "cancel"})
    assert cancelled.get_json()["job"]["status"] == "cancelled" and cancelled.get_json()["job"]["finishedAt"]
    response = client.post(URL, json={"action": "pause"})
    assert response.status_code == 409 and "cancelled" in response.get_json()["error"]["message"]


def test_worker_requires_its_token(worker_client, db):
    captured = start_background(db, RUN, make_leads(2))
    _, token, lease = captured.calls[0]
    start_background(db, "run-other", make_leads(2))
    before = everything(db)
    url = f"/api/lead-runs/{RUN}/jobs/worker"
    assert worker_client.post(url).status_code == 401
    assert worker_client.post(url, headers={"X-Worker-Token": "x" * 43}).status_code == 403
    other = worker_client.post("/api/lead-runs/run-other/jobs/worker", headers={"X-Worker-Token": token})
    assert other.status_code == 403
    assert worker_client.post("/api/lead-runs/nope/jobs/worker", headers={"X-Worker-Token": token}).status_code == 403
    assert worker_client.get(url).status_code == 405
    assert everything(db) == before


def test_worker_refuses_a_paused_job_and_a_stale_hand_off(worker_client, db, client):
    captured = start_background(db, RUN, make_leads(2))
    _, token, lease = captured.calls[0]
    url = f"/api/lead-runs/{RUN}/jobs/worker"
    client.post(URL, json={"action": "pause"})
    before = everything(db)
    response = worker_client.post(url, headers={"X-Worker-Token": token, "X-Worker-Lease": lease})
    assert response.status_code == 409 and "paused" in response.get_json()["error"]["message"]
    assert everything(db) == before
