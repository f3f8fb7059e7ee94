"""shared/retry.py: the one retry policy every retrying caller names."""

from __future__ import annotations

import pytest

from shared.retry import Exhausted, Policy


class Busy(Exception):
    pass


POLICY = Policy("a flaky thing", retry_on=(Busy,), initial=0.1, maximum=0.4, multiplier=2.0)


def flaky(failures: int, error: Exception = Busy()):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return len(calls)

    return fn, calls


def test_named_failures_are_retried_with_growing_capped_jittered_pauses():
    fn, calls = flaky(4)
    pauses = []
    assert POLICY.call(fn, sleep=pauses.append) == 5
    assert len(pauses) == 4
    for pause, cap in zip(pauses, [0.1, 0.2, 0.4, 0.4]):
        assert 0 <= pause <= cap


def test_other_failures_go_straight_to_the_caller():
    fn, calls = flaky(3, ValueError("a bug"))
    with pytest.raises(ValueError):
        POLICY.call(fn, sleep=lambda s: None)
    assert len(calls) == 1


def test_out_of_attempts_is_exhausted_with_the_last_error():
    fn, calls = flaky(100)
    with pytest.raises(Exhausted) as caught:
        POLICY.call(fn, attempts=3, sleep=lambda s: None)
    assert len(calls) == 3 and caught.value.attempts == 3
    assert isinstance(caught.value.last, Busy) and caught.value.__cause__ is caught.value.last
    assert "a flaky thing" in str(caught.value)


def test_a_wait_hint_lengthens_the_pause():
    fn, _ = flaky(1)
    pauses = []
    POLICY.call(fn, sleep=pauses.append, wait_hint=lambda exc: 7.0)
    assert pauses == [7.0]


def test_a_timeout_stops_before_a_pause_that_would_pass_it():
    fn, calls = flaky(100)
    with pytest.raises(Exhausted):
        Policy("slow", retry_on=(Busy,), initial=5.0, maximum=5.0, timeout=1.0).call(
            fn, sleep=lambda s: None, wait_hint=lambda exc: 5.0)
    assert len(calls) == 1


def test_the_policy_is_also_a_google_retry_object_built_once():
    assert POLICY.retry is POLICY.retry
    assert POLICY.retry.timeout is None


def test_without_jitter_the_pauses_are_the_schedule_and_a_budget_bounds_their_sum():
    steady = Policy("a hand-off", retry_on=(Busy,), initial=0.5, maximum=8, jitter=False)
    fn, calls = flaky(4)
    sleeps, heard = [], []
    assert steady.call(fn, attempts=5, sleep=sleeps.append, on_retry=lambda n, exc, delay: heard.append((n, delay))) == 5
    assert sleeps == [0.5, 1, 2, 4] and heard == [(1, 0.5), (2, 1), (3, 2), (4, 4)]
    fn, calls = flaky(10)
    sleeps = []
    with pytest.raises(Exhausted) as caught:
        steady.call(fn, attempts=10, sleep=sleeps.append, budget=3.5)
    assert sleeps == [0.5, 1, 2] and len(calls) == 4  # a fourth pause (4 s) would pass 3.5 s in all
    assert isinstance(caught.value.last, Busy)


def test_retry_if_narrows_what_is_retried():
    fn, calls = flaky(3, ValueError("not this one"))
    anything = Policy("anything", retry_on=(Exception,), initial=0.01, maximum=0.01)
    with pytest.raises(ValueError):
        anything.call(fn, attempts=5, sleep=lambda _: None, retry_if=lambda exc: not isinstance(exc, ValueError))
    assert len(calls) == 1
