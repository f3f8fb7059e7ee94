"""receipts through functions-framework's real app, against the emulator.

Documents are seeded in the shape of docs/data-model.md, the contract the jobs API
and the worker write, with batched writes. Query counts are checked twice: by the
read model's own tally, and by counting the Firestore RPCs actually sent.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

from shared import pagination
from shared.store import receipts as receipts_store
from shared.store import runs as paths

from tests.jobs_helpers import assert_error

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
WORKER_TOKEN = "wt-5ecret-never-in-a-response-7f3a9c"
READ_RPCS = (
    "batch_get_documents", "run_query", "get_document", "list_documents",
    "run_aggregation_query", "partition_query", "list_collection_ids",
)


# --- seeding --------------------------------------------------------------------


class Seeder:
    """Batched writes of runs, leads, actions and jobs, field names from docs/data-model.md."""

    def __init__(self, db):
        self.db = db
        self.batch = db.batch()
        self.pending = 0

    def set(self, ref, doc: dict[str, Any]) -> None:
        self.batch.set(ref, doc)
        self.pending += 1
        if self.pending == 450:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.batch.commit()
        self.batch, self.pending = self.db.batch(), 0


def lead_id(index: int) -> str:
    return f"lead-{index:06d}"


def seed_run(
    db, run_id: str, leads: int = 0, actions_per_lead: int = 0, *, created: dt.datetime = T0,
    status_of=lambda i: "sent", job: dict[str, Any] | None = None, name: str | None = None,
) -> None:
    seeder = Seeder(db)
    counts = {"pending": 0, "sent": 0, "drafted": 0, "failed": 0, "skipped": 0}
    for i in range(leads):
        counts[status_of(i)] += 1
    seeder.set(paths.run_ref(db, run_id), {
        "name": name or run_id, "createdAt": created, "updatedAt": created + dt.timedelta(minutes=5),
        "status": "completed" if leads else "idle", "totalLeads": leads, "templateId": "tpl-1", "counts": counts,
    })
    for i in range(leads):
        status = status_of(i)
        seeder.set(paths.lead_ref(db, run_id, lead_id(i)), {
            "index": i, "email": f"lead{i}@example.com", "firstName": f"First{i}", "lastName": f"Last{i}",
            "company": "Acme", "timeZone": "Europe/Paris", "fields": {"title": "CTO", "row": i},
            "status": status, "attempts": 1, "lastError": "bounced" if status == "failed" else None,
            "updatedAt": created + dt.timedelta(seconds=i),
        })
        for step in range(actions_per_lead):
            seed_action(seeder, db, run_id, i, f"step-{step}", at=created + dt.timedelta(seconds=i, milliseconds=step))
    if job is not None:
        seeder.set(paths.job_ref(db, run_id), job)
    seeder.flush()


def seed_action(seeder: Seeder, db, run_id: str, index: int, action_id: str, at: dt.datetime, **extra) -> None:
    seeder.set(paths.action_ref(db, run_id, lead_id(index), action_id), {
        "type": "email.send", "status": "sent", "at": at, "attempt": 1,
        "idempotencyKey": f"{run_id}:{lead_id(index)}:{action_id}", "summary": f"sent to lead{index}@example.com",
        "error": None, "providerIds": {"mailId": f"mail-{index}-{action_id}"},
        "runId": run_id, "leadDocId": lead_id(index), "leadIndex": index, **extra,
    })


def job_doc(**overrides) -> dict[str, Any]:
    return {
        "status": "running", "nextIndex": 3, "totalLeads": 5,
        "counts": {"pending": 2, "sent": 3, "drafted": 0, "failed": 0, "skipped": 0},
        "diagnostics": [{"at": T0, "leadIndex": 1, "leadDocId": lead_id(1), "code": "transient", "message": "retrying"}],
        "attemptsByLead": {lead_id(1): 2}, "workerToken": WORKER_TOKEN,
        "config": {"templateId": "tpl-1", "batchSize": 25, "maxAttempts": 3, "draftFirst": False,
                   "timeBudgetSeconds": 50, "secretish": WORKER_TOKEN},
        "lease": {"owner": "worker-" + WORKER_TOKEN, "expiresAt": dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)},
        "createdAt": T0, "updatedAt": T0, "startedAt": T0, "finishedAt": None,
        **overrides,
    }


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture
def client(function_client):
    return function_client("receipts")


@pytest.fixture
def rpcs(monkeypatch):
    """Counts the read RPCs sent to Firestore by anything in this process."""
    sent: list[str] = []
    for name in READ_RPCS:
        original = getattr(FirestoreClient, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            sent.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(FirestoreClient, name, spy)
    return sent


def get_page(client, run_id: str, **query):
    response = client.get(f"/api/lead-runs/{run_id}/receipts", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def read_all(client, run_id: str, rpcs: list[str], **query) -> tuple[list[dict], list[int]]:
    """Every lead of a run, page by page, and the RPC count of each page."""
    leads, per_page, token = [], [], None
    while True:
        before = len(rpcs)
        with receipts_store.counting() as tally:
            body = get_page(client, run_id, **query, **({"pageToken": token} if token else {}))
        per_page.append(len(rpcs) - before)
        assert tally.queries == per_page[-1], "the read model's tally disagrees with the RPCs sent"
        leads += body["leads"]
        token = body["nextPageToken"]
        if not token:
            return leads, per_page


# --- receipts -------------------------------------------------------------------------


def test_run_with_no_leads_and_no_job(client, db, rpcs):
    seed_run(db, "empty-run")
    body = get_page(client, "empty-run")
    assert body == {
        "run": {
            "id": "empty-run", "name": "empty-run", "status": "idle", "totalLeads": 0, "templateId": "tpl-1",
            "counts": {"pending": 0, "sent": 0, "drafted": 0, "failed": 0, "skipped": 0},
            "createdAt": "2026-03-01T09:00:00.000000Z", "updatedAt": "2026-03-01T09:05:00.000000Z",
        },
        "job": None,
        "leads": [],
        "nextPageToken": None,
    }
    assert rpcs == ["batch_get_documents", "run_query"]  # no leads: no actions query


def test_leads_without_actions_have_an_empty_list(client, db):
    seed_run(db, "quiet", leads=3, status_of=lambda i: "pending")
    body = get_page(client, "quiet")
    assert [lead["id"] for lead in body["leads"]] == [lead_id(0), lead_id(1), lead_id(2)]
    assert all(lead["actions"] == [] for lead in body["leads"])
    first = body["leads"][0]
    assert first == {
        "id": lead_id(0), "index": 0, "email": "lead0@example.com", "firstName": "First0", "lastName": "Last0",
        "company": "Acme", "timeZone": "Europe/Paris", "fields": {"title": "CTO", "row": 0}, "status": "pending",
        "attempts": 1, "lastError": None, "updatedAt": "2026-03-01T09:00:00.000000Z", "actions": [],
    }
    assert body["nextPageToken"] is None


def test_250_leads_in_three_pages_every_lead_once_in_order(client, db, rpcs):
    seed_run(db, "big", leads=250, actions_per_lead=2)
    leads, per_page = read_all(client, "big", rpcs, pageSize=100)
    assert [lead["index"] for lead in leads] == list(range(250))
    assert len({lead["id"] for lead in leads}) == 250
    assert per_page == [3, 3, 3]
    for lead in leads:
        assert [a["id"] for a in lead["actions"]] == ["step-1", "step-0"]  # newest first
        assert all(a["providerIds"]["mailId"].startswith(f"mail-{lead['index']}-") for a in lead["actions"])


def test_queries_per_page_do_not_grow_with_page_size(client, db, rpcs):
    seed_run(db, "sizes", leads=120, actions_per_lead=1)
    for size in (1, 7, 50, 120, 200):
        before = len(rpcs)
        body = get_page(client, "sizes", pageSize=size)
        assert len(body["leads"]) == min(size, 120)
        assert len(rpcs) - before == 3, size


def test_action_receipt_shape_and_newest_first(client, db):
    seed_run(db, "acts", leads=1)
    seeder = Seeder(db)
    seed_action(seeder, db, "acts", 0, "email-draft", at=T0, type="email.draft", status="drafted",
                providerIds={"draftId": "d-1"})
    seed_action(seeder, db, "acts", 0, "calendar-book-1", at=T0 + dt.timedelta(hours=1), type="calendar.book",
                status="booked", providerIds={"bookingId": "b-1", "eventId": None})
    seed_action(seeder, db, "acts", 0, "email-send", at=T0 + dt.timedelta(minutes=1), attempt=2,
                status="failed", error="mailbox full", summary="send failed")
    seeder.flush()
    actions = get_page(client, "acts")["leads"][0]["actions"]
    assert [a["id"] for a in actions] == ["calendar-book-1", "email-send", "email-draft"]
    assert actions[1] == {
        "id": "email-send", "type": "email.send", "status": "failed", "at": "2026-03-01T09:01:00.000000Z",
        "attempt": 2, "summary": "send failed", "error": "mailbox full",
        "providerIds": {"mailId": "mail-0-email-send"}, "idempotencyKey": "acts:lead-000000:email-send",
    }
    assert actions[0]["providerIds"] == {"bookingId": "b-1", "eventId": None}


def test_actions_of_another_run_never_show(client, db):
    seed_run(db, "run-a", leads=2, actions_per_lead=1)
    seed_run(db, "run-b", leads=2, actions_per_lead=1)
    # A writer bug: an action under run-b claims to belong to run-a.
    seeder = Seeder(db)
    seed_action(seeder, db, "run-b", 0, "stray", at=T0, runId="run-a")
    seeder.flush()
    leads = get_page(client, "run-a")["leads"]
    assert [[a["id"] for a in lead["actions"]] for lead in leads] == [["step-0"], ["step-0"]]


def test_status_filter_pages_through_only_that_status(client, db, rpcs):
    failed = {i for i in range(250) if i % 6 == 0}  # 42 leads spread over the whole run
    seed_run(db, "mixed", leads=250, actions_per_lead=1, status_of=lambda i: "failed" if i in failed else "sent")
    leads, per_page = read_all(client, "mixed", rpcs, pageSize=100, status="failed")
    assert [lead["index"] for lead in leads] == sorted(failed)
    assert all(lead["status"] == "failed" and lead["lastError"] == "bounced" for lead in leads)
    assert all([a["id"] for a in lead["actions"]] == ["step-0"] for lead in leads)
    # Scattered leads are read with an `in` query (at most 30 a page), never a range
    # that would read the actions of every lead in between.
    assert len(per_page) == 2 and all(n == 3 for n in per_page)


def test_status_filter_reads_only_the_page_leads_actions(client, db):
    seed_run(db, "sparse", leads=200, actions_per_lead=1, status_of=lambda i: "failed" if i in (0, 199) else "sent")
    with receipts_store.counting() as tally:
        body = get_page(client, "sparse", status="failed")
    assert [lead["index"] for lead in body["leads"]] == [0, 199]
    assert tally.documents == 1 + 2 + 2  # the run (no job), 2 leads, their 2 actions: not 200


def test_an_empty_status_filter_means_every_lead(client, db):
    seed_run(db, "all", leads=2)
    assert len(get_page(client, "all", status="")["leads"]) == 2


def test_job_summary_is_an_allow_list_and_never_leaks_the_worker_token(client, db):
    seed_run(db, "secret", leads=2, actions_per_lead=1, job=job_doc())
    response = client.get("/api/lead-runs/secret/receipts")
    assert response.status_code == 200
    assert WORKER_TOKEN not in response.get_data(as_text=True)
    job = response.get_json()["job"]
    assert set(job) == {
        "status", "nextIndex", "totalLeads", "counts", "diagnostics", "config", "stalled", "leaseExpiresAt",
        "createdAt", "updatedAt", "startedAt", "finishedAt", "wakeAt", "waitReason", "senderId",
    }
    assert job["status"] == "running" and job["nextIndex"] == 3 and job["stalled"] is False
    assert job["wakeAt"] is None and job["waitReason"] is None and job["senderId"] is None
    assert job["config"] == {"templateId": "tpl-1", "batchSize": 25, "maxAttempts": 3, "draftFirst": False,
                             "timeBudgetSeconds": 50.0, "senderId": None, "sendWindow": None,
                             "skipIfContactedWithinDays": None}
    assert job["diagnostics"] == [{"at": "2026-03-01T09:00:00.000000Z", "leadIndex": 1, "leadDocId": lead_id(1),
                                   "code": "transient", "message": "retrying"}]
    assert job["startedAt"] == "2026-03-01T09:00:00.000000Z" and job["finishedAt"] is None
    assert job["leaseExpiresAt"].endswith("Z")


def test_a_running_job_with_a_lapsed_lease_is_stalled(client, db):
    expired = {"owner": "w", "expiresAt": dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)}
    seed_run(db, "stuck", leads=1, job=job_doc(lease=expired))
    assert get_page(client, "stuck")["job"]["stalled"] is True


def test_unknown_run_is_404_after_one_query(client, rpcs):
    response = client.get("/api/lead-runs/no-such-run/receipts")
    assert assert_error(response, 404)["code"] == "not_found"
    assert rpcs == ["batch_get_documents"]


def test_bad_page_tokens_are_400(client, db, rpcs):
    seed_run(db, "run-a", leads=3)
    seed_run(db, "run-b", leads=3)
    other_run = get_page(client, "run-b", pageSize=1)["nextPageToken"]
    other_filter = get_page(client, "run-a", pageSize=1, status="sent")["nextPageToken"]
    runs_token = client.get("/api/lead-runs", query_string={"limit": 1}).get_json()["nextPageToken"]
    assert other_run and other_filter and runs_token
    forged = [
        pagination.encode(paths_scope, position)
        for paths_scope, position in [
            ("lead-runs/run-a/receipts?status=", {"index": "1", "id": lead_id(1)}),
            ("lead-runs/run-a/receipts?status=", {"index": -1, "id": lead_id(1)}),
            ("lead-runs/run-a/receipts?status=", {"index": True, "id": lead_id(1)}),
            ("lead-runs/run-a/receipts?status=", {"index": 1, "id": "../../x"}),
            ("lead-runs/run-a/receipts?status=", {"index": 1}),
        ]
    ]
    before = len(rpcs)
    for token in ["garbage!!", "e30", "x" * 2001, other_run, other_filter, runs_token, *forged]:
        response = client.get("/api/lead-runs/run-a/receipts", query_string={"pageToken": token})
        assert_error(response, 400, "pageToken")
    assert len(rpcs) == before, "a bad token must be refused before any read"


@pytest.mark.parametrize("query, field", [
    ({"pageSize": "0"}, "pageSize"), ({"pageSize": "201"}, "pageSize"), ({"pageSize": "ten"}, "pageSize"),
    ({"pageSize": "-5"}, "pageSize"), ({"status": "bogus"}, "status"), ({"status": "FAILED"}, "status"),
    ({"unknown": "1"}, "unknown"),
])
def test_bad_receipts_query_is_400(client, db, query, field):
    seed_run(db, "r1", leads=1)
    assert_error(client.get("/api/lead-runs/r1/receipts", query_string=query), 400, field)


@pytest.mark.parametrize("path, status", [
    ("/api/lead-runs/../receipts", 400),
    ("/api/lead-runs/..%2Fr1/receipts", 404),             # an encoded slash is still a slash
    ("/api/lead-runs/r1%2Fleads%2Flead-000000/receipts", 404),
    ("/api/lead-runs/a/b/receipts", 404),
    ("/api/lead-runs/..%2E/receipts", 400),
    ("/api/lead-runs/__name__/receipts", 400),
    ("/api/lead-runs/.hidden/receipts", 400),
    ("/api/lead-runs/r%201/receipts", 400),
    ("/api/lead-runs/r1%00/receipts", 400),
    ("/api/lead-runs/" + "a" * 129 + "/receipts", 400),
])
def test_path_tricks_in_run_id_never_reach_firestore(client, db, rpcs, path, status):
    seed_run(db, "r1", leads=1)
    before = len(rpcs)
    response = client.get(path)
    assert response.status_code == status, (path, response.get_json())
    assert len(rpcs) == before
    if status == 400:
        assert_error(response, 400, "runId")


def test_receipts_need_a_signed_in_user(client, configure):
    configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com")
    assert_error(client.get("/api/lead-runs/r1/receipts"), 401)
    assert_error(client.get("/api/lead-runs"), 401)


def test_receipts_are_read_only(client):
    response = client.post("/api/lead-runs/r1/receipts", json={})
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert response.headers["Cache-Control"] == "no-store"


# --- runs listing ----------------------------------------------------------------------


def test_runs_newest_first_paginated_every_run_once(client, db, rpcs):
    for i in range(7):
        seed_run(db, f"run-{i}", created=T0 + dt.timedelta(minutes=i))
    seed_run(db, "tie-b", created=T0 + dt.timedelta(minutes=3))  # same createdAt as run-3
    seen, token = [], None
    while True:
        before = len(rpcs)
        body = client.get("/api/lead-runs", query_string={"limit": 3, **({"pageToken": token} if token else {})}).get_json()
        assert len(rpcs) - before == 1
        seen += [run["id"] for run in body["runs"]]
        token = body["nextPageToken"]
        if not token:
            break
    assert seen == ["run-6", "run-5", "run-4", "tie-b", "run-3", "run-2", "run-1", "run-0"]


def test_runs_listing_shape_and_default_limit(client, db):
    for i in range(22):
        seed_run(db, f"run-{i:02d}", created=T0 + dt.timedelta(seconds=i), job=job_doc() if i == 21 else None)
    body = client.get("/api/lead-runs").get_json()
    assert len(body["runs"]) == 20 and body["nextPageToken"]
    assert body["runs"][0] == {
        "id": "run-21", "name": "run-21", "status": "idle", "totalLeads": 0, "templateId": "tpl-1",
        "counts": {"pending": 0, "sent": 0, "drafted": 0, "failed": 0, "skipped": 0},
        "createdAt": "2026-03-01T09:00:21.000000Z", "updatedAt": "2026-03-01T09:05:21.000000Z",
    }
    assert WORKER_TOKEN not in json.dumps(body)
    assert len(client.get("/api/lead-runs", query_string={"pageSize": 5}).get_json()["runs"]) == 5


def test_runs_listing_with_no_runs(client):
    assert client.get("/api/lead-runs").get_json() == {"runs": [], "nextPageToken": None}


@pytest.mark.parametrize("query, field", [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "many"}, "limit"),
    ({"pageSize": "101"}, "pageSize"), ({"limit": "5", "pageSize": "6"}, "(body)"),
])
def test_bad_runs_limit_is_400(client, query, field):
    response = client.get("/api/lead-runs", query_string=query)
    error = assert_error(response, 400)
    assert [d["field"] for d in error["details"]] == [field] or field == "(body)"


def test_bad_runs_tokens_are_400(client, db):
    seed_run(db, "r1", leads=2)
    receipts_token = get_page(client, "r1", pageSize=1)["nextPageToken"]
    forged = pagination.encode("lead-runs", {"createdAt": "yesterday", "id": "r1"})
    bad_id = pagination.encode("lead-runs", {"createdAt": "2026-03-01T09:00:00Z", "id": "a/b"})
    for token in ["%%%", receipts_token, forged, bad_id, pagination.encode("templates", {"x": 1})]:
        assert_error(client.get("/api/lead-runs", query_string={"pageToken": token}), 400, "pageToken")
