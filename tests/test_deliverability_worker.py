"""The worker with sending windows, a sender's caps and provider quotas, in-process on
the emulator with a simulated clock (tools/simclock.py); the waiting state, waking it,
and operator actions on it."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from shared.deliverability import wake
from shared import auth
from shared.jobs import bodies, service, worker
from shared.outreach.errors import ProviderQuotaError
from shared.receipts import service as receipts
from shared.settings import get_settings
from shared.store import senders as senders_repo
from tests.jobs_helpers import Captured, all_leads, docs, job, make_leads, make_template, start_request
from tools.simclock import RecordingProvider, SimClock, drive, invoke

UTC = dt.timezone.utc
# Monday 2030-06-03 12:00 UTC: 08:00 in New York, 14:00 in Berlin, 21:00 in Tokyo.
T0 = dt.datetime(2030, 6, 3, 12, 0, tzinfo=UTC)
WINDOW = {"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5], "fallbackTimeZone": "Europe/Berlin"}


@pytest.fixture(autouse=True)
def template(db):
    make_template(db)


@pytest.fixture
def sim(monkeypatch):
    clock = SimClock(T0)
    clock.install(monkeypatch)
    return clock


def sender(db, **settings):
    senders_repo.put(db, "box", {"email": "ops@example.com", "maxPerDay": 1000, "maxPerHour": None,
                                 "minGapSeconds": 0, "jitterSeconds": 0, **settings}, T0)


def start(db, run_id, leads, **config):
    captured = Captured()
    service.post(db, run_id, bodies.parse_request(start_request(leads, **config)), dispatcher=captured)
    return captured


def run_chain(db, captured, sim, provider):
    settings = get_settings()
    while captured.calls:
        run_id, token, lease = captured.calls.pop(0)
        owner = invoke(db, run_id, token, lease, sim, settings, provider)
        if owner:
            captured.calls.append((run_id, token, owner))


def zoned(zones):
    return [{**lead, "timeZone": zone} for lead, zone in zip(make_leads(len(zones)), zones)]


def test_closed_windows_defer_leads_pending_in_order_and_the_job_waits(db, sim):
    zones = ["America/New_York", "Europe/Berlin", "America/New_York", "", "Mars/Base", "Europe/Berlin"]
    captured = start(db, "r1", zoned(zones), sendWindow=WINDOW, batchSize=2)
    token = captured.calls[0][1]
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)

    # Berlin is open (14:00); New York (08:00) is not; no zone or an unknown one falls back to Berlin.
    assert [s.lead_id for s in provider.sends] == ["lead-000001", "lead-000003", "lead-000004", "lead-000005"]
    current = job(db, "r1")
    assert current["status"] == "waiting" and current["waitReason"] == "window_closed"
    assert current["wakeAt"] == dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)  # 09:00 in New York
    assert current["lease"] is None and current["nextIndex"] == 0
    deferred = [lead for lead in all_leads(db, "r1") if lead["status"] == "pending"]
    assert [lead["id"] for lead in deferred] == ["lead-000000", "lead-000002"]
    assert all(not lead.get("attempts") for lead in deferred)  # no attempt used
    assert current["counts"]["pending"] == 2 and current["counts"]["sent"] == 4

    view = service.status(db, "r1").job
    assert (view.status, view.wait_reason, view.wake_at) == ("waiting", "window_closed", "2030-06-03T13:00:00.000000Z")
    assert view.stalled is False and view.lease_expires_at is None
    # A stray worker is turned away: a waiting job has no worker.
    with pytest.raises(Exception) as caught:
        worker.handle(db, "r1", token, None)
    assert "waiting" in str(caught.value)

    # Nothing is due before 13:00; at 13:00 the sweep wakes it and New York goes, in order.
    assert wake.due_waiting_jobs(db, sim.now()) == []
    stats = drive(db, [], sim, get_settings(), provider, T0 + dt.timedelta(days=1), ["r1"])
    assert stats.wakes == 1
    assert [s.lead_id for s in provider.sends][4:] == ["lead-000000", "lead-000002"]
    assert provider.sends[4].at >= dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)
    final = job(db, "r1")
    assert final["status"] == "completed" and final["counts"]["sent"] == 6
    assert final["wakeAt"] is None and final["waitReason"] is None
    assert len(docs(db, "mail")) == 6


def test_receipts_show_the_waiting_state(db, sim):
    captured = start(db, "r1", zoned(["America/New_York"]), sendWindow=WINDOW)
    run_chain(db, captured, sim, RecordingProvider(sim))
    view = receipts.job_view(job(db, "r1"), sim.now(), 120)
    assert (view.status, view.wait_reason, view.wake_at) == ("waiting", "window_closed", "2030-06-03T13:00:00.000000Z")


def test_pacing_shorter_than_the_batch_is_slept_through_longer_waits(db, sim):
    sender(db, minGapSeconds=20)
    captured = start(db, "r1", make_leads(4), senderId="box", timeBudgetSeconds=50.0)
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    assert [(s.at - T0).total_seconds() for s in provider.sends] == [1, 21, 41]  # one send takes 1 s
    # The fourth would wait 19 s with 9 s of the 50 s budget left: the job waits instead.
    current = job(db, "r1")
    assert (current["status"], current["waitReason"]) == ("waiting", "pacing")
    assert current["wakeAt"] == T0 + dt.timedelta(seconds=60) and current["lease"] is None
    drive(db, [], sim, get_settings(), provider, T0 + dt.timedelta(hours=1), ["r1"])
    assert [(s.at - T0).total_seconds() for s in provider.sends] == [1, 21, 41, 61]
    assert job(db, "r1")["status"] == "completed"


def test_daily_cap_makes_the_job_wait_until_the_oldest_send_ages_out(db, sim):
    sender(db, maxPerDay=3)
    captured = start(db, "r1", make_leads(5), senderId="box")
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    assert len(provider.sends) == 3
    current = job(db, "r1")
    assert current["status"] == "waiting" and current["waitReason"] == "daily_cap"
    # The ledger records the reservation just before the send (the send itself takes 1 s).
    assert current["wakeAt"] == T0 + dt.timedelta(hours=24)
    assert current["nextIndex"] == 3 and current["counts"]["pending"] == 2


def test_two_runs_started_at_once_on_a_sender_of_six_send_six(db, sim):
    sender(db, maxPerDay=6)
    chains = [start(db, run_id, make_leads(6), senderId="box") for run_id in ("ra", "rb")]
    for captured in chains:
        (call,) = captured.calls
        assert call[0] in ("ra", "rb")
    provider = RecordingProvider(sim)
    barrier = threading.Barrier(2)
    errors = []

    def go(captured):
        try:
            barrier.wait()
            run_chain(db, captured, sim, provider)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(provider.sends) == 6 and len(docs(db, "mail")) == 6
    assert len(senders_repo.get(db, "box")["sends"]) == 6
    assert {job(db, r)["status"] for r in ("ra", "rb")} <= {"waiting", "completed"}
    assert sum(job(db, r)["counts"]["sent"] for r in ("ra", "rb")) == 6


class Throttled(RecordingProvider):
    def __init__(self, sim, error, times=1):
        super().__init__(sim)
        self.error, self.times = error, times

    def deliver(self, db, batch, email):
        if self.times:
            self.times -= 1
            raise self.error
        return super().deliver(db, batch, email)


@pytest.mark.parametrize("error, paused_for", [
    (ProviderQuotaError("provider rate limit (429)", retry_after_seconds=120), dt.timedelta(seconds=120)),
    (ProviderQuotaError("provider rate limit (403)"), dt.timedelta(minutes=1)),  # backoff from 1 min
    (ProviderQuotaError("provider daily quota spent (403)", daily=True), dt.timedelta(hours=24)),
])
def test_a_quota_refusal_pauses_the_sender_and_keeps_the_lead_pending(db, sim, error, paused_for):
    sender(db)
    captured = start(db, "r1", make_leads(2), senderId="box")
    provider = Throttled(sim, error)
    run_chain(db, captured, sim, provider)
    assert provider.sends == []
    current = job(db, "r1")
    assert current["status"] == "waiting" and current["waitReason"] == "provider_quota"
    assert current["wakeAt"] == T0 + paused_for
    lead = all_leads(db, "r1")[0]
    assert lead["status"] == "pending" and not lead.get("attempts") and current["attemptsByLead"] == {}
    box = senders_repo.get(db, "box")
    assert box["pausedUntil"] == T0 + paused_for and box["sends"] == []  # the reservation was taken back
    assert "provider" in box["pauseReason"]
    drive(db, [], sim, get_settings(), provider, T0 + dt.timedelta(days=3), ["r1"])
    assert [s.lead_id for s in provider.sends] == ["lead-000000", "lead-000001"]
    assert provider.sends[0].at >= T0 + paused_for
    assert job(db, "r1")["status"] == "completed"
    assert senders_repo.get(db, "box")["pauseLevel"] == 0  # a send went through: backoff starts over


def test_a_failed_send_gives_its_reservation_back(db, sim):
    sender(db, maxPerDay=2)
    leads = make_leads(3)
    leads[0]["email"] = "not an address"
    captured = start(db, "r1", leads, senderId="box")
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    assert [s.lead_id for s in provider.sends] == ["lead-000001", "lead-000002"]
    assert job(db, "r1")["status"] == "completed_with_errors"


def test_pause_resume_and_cancel_work_on_a_waiting_job(db, sim):
    captured = start(db, "r1", zoned(["America/New_York"] * 2), sendWindow=WINDOW)
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    assert job(db, "r1")["status"] == "waiting"

    def control(action):
        dispatched = Captured()
        service.post(db, "r1", bodies.parse_request({"action": action}), dispatcher=dispatched)
        return dispatched

    control("pause")
    assert job(db, "r1")["status"] == "paused"
    sim.at = dt.datetime(2030, 6, 3, 14, 0, tzinfo=UTC)
    assert wake.due_waiting_jobs(db, sim.now()) == []  # a paused job is never woken
    assert wake.wake(db, "r1", sim.now(), get_settings()) is None
    sim.at = T0
    resumed = control("resume")  # still closed: the worker looks and waits again
    run_chain(db, resumed, sim, provider)
    assert job(db, "r1")["status"] == "waiting" and provider.sends == []
    control("cancel")
    assert job(db, "r1")["status"] == "cancelled"
    sim.at = dt.datetime(2030, 6, 3, 14, 0, tzinfo=UTC)
    assert wake.due_waiting_jobs(db, sim.now()) == []


def test_waking_is_once_even_when_two_sweepers_race(db, sim):
    captured = start(db, "r1", zoned(["America/New_York"]), sendWindow=WINDOW)
    run_chain(db, captured, sim, RecordingProvider(sim))
    assert wake.wake(db, "r1", sim.now(), get_settings()) is None  # not due yet
    sim.at = dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)
    assert wake.due_waiting_jobs(db, sim.now()) == ["r1"]
    results = []
    threads = [threading.Thread(target=lambda: results.append(wake.wake(db, "r1", sim.now(), get_settings())))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    woken = [r for r in results if r is not None]
    assert len(woken) == 1
    current = job(db, "r1")
    assert current["status"] == "running" and current["lease"]["owner"] == woken[0].owner
    assert auth.tokens_match(woken[0].token, current["workerTokenHash"])
    assert current["diagnostics"][-1]["code"] == "woken"


@pytest.mark.parametrize("window, field", [
    ({**WINDOW, "start": "9am"}, "config.sendWindow.start"),
    ({**WINDOW, "end": "24:30"}, "config.sendWindow.end"),
    ({**WINDOW, "end": "09:00"}, "config.sendWindow.end"),
    ({**WINDOW, "days": [0]}, "config.sendWindow.days.0"),
    ({**WINDOW, "days": [1, 1]}, "config.sendWindow.days"),
    ({**WINDOW, "days": []}, "config.sendWindow.days"),
    ({**WINDOW, "fallbackTimeZone": "Mars/Base"}, "config.sendWindow.fallbackTimeZone"),
    ({k: v for k, v in WINDOW.items() if k != "fallbackTimeZone"}, "config.sendWindow.fallbackTimeZone"),
    ({**WINDOW, "colour": "blue"}, "config.sendWindow.colour"),
])
def test_start_refuses_a_bad_window(db, window, field):
    from shared.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        bodies.parse_request(start_request(make_leads(1), sendWindow=window))
    assert field in [d.get("field") for d in caught.value.details]


def test_start_refuses_an_unknown_sender_and_writes_nothing(db):
    from shared.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        start(db, "r1", make_leads(1), senderId="nobody")
    assert "config.senderId" in [d.get("field") for d in caught.value.details]
    assert job(db, "r1") is None
    with pytest.raises(InvalidArgument):
        bodies.parse_request(start_request(make_leads(1), senderId="a/b"))


def test_wake_and_hand_off_dispatches_the_woken_lease_once(db, sim):
    captured = start(db, "r1", zoned(["America/New_York"]), sendWindow=WINDOW)
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    sim.at = dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)
    dispatched = Captured()
    assert wake.wake_and_hand_off(db, "r1", sim.now(), get_settings(), dispatched)
    assert not wake.wake_and_hand_off(db, "r1", sim.now(), get_settings(), dispatched)  # already running
    ((run_id, token, lease),) = dispatched.calls
    assert (run_id, lease) == ("r1", job(db, "r1")["lease"]["owner"])
    assert auth.tokens_match(token, job(db, "r1")["workerTokenHash"])
    run_chain(db, dispatched, sim, provider)
    assert [s.lead_id for s in provider.sends] == ["lead-000000"] and job(db, "r1")["status"] == "completed"


def test_a_failed_wake_dispatch_is_noted_on_the_job(db, sim):
    captured = start(db, "r1", zoned(["America/New_York"]), sendWindow=WINDOW)
    run_chain(db, captured, sim, RecordingProvider(sim))
    sim.at = dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)
    assert wake.wake_and_hand_off(db, "r1", sim.now(), get_settings(), lambda *call: False)
    assert job(db, "r1")["diagnostics"][-1]["code"] == "dispatch_failed"


def test_a_foreground_run_that_must_wait_continues_in_the_background(db, sim):
    service.post(db, "r1", bodies.parse_request(start_request(
        zoned(["America/New_York", "Europe/Berlin"]), mode="foreground", sendWindow=WINDOW)), dispatcher=Captured())
    current = job(db, "r1")
    assert (current["status"], current["waitReason"], current["counts"]["sent"]) == ("waiting", "window_closed", 1)
    assert current.get("workerTokenHash") is None and "workerToken" not in current
    sim.at = dt.datetime(2030, 6, 3, 13, 0, tzinfo=UTC)
    dispatched = Captured()
    assert wake.wake_and_hand_off(db, "r1", sim.now(), get_settings(), dispatched)
    assert dispatched.calls[0][1] and job(db, "r1")["mode"] == "background"
    run_chain(db, dispatched, sim, RecordingProvider(sim))
    assert job(db, "r1")["status"] == "completed" and len(docs(db, "mail")) == 2


def test_a_sender_deleted_mid_run_fails_the_job_and_sends_nothing(db, sim):
    sender(db)
    captured = start(db, "r1", make_leads(2), senderId="box")
    senders_repo.ref(db, "box").delete()
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    current = job(db, "r1")
    assert current["status"] == "failed" and provider.sends == []
    assert current["diagnostics"][-1]["code"] == "sender_missing"
    assert {lead["status"] for lead in all_leads(db, "r1")} == {"pending"}


def test_hourly_cap_waits_for_the_oldest_send_of_the_hour(db, sim):
    sender(db, maxPerHour=2)
    captured = start(db, "r1", make_leads(3), senderId="box")
    provider = RecordingProvider(sim)
    run_chain(db, captured, sim, provider)
    current = job(db, "r1")
    assert (current["status"], current["waitReason"]) == ("waiting", "hourly_cap")
    assert current["wakeAt"] == T0 + dt.timedelta(hours=1) and len(provider.sends) == 2
