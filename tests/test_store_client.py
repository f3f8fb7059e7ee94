"""shared/store/client: the compare-and-set write the worker uses instead of transactions,
the channel options every Firestore client is built with, and the deadline every call
passes (read_args/commit_args)."""

from __future__ import annotations

import threading
import time

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.store.client import RECONNECT_BACKOFF_OPTIONS, write_if_unchanged


def counter(db):
    return db.collection("cas_tests").document("counter")


def add_one(snapshot, batch, unchanged):
    value = (snapshot.to_dict() or {}).get("value", 0) if snapshot.exists else 0
    if snapshot.exists:
        batch.update(snapshot.reference, {"value": value + 1}, option=unchanged)
    else:
        batch.create(snapshot.reference, {"value": value + 1})
    return value + 1


def test_concurrent_read_modify_writes_lose_no_update(db):
    ref = counter(db)
    ref.set({"value": 0})
    writers, rounds = 6, 5
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def writer():
        barrier.wait()  # all read at once, so most first commits meet a changed document
        for _ in range(rounds):
            try:
                results.append(write_if_unchanged(db, ref, add_one, attempts=50))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert ref.get().to_dict()["value"] == writers * rounds
    assert sorted(results) == list(range(1, writers * rounds + 1))  # every writer saw its own increment


def test_a_write_in_between_makes_the_body_run_again_on_the_new_value(db):
    ref = counter(db)
    ref.set({"value": 10})
    seen: list[int] = []

    def body(snapshot, batch, unchanged):
        seen.append(snapshot.to_dict()["value"])
        if len(seen) == 1:
            ref.update({"value": 20})  # another writer, after this read and before this commit
        batch.update(ref, {"value": snapshot.to_dict()["value"] + 1}, option=unchanged)

    write_if_unchanged(db, ref, body)
    assert seen == [10, 20]
    assert ref.get().to_dict()["value"] == 21


def test_a_document_that_never_stops_changing_is_aborted_and_left_as_the_other_writer_left_it(db):
    ref = counter(db)
    ref.set({"value": 0})
    calls = []

    def body(snapshot, batch, unchanged):
        calls.append(1)
        ref.update({"value": firestore.Increment(1)})
        batch.update(ref, {"value": -1}, option=unchanged)

    with pytest.raises(gexc.Aborted):
        write_if_unchanged(db, ref, body, attempts=3)
    assert len(calls) == 3
    assert ref.get().to_dict()["value"] == 3


def test_a_body_that_writes_nothing_commits_nothing(db):
    ref = counter(db)
    assert write_if_unchanged(db, ref, lambda snapshot, batch, unchanged: (snapshot.exists, unchanged)) == (False, None)
    assert not ref.get().exists


def test_the_writes_of_one_call_land_together_or_not_at_all(db):
    ref, other = counter(db), db.collection("cas_tests").document("other")
    ref.set({"value": 1})
    other.set({"value": 1})

    def body(snapshot, batch, unchanged):
        batch.update(other, {"value": 2})
        batch.create(ref, {"value": 2})  # fails: it exists, so the update of `other` must not land

    with pytest.raises(gexc.AlreadyExists):
        write_if_unchanged(db, ref, body)
    assert other.get().to_dict()["value"] == 1


def test_contention_that_outlasts_the_retries_is_a_503_not_a_500(function_client, monkeypatch):
    import shared.templates.service as service

    def contended(*args, **kwargs):
        raise gexc.Aborted("too much contention")

    monkeypatch.setattr(service, "create", contended)
    response = function_client("templates").post("/api/templates", json={"name": "N", "subject": "S", "body": "B"})
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["error"]["code"] == "unavailable"


def test_every_firestore_channel_reconnects_within_two_seconds(db):
    from google.cloud.firestore_v1 import base_client

    # get_db() (the db fixture) has run: both the emulator's and production's option lists carry them.
    for options in (base_client._GRPC_MSG_SIZE_OPTIONS, base_client._DEFAULT_CHANNEL_OPTIONS):
        for option in RECONNECT_BACKOFF_OPTIONS:
            assert options.count(option) == 1
    assert dict(RECONNECT_BACKOFF_OPTIONS)["grpc.max_reconnect_backoff_ms"] <= 2000


def test_the_library_internals_tuned_by_get_db_are_still_there(db):
    """Loud on purpose: shared/store/client.py's tune_library_defaults (these two lists) and
    read_masked_strings (the generated API's unary get_document, a reference's document
    path) are the project's only uses of google-cloud-firestore's private names
    (TUNED_FOR). On another release, re-measure docs/reliability.md finding 2 and the
    latency bench (docs/jobs.md), check these names, and compare the release's default
    retries (transports/base.py) with read_args/commit_args before bumping the pin."""
    from importlib.metadata import version

    from google.cloud.firestore_v1 import base_client

    from shared.store.client import TUNED_FOR

    assert version("google-cloud-firestore") == TUNED_FOR
    assert isinstance(base_client._GRPC_MSG_SIZE_OPTIONS, list)
    assert isinstance(base_client._DEFAULT_CHANNEL_OPTIONS, list)
    assert callable(db._firestore_api.get_document)
    assert db.collection("c").document("d")._document_path.endswith("/documents/c/d")


DEADLINE = 2.0


@pytest.fixture
def unreachable_db(configure):
    """A real client pointed at a port nobody listens on, with FIRESTORE_DEADLINE_SECONDS=2."""
    from shared.store.client import get_db
    from tools.localstack import free_port

    configure(FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}", FIRESTORE_DEADLINE_SECONDS=str(DEADLINE))
    get_db.cache_clear()
    yield get_db()
    get_db.cache_clear()


def test_with_firestore_unreachable_a_read_and_a_commit_give_up_within_the_deadline(unreachable_db):
    """The library alone would retry the read for 300 s and the commit for 60 s."""
    from shared.store import runs

    for call in (lambda: runs.get_run(unreachable_db, "r1"),
                 lambda: runs.update_leads(unreachable_db, "r1", ["lead-000000"], {"status": "pending"})):
        started = time.monotonic()
        with pytest.raises(gexc.GoogleAPIError):
            call()
        assert time.monotonic() - started < 4 * DEADLINE


def failing_once(error):
    errors = [error]

    def call():
        if errors:
            raise errors.pop()
        return "answered"
    return call


def test_every_call_is_bounded_by_the_configured_deadline_with_the_librarys_retry(configure):
    from shared.store.client import commit_args, read_args

    configure(FIRESTORE_DEADLINE_SECONDS="7")
    read, commit = read_args(), commit_args()
    assert read["timeout"] == commit["timeout"] == 7 and read["retry"].timeout == commit["retry"].timeout == 7
    # A commit is re-sent on UNAVAILABLE (MarkedBatch's lost answers), never on DEADLINE_EXCEEDED.
    assert commit["retry"](failing_once(gexc.ServiceUnavailable("answer lost")))() == "answered"
    with pytest.raises(gexc.DeadlineExceeded):
        commit["retry"](failing_once(gexc.DeadlineExceeded("may have landed")))()
    assert read["retry"](failing_once(gexc.DeadlineExceeded("slow")))() == "answered"
    with pytest.raises(gexc.NotFound):
        read["retry"](failing_once(gexc.NotFound("gone")))()
