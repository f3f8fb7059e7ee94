"""The job state machine and stall detection (shared/jobs/state.py): pure, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.jobs import state
from shared.jobs.state import IllegalTransition

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "action, current, expected",
    [
        ("pause", "queued", "paused"),
        ("pause", "running", "paused"),
        ("resume", "paused", "running"),
        ("retry", "completed_with_errors", "running"),
        ("retry", "failed", "running"),
        ("cancel", "queued", "cancelled"),
        ("cancel", "running", "cancelled"),
        ("cancel", "paused", "cancelled"),
        ("pause", "waiting", "paused"),
        ("resume", "waiting", "running"),
        ("cancel", "waiting", "cancelled"),
        ("wait", "running", "waiting"),
        ("wake", "waiting", "running"),
    ],
)
def test_legal_transitions(action, current, expected):
    assert state.next_status(action, current) == expected


@pytest.mark.parametrize(
    "action, current",
    [
        ("pause", "completed"),
        ("pause", "cancelled"),
        ("pause", "failed"),
        ("resume", "completed"),
        ("resume", "cancelled"),
        ("resume", "completed_with_errors"),
        ("resume", "running"),
        ("resume", "queued"),
        ("retry", "completed"),
        ("retry", "running"),
        ("retry", "paused"),
        ("retry", "cancelled"),
        ("cancel", "completed"),
        ("cancel", "failed"),
        ("cancel", "completed_with_errors"),
        ("retry", "waiting"),
        ("wait", "paused"),
        ("wait", "queued"),
        ("wait", "cancelled"),
        ("wake", "running"),
        ("wake", "paused"),
        ("wake", "cancelled"),
    ],
)
def test_illegal_transitions_are_409_naming_the_status(action, current):
    with pytest.raises(IllegalTransition) as caught:
        state.next_status(action, current)
    assert current in caught.value.message
    assert caught.value.details[0]["status"] == current


def test_resume_restarts_an_active_job_only_when_stalled():
    assert state.next_status("resume", "running", stalled=True) == "running"
    assert state.next_status("resume", "queued", stalled=True) == "running"


@pytest.mark.parametrize("action, current", [("pause", "paused"), ("cancel", "cancelled")])
def test_repeating_pause_or_cancel_is_a_no_op(action, current):
    assert state.is_noop(action, current)
    assert not state.is_noop("pause", "running")


def test_every_status_is_either_live_or_finished():
    assert state.LIVE.isdisjoint(state.FINISHED)
    assert state.STATUSES == {
        "queued", "running", "paused", "waiting", "completed", "completed_with_errors", "cancelled", "failed"
    }


def test_a_waiting_job_is_live_but_not_active_so_no_worker_runs_and_it_never_stalls():
    assert "waiting" in state.LIVE and "waiting" not in state.ACTIVE
    assert not state.is_stalled(_job(status="waiting", expires_in=None, updated_ago=10 * 86400), NOW, 120)


def _job(status="running", expires_in=None, updated_ago=0.0):
    lease = None if expires_in is None else {"owner": "h-x", "expiresAt": NOW + dt.timedelta(seconds=expires_in)}
    return {"status": status, "lease": lease, "updatedAt": NOW - dt.timedelta(seconds=updated_ago)}


def test_stalled_when_the_lease_expired_beyond_the_grace():
    lease = 120.0
    grace = state.stall_grace_seconds(lease)
    assert grace == 30.0
    assert not state.is_stalled(_job(expires_in=10), NOW, lease)
    assert not state.is_stalled(_job(expires_in=-grace + 1), NOW, lease)
    assert state.is_stalled(_job(expires_in=-grace - 1), NOW, lease)


def test_stalled_without_lease_when_nothing_was_written_for_a_lease():
    assert not state.is_stalled(_job(updated_ago=60), NOW, 120)
    assert state.is_stalled(_job(updated_ago=200), NOW, 120)


@pytest.mark.parametrize("status", ["paused", "waiting", "completed", "cancelled", "failed", "completed_with_errors"])
def test_only_active_jobs_can_be_stalled(status):
    assert not state.is_stalled(_job(status=status, expires_in=-3600), NOW, 120)


def test_final_status_depends_on_failed_leads():
    assert state.final_status(0) == "completed"
    assert state.final_status(3) == "completed_with_errors"
