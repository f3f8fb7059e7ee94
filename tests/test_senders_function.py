"""senders through functions-framework's real app, against the emulator; the
reservation ledger (shared/store/senders.py) and its race."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest

from shared import clock
from shared.store import senders as repo

from tests.jobs_helpers import assert_error

VALID = {"email": "ops@example.com", "maxPerDay": 6, "maxPerHour": 4, "minGapSeconds": 30, "jitterSeconds": 10}
T0 = dt.datetime(2030, 6, 3, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def client(function_client):
    return function_client("senders")


def test_put_creates_then_replaces_and_get_shows_usage(client, db, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: T0)
    created = client.put("/api/senders/mailbox-1", json=VALID)
    assert created.status_code == 200, created.get_json()
    assert created.get_json() == {
        "id": "mailbox-1", "email": "ops@example.com", "maxPerDay": 6, "maxPerHour": 4, "minGapSeconds": 30,
        "jitterSeconds": 10, "sentLast24h": 0, "nextSendAt": "2030-06-03T12:00:00.000000Z", "pausedUntil": None,
        "pauseReason": None, "createdAt": "2030-06-03T12:00:00.000000Z", "updatedAt": "2030-06-03T12:00:00.000000Z",
    }
    assert repo.reserve(db, "mailbox-1", "run-1/lead-1", T0, jitter=lambda top: top).granted
    # A replace keeps the ledger: the send happened whatever the new settings say.
    replaced = client.put("/api/senders/mailbox-1", json={**VALID, "maxPerDay": 100, "maxPerHour": None})
    assert replaced.status_code == 200
    body = client.get("/api/senders/mailbox-1").get_json()
    assert body["maxPerDay"] == 100 and body["maxPerHour"] is None and body["sentLast24h"] == 1
    assert body["nextSendAt"] == "2030-06-03T12:00:40.000000Z"  # 30 s gap + 10 s jitter
    assert client.get("/api/senders").get_json()["senders"] == [body]


def test_get_unknown_is_404(client):
    assert_error(client.get("/api/senders/nobody"), 404)


@pytest.mark.parametrize("payload, field", [
    ({**VALID, "email": "not an address"}, "email"),
    ({**VALID, "maxPerDay": 0}, "maxPerDay"),
    ({**VALID, "maxPerDay": 10001}, "maxPerDay"),
    ({**VALID, "maxPerDay": "6"}, "maxPerDay"),
    ({**VALID, "maxPerHour": 0}, "maxPerHour"),
    ({**VALID, "minGapSeconds": -1}, "minGapSeconds"),
    ({**VALID, "jitterSeconds": 86401}, "jitterSeconds"),
    ({k: v for k, v in VALID.items() if k != "email"}, "email"),
    ({k: v for k, v in VALID.items() if k != "minGapSeconds"}, "minGapSeconds"),
    ({**VALID, "sentLast24h": 0}, "sentLast24h"),
])
def test_put_refuses_bad_fields_and_writes_nothing(client, db, payload, field):
    assert_error(client.put("/api/senders/mailbox-1", json=payload), 400, field)
    assert not repo.ref(db, "mailbox-1").get().exists


def test_put_refuses_bad_id_bad_json_and_wrong_method(client):
    assert_error(client.put("/api/senders/a.b", json=VALID), 400, "senderId")
    assert_error(client.get("/api/senders/a.b"), 400, "senderId")
    assert_error(client.put("/api/senders/" + "x" * 129, json=VALID), 400, "senderId")
    assert client.put("/api/senders/m1", data="{", content_type="application/json").status_code == 400
    assert client.delete("/api/senders/m1").status_code == 405
    assert client.post("/api/senders", json=VALID).status_code == 405


def test_senders_need_a_signed_in_user(client, configure):
    configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com")
    assert_error(client.get("/api/senders"), 401)
    assert_error(client.get("/api/senders/m1"), 401)
    assert_error(client.put("/api/senders/m1", json=VALID), 401)


# --- the ledger ---------------------------------------------------------------------


def make(db, **settings):
    repo.put(db, "s1", {**{"email": "a@example.com", "maxPerDay": 6, "maxPerHour": None,
                           "minGapSeconds": 0, "jitterSeconds": 0}, **settings}, T0)


def test_caps_refuse_with_the_moment_they_free_up(db):
    make(db, maxPerDay=3, maxPerHour=2, minGapSeconds=60)
    assert repo.reserve(db, "s1", "a", T0).granted
    assert repo.reserve(db, "s1", "b", T0 + dt.timedelta(seconds=30)) == repo.Reservation(
        False, "pacing", T0 + dt.timedelta(seconds=60))
    assert repo.reserve(db, "s1", "b", T0 + dt.timedelta(seconds=60)).granted
    assert repo.reserve(db, "s1", "c", T0 + dt.timedelta(seconds=200)) == repo.Reservation(
        False, "hourly_cap", T0 + dt.timedelta(hours=1))
    assert repo.reserve(db, "s1", "c", T0 + dt.timedelta(hours=1, seconds=1)).granted
    later = T0 + dt.timedelta(hours=5)
    assert repo.reserve(db, "s1", "d", later) == repo.Reservation(False, "daily_cap", T0 + dt.timedelta(hours=24))
    # A key already in the ledger is granted again without a second entry.
    assert repo.reserve(db, "s1", "c", later).granted
    assert len(repo.get(db, "s1")["sends"]) == 3
    # 24 h of real sends, not a calendar day: the first send ages out exactly 24 h on.
    assert repo.reserve(db, "s1", "d", T0 + dt.timedelta(hours=24, seconds=1)).granted


def test_release_takes_back_an_unsent_reservation(db):
    make(db, maxPerDay=1)
    assert repo.reserve(db, "s1", "a", T0).granted
    assert not repo.reserve(db, "s1", "b", T0).granted
    assert repo.release(db, "s1", "a", T0)
    assert not repo.release(db, "s1", "a", T0)  # twice is harmless
    assert repo.reserve(db, "s1", "b", T0).granted


def test_pause_refuses_until_it_ends_and_backs_off_exponentially(db):
    make(db)
    backoff = lambda level: dt.timedelta(minutes=2 ** level)  # noqa: E731
    assert repo.pause(db, "s1", None, "429", T0, backoff) == T0 + dt.timedelta(minutes=1)
    assert repo.reserve(db, "s1", "a", T0) == repo.Reservation(False, "provider_quota", T0 + dt.timedelta(minutes=1))
    t1 = T0 + dt.timedelta(minutes=1)
    assert repo.pause(db, "s1", None, "429", t1, backoff) == t1 + dt.timedelta(minutes=2)
    # A shorter pause never cuts a longer one short.
    assert repo.pause(db, "s1", t1, "429", t1, backoff) == t1 + dt.timedelta(minutes=2)
    assert repo.reserve(db, "s1", "a", t1 + dt.timedelta(minutes=2)).granted


def test_missing_sender_is_refused(db):
    assert repo.reserve(db, "ghost", "a", T0) == repo.Reservation(False, "sender_missing")


def test_two_runs_at_once_never_send_more_than_the_daily_cap(db):
    # 2 runs x 6 leads racing on a sender with maxPerDay 6: exactly 6 grants, never 7.
    make(db, maxPerDay=6)
    keys = [f"run-{r}/lead-{i}" for i in range(6) for r in ("a", "b")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        grants = list(pool.map(lambda key: repo.reserve(db, "s1", key, T0).granted, keys))
    assert sum(grants) == 6
    assert len(repo.get(db, "s1")["sends"]) == 6
