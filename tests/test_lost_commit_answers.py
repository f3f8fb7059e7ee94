"""Commits whose answer was lost: each precondition-guarded writer takes its own landed
write for its own success, not for a competitor's (docs/reliability.md, "Lost commit answers").

The fault is real: every Firestore call goes through tools/answerloss.py, a gRPC proxy in
front of the emulator; an armed Commit is applied by the emulator and then answered
UNAVAILABLE, and google-cloud-firestore's own retry of Commit sends it again. The copy
fails on the first one's effects (FailedPrecondition or AlreadyExists), as if another
writer had come first. Every test checks that the answer really was lost and re-sent.
"""

from __future__ import annotations

import grpc
import pytest

from shared.settings import get_settings
from shared.store import client as store_client
from shared.store.client import write_if_unchanged
from tools.answerloss import AnswerLossProxy

RUN = "run-lost"


@pytest.fixture
def lossy(emulator, monkeypatch):
    """The proxy; get_db() returns a client that talks to the emulator through it."""
    with AnswerLossProxy(emulator.host) as proxy:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.address)
        store_client.get_db.cache_clear()
        yield proxy
        store_client.get_db.cache_clear()  # the next test's client talks to the emulator again


def lose_next_commit_answer(proxy, code=grpc.StatusCode.UNAVAILABLE):
    proxy.lose_answers(1, code=code)
    return proxy.calls["Commit"]


def assert_lost_and_resent(proxy, before):
    assert proxy.lost["Commit"] == 1, "the fault was never injected"
    assert proxy.calls["Commit"] - before >= 2, "the client did not re-send the commit"


def add_one(snapshot, batch, unchanged):
    if snapshot.exists:
        value = snapshot.to_dict()["value"] + 1
        batch.update(snapshot.reference, {"value": value}, option=unchanged)
    else:
        value = 1
        batch.create(snapshot.reference, {"value": value})
    return value


# The two codes google-cloud-firestore's Commit is retried on.
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_a_create_whose_answer_was_lost_is_done_once(lossy, code):
    db = store_client.get_db()
    ref = db.collection("cas_tests").document("created")
    before = lose_next_commit_answer(lossy, code)
    assert write_if_unchanged(db, ref, add_one) == 1
    assert_lost_and_resent(lossy, before)
    assert ref.get().to_dict() == {"value": 1}


def test_an_update_whose_answer_was_lost_is_done_once(lossy):
    db = store_client.get_db()
    ref = db.collection("cas_tests").document("updated")
    ref.set({"value": 5})
    before = lose_next_commit_answer(lossy)
    assert write_if_unchanged(db, ref, add_one) == 6
    assert_lost_and_resent(lossy, before)
    assert ref.get().to_dict() == {"value": 6}


def test_a_competitor_is_still_told_apart_from_a_lost_answer(lossy):
    db = store_client.get_db()
    ref = db.collection("cas_tests").document("raced")
    ref.set({"value": 0})
    seen = []

    def body(snapshot, batch, unchanged):
        seen.append(snapshot.to_dict()["value"])
        if len(seen) == 1:
            ref.update({"value": 10})  # another writer between this read and this commit
        return add_one(snapshot, batch, unchanged)

    assert write_if_unchanged(db, ref, body) == 11
    assert seen == [0, 10]


def test_a_template_edit_whose_answer_was_lost_is_200_not_409(lossy, function_client):
    client = function_client("templates")
    created = client.post("/api/templates", json={"name": "Intro", "subject": "Hi", "body": "Hello"})
    template_id = created.get_json()["id"]
    before = lose_next_commit_answer(lossy)
    edited = client.patch(f"/api/templates/{template_id}", json={"name": "Edited", "version": 1})
    assert edited.status_code == 200, edited.get_json()
    assert_lost_and_resent(lossy, before)
    assert edited.get_json()["version"] == 2
    assert client.get(f"/api/templates/{template_id}").get_json()["name"] == "Edited"


def test_a_template_delete_whose_answer_was_lost_is_200_not_404(lossy, function_client):
    client = function_client("templates")
    template_id = client.post("/api/templates", json={"name": "Intro", "subject": "Hi", "body": "Hello"}).get_json()["id"]
    before = lose_next_commit_answer(lossy)
    deleted = client.delete(f"/api/templates/{template_id}?version=1")
    assert deleted.status_code == 200, deleted.get_json()
    assert_lost_and_resent(lossy, before)
    assert client.get(f"/api/templates/{template_id}").status_code == 404


def test_a_booking_whose_answer_was_lost_is_booked_not_409(lossy, function_client):
    client = function_client("schedule")
    before = lose_next_commit_answer(lossy)
    booked = client.post("/api/calendar/schedule", json={"candidateStarts": ["2030-06-03T13:00:00Z"], "book": True})
    assert booked.status_code == 200, booked.get_json()
    assert_lost_and_resent(lossy, before)
    stored = list(store_client.get_db().collection("calendar_bookings").stream())
    assert [s.id for s in stored] == [booked.get_json()["booking"]["id"]]


def test_a_hand_off_claim_whose_answer_was_lost_runs_the_batch(lossy):
    from shared.jobs import worker
    from shared.store import runs as repo
    from tests.jobs_helpers import make_leads, make_template, start_background

    db = store_client.get_db()
    make_template(db)
    _, token, handoff = start_background(db, RUN, make_leads(3)).calls.pop()
    before = lose_next_commit_answer(lossy)
    owner, job = worker.acquire(db, RUN, token, handoff, get_settings())
    assert_lost_and_resent(lossy, before)
    assert owner == handoff and job["status"] == "running"
    assert repo.lease_claim_ref(db, RUN, handoff).get().exists
    assert repo.get_job(db, RUN)["status"] == "running"
