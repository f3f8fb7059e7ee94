"""The worker's hand-off call (shared/jobs/dispatch.py): what counts as delivered, what is retried."""

from __future__ import annotations

import pytest
import requests

from shared.jobs import dispatch
from shared.settings import Settings


def answer(status: int) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = b"{}"
    return made


class Poster:
    """Plays back a script of answers (a Response or an exception to raise)."""

    def __init__(self, *script):
        self.script, self.calls = list(script), []

    def __call__(self, url, headers=None, timeout=None):
        self.calls.append({"url": url, "headers": headers, "timeout": timeout})
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def invoke(poster, sleeps):
    settings = Settings(worker_url="https://worker.example.com/")
    return dispatch.invoke_worker("run-1", "tok", "h-1", settings, post=poster, sleep=sleeps.append)


def test_the_call_names_the_run_token_and_hand_off_with_a_short_read_timeout():
    poster, sleeps = Poster(answer(200)), []
    assert invoke(poster, sleeps) is True
    (call,) = poster.calls
    assert call["url"] == "https://worker.example.com/api/lead-runs/run-1/jobs/worker"
    assert call["headers"] == {"X-Worker-Token": "tok", "X-Worker-Lease": "h-1"}
    assert call["timeout"] == (5, 2)
    assert sleeps == []


def test_a_read_timeout_means_the_worker_holds_the_request():
    poster, sleeps = Poster(requests.ReadTimeout()), []
    assert invoke(poster, sleeps) is True and len(poster.calls) == 1


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("refused"), requests.ConnectTimeout(), answer(503), answer(500)]
)
def test_nobody_took_it_is_retried_with_backoff(failure):
    poster, sleeps = Poster(failure, failure, answer(200)), []
    assert invoke(poster, sleeps) is True
    assert len(poster.calls) == 3 and sleeps == [0.5, 1]


def test_a_refusal_is_not_retried():
    poster, sleeps = Poster(answer(409)), []
    assert invoke(poster, sleeps) is True and len(poster.calls) == 1


def test_giving_up_after_every_attempt():
    poster, sleeps = Poster(*[requests.ConnectionError()] * dispatch.ATTEMPTS), []
    assert invoke(poster, sleeps) is False
    assert len(poster.calls) == dispatch.ATTEMPTS and sleeps == [0.5, 1, 2, 4]


# --- issue 13: only 2xx or 409 is delivered; Retry-After; a bound -----------------------


def retry_after(status: int, value: str) -> requests.Response:
    made = answer(status)
    made.headers["Retry-After"] = value
    return made


@pytest.mark.parametrize("status", [429, 404, 408, 502, 504])
def test_every_other_answer_is_retried(status):
    poster, sleeps = Poster(answer(status), answer(202)), []
    assert invoke(poster, sleeps) is True
    assert len(poster.calls) == 2 and sleeps == [0.5]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_stops_the_chain_without_retrying(status):
    poster, sleeps = Poster(answer(status)), []
    assert invoke(poster, sleeps) is False
    assert len(poster.calls) == 1 and sleeps == []


def test_retry_after_in_seconds_is_honoured():
    poster, sleeps = Poster(retry_after(429, "3"), retry_after(429, "1"), answer(200)), []
    assert invoke(poster, sleeps) is True
    assert sleeps == [3.0, 1.0]  # never sooner than asked; the backoff when it asks for less


def test_retry_after_as_an_http_date():
    import datetime as dt

    now = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert dispatch.retry_after_seconds("Tue, 01 Jan 2030 12:00:07 GMT", now) == 7.0
    assert dispatch.retry_after_seconds("Tue, 01 Jan 2030 11:00:00 GMT", now) == 0.0
    assert dispatch.retry_after_seconds("soon", now) == 0.0 and dispatch.retry_after_seconds(None, now) == 0.0


def test_the_retries_stop_inside_their_budget():
    poster, sleeps = Poster(*[retry_after(429, "20")] * dispatch.ATTEMPTS), []
    settings = Settings(worker_url="https://worker.example.com/")
    delivered = dispatch.invoke_worker("run-1", "tok", "h-1", settings, post=poster, sleep=sleeps.append, budget=30)
    assert delivered is False
    assert sleeps == [20.0] and len(poster.calls) == 2  # a second 20 s wait would pass the 30 s budget
