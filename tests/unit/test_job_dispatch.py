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
