"""Review drafts, then send: /api/lead-runs/{runId}/drafts… through the review function's real
app against the emulator; exactly-once sends under concurrency; per-lead retry."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json

import pytest

from shared.consent import service as consent
from shared.consent.models import SuppressionCreate
from shared.jobs import bodies, service as jobs
from shared.review import service as review
from shared.store import runs as repo
from tests.jobs_helpers import Captured, all_leads, docs, make_leads, make_template, start_request

RUN = "run-rev"


@pytest.fixture
def client(function_client):
    return function_client("review")


@pytest.fixture
def drafted(db):
    """A finished foreground run of 3 leads whose template drafts first."""
    make_template(db, draft_first=True)
    jobs.post(db, RUN, bodies.parse_request(start_request(make_leads(3), mode="foreground")))
    assert [lead["status"] for lead in all_leads(db, RUN)] == ["drafted"] * 3
    return RUN


def url(lead="lead-000000", action=""):
    return f"/api/lead-runs/{RUN}/drafts/{lead}{action}"


def test_list_shows_each_draft_as_the_recipient_sees_it_and_pages(client, drafted):
    first = client.get(f"/api/lead-runs/{RUN}/drafts", query_string={"pageSize": 2}).get_json()
    assert [d["leadDocId"] for d in first["drafts"]] == ["lead-000000", "lead-000001"]
    draft = first["drafts"][0]
    assert draft["to"] == "lead0@example.com" and draft["subject"] == "Hi Lead0" and draft["text"] == "Hello Lead0 at Acme"
    assert draft["version"] == 1 and draft["status"] == "pending" and draft["lead"]["company"] == "Acme"
    second = client.get(f"/api/lead-runs/{RUN}/drafts", query_string={"pageSize": 2, "pageToken": first["nextPageToken"]}).get_json()
    assert [d["leadDocId"] for d in second["drafts"]] == ["lead-000002"] and second["nextPageToken"] is None


def test_list_bad_input(client, drafted):
    assert client.get("/api/lead-runs/nope/drafts").status_code == 404
    assert client.get(f"/api/lead-runs/{RUN}/drafts", query_string={"pageSize": 0}).status_code == 400
    assert client.get(f"/api/lead-runs/{RUN}/drafts", query_string={"pageToken": "junk!"}).status_code == 400


def test_edit_needs_the_current_version_and_bumps_it(client, drafted):
    response = client.patch(url(), json={"subject": "Edited\nsubject", "body": "New <b>body</b>\n\nBye"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["version"] == 2 and response.headers["ETag"] == '"2"'
    assert body["subject"] == "Edited subject" and body["html"] == "<p>New &lt;b&gt;body&lt;/b&gt;</p><p>Bye</p>"
    stale = client.patch(url(), json={"subject": "Again"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert client.patch(url(), json={"subject": "Again", "version": 2}).get_json()["version"] == 3


@pytest.mark.parametrize("payload, headers, status", [
    ({"subject": "x"}, {}, 400),  # no version
    ({}, {"If-Match": '"1"'}, 400),
    ({"subject": ""}, {"If-Match": '"1"'}, 400),
    ({"subject": "x", "extra": 1}, {"If-Match": '"1"'}, 400),
    ({"subject": 5}, {"If-Match": '"1"'}, 400),
    ({"subject": "x"}, {"If-Match": "abc"}, 400),
    ({"body": "x" * 50_001}, {"If-Match": '"1"'}, 400),
])
def test_edit_bad_input_is_400_and_changes_nothing(client, db, drafted, payload, headers, status):
    response = client.patch(url(), json=payload, headers=headers)
    assert response.status_code == status, response.get_json()
    assert client.get(f"/api/lead-runs/{RUN}/drafts").get_json()["drafts"][0]["version"] == 1


def test_unknown_lead_or_run_is_404(client, drafted):
    assert client.patch(url("lead-000099"), json={"subject": "x"}, headers={"If-Match": '"1"'}).status_code == 404
    assert client.post(url("lead-000099", ":send")).status_code == 404
    assert client.post("/api/lead-runs/nope/drafts/lead-000000:send").status_code == 404


def sha(mail):
    content = {"to": mail["to"], "subject": mail["message"]["subject"], "text": mail["message"]["text"], "html": mail["message"]["html"]}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_send_sends_the_current_version_once_and_records_it(client, db, drafted):
    client.patch(url(), json={"body": "Reviewed body"}, headers={"If-Match": '"1"'})
    sent = client.post(url(action=":send"))
    assert sent.status_code == 200, sent.get_json()
    outcome = sent.get_json()
    assert outcome["outcome"] == "sent" and outcome["version"] == 2
    (mail,) = docs(db, "mail")
    assert mail["message"]["text"] == "Reviewed body" and mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    receipt = repo.action_ref(db, RUN, "lead-000000", "email-send").get().to_dict()
    assert receipt["type"] == "email.send" and receipt["draftVersion"] == 2
    assert receipt["contentSha256"] == outcome["contentSha256"] == sha(mail)
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "sent"
    counts = repo.get_job(db, RUN)["counts"]
    assert counts["drafted"] == 2 and counts["sent"] == 1 and repo.get_run(db, RUN)["counts"]["sent"] == 1
    again = client.post(url(action=":send"), json={})
    assert again.status_code == 200 and again.get_json()["outcome"] == "already_sent" and len(docs(db, "mail")) == 1
    assert client.patch(url(), json={"subject": "late"}, headers={"If-Match": '"2"'}).status_code == 409


def test_send_with_a_stale_version_is_409(client, db, drafted):
    client.patch(url(), json={"subject": "New"}, headers={"If-Match": '"1"'})
    assert client.post(url(action=":send"), json={"version": 1}).status_code == 409
    assert client.post(url(action=":send"), headers={"If-Match": '"1"'}).status_code == 409
    assert docs(db, "mail") == []
    assert client.post(url(action=":send"), json={"version": "2"}).status_code == 400


def test_an_edited_draft_sent_concurrently_is_one_email_with_the_edit(function_client, db, drafted):
    function_client("review").patch(url(), json={"subject": "Edited"}, headers={"If-Match": '"1"'})

    def send(_):
        return function_client("review").post(url(action=":send")).get_json()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        outcomes = [o["outcome"] for o in pool.map(send, range(6))]
    assert outcomes.count("sent") == 1 and set(outcomes) <= {"sent", "already_sent"}, outcomes
    (mail,) = docs(db, "mail")
    assert mail["message"]["subject"] == "Edited"


def test_suppression_is_checked_again_at_send_time(client, db, drafted):
    consent.add(db, SuppressionCreate(email="lead1@example.com"), None)
    outcome = client.post(url("lead-000001", ":send")).get_json()
    assert outcome["outcome"] == "skipped" and outcome["reason"] == "suppressed"
    assert docs(db, "mail") == [] and repo.get_lead(db, RUN, "lead-000001")["status"] == "skipped"
    assert repo.action_ref(db, RUN, "lead-000001", "email-skip").get().get("type") == "email.skip"


def test_discard_skips_the_lead_and_it_cannot_be_sent(client, db, drafted):
    response = client.post(url(action=":discard"))
    assert response.status_code == 200 and response.get_json()["status"] == "discarded"
    assert repo.get_lead(db, RUN, "lead-000000")["status"] == "skipped"
    assert client.post(url(action=":send")).status_code == 409
    assert client.post(url(action=":discard")).status_code == 409
    assert [d["leadDocId"] for d in client.get(f"/api/lead-runs/{RUN}/drafts").get_json()["drafts"]] == ["lead-000001", "lead-000002"]
    assert docs(db, "mail") == []


def test_bulk_send_is_exactly_once_per_lead_even_when_repeated_concurrently(function_client, db, drafted):
    ids = ["lead-000000", "lead-000001", "lead-000002", "lead-000001", "lead-000077"]

    def bulk(_):
        response = function_client("review").post(f"/api/lead-runs/{RUN}/drafts:send", json={"leadDocIds": ids})
        assert response.status_code == 200, response.get_json()
        return {r["leadDocId"]: r["outcome"] for r in response.get_json()["results"]}

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(bulk, range(3)))
    for lead in ids[:3]:
        assert sorted(a[lead] for a in answers) == ["already_sent", "already_sent", "sent"], (lead, answers)
    assert all(a["lead-000077"] == "not_found" for a in answers)
    assert sorted(m["to"] for m in docs(db, "mail")) == [f"lead{i}@example.com" for i in range(3)]


@pytest.mark.parametrize("payload", [{}, {"leadDocIds": []}, {"leadDocIds": ["../x"]}, {"leadDocIds": ["a"] * 101}, {"leadDocIds": "a"}])
def test_bulk_send_bad_input_is_400(client, drafted, payload):
    assert client.post(f"/api/lead-runs/{RUN}/drafts:send", json=payload).status_code == 400


def test_every_review_endpoint_needs_a_token_when_auth_is_on(client, configure):
    configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com")
    assert client.get(f"/api/lead-runs/{RUN}/drafts").status_code == 401
    assert client.patch(url(), json={"subject": "x"}).status_code == 401
    assert client.post(url(action=":send")).status_code == 401
    assert client.post(url(action=":discard")).status_code == 401
    assert client.post(f"/api/lead-runs/{RUN}/drafts:send", json={"leadDocIds": ["a"]}).status_code == 401
    assert client.post(f"/api/lead-runs/{RUN}/leads/lead-000000:retry").status_code == 401


# --- per-lead retry ------------------------------------------------------------------


def test_retry_requeues_one_failed_lead_and_restarts_the_ended_job(db):
    make_template(db)
    leads = make_leads(3)
    leads[0]["email"], leads[2]["email"] = "broken-0", "broken-2"
    jobs.post(db, "run-r", bodies.parse_request(start_request(leads, mode="foreground")))
    assert repo.get_job(db, "run-r")["status"] == "completed_with_errors"
    captured = Captured()
    result = review.retry_lead(db, "run-r", "lead-000002", dispatcher=captured)
    assert result.status == "pending" and result.job_status == "running" and len(captured.calls) == 1
    statuses = [lead["status"] for lead in all_leads(db, "run-r")]
    assert statuses == ["failed", "sent", "pending"]  # only the one asked for
    job = repo.get_job(db, "run-r")
    assert job["nextIndex"] == 2 and job["counts"]["failed"] == 1 and job["counts"]["pending"] == 1


def test_retry_of_a_lead_that_did_not_fail_is_409(client, db, drafted):
    assert client.post(f"/api/lead-runs/{RUN}/leads/lead-000000:retry").status_code == 409
    assert client.post(f"/api/lead-runs/{RUN}/leads/lead-000099:retry").status_code == 404
    assert client.post(f"/api/lead-runs/{RUN}/leads/bad..id:retry").status_code in (400, 404)


def test_a_reviewed_send_honours_the_runs_contact_window(client, db):
    make_template(db, draft_first=True)
    jobs.post(db, RUN, bodies.parse_request(start_request(make_leads(2), mode="foreground", skipIfContactedWithinDays=7)))
    # Another run sends to lead0 while its draft here waits for review.
    jobs.post(db, "run-sent", bodies.parse_request(start_request(make_leads(1), mode="foreground", draftFirst=False)))
    assert client.post(url("lead-000000", ":send")).get_json()["reason"] == "recently_contacted"
    assert client.post(url("lead-000001", ":send")).get_json()["outcome"] == "sent"
