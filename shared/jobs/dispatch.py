"""The worker's hand-off to its next invocation: one HTTP POST to WORKER_URL, retried.

The call must not wait for the whole chain, or requests would nest until the first
one hit its timeout. So it uses a short read timeout: once the request is on the
wire, a read timeout means the callee holds it and is working (it only answers
after its batch), which counts as delivered.

What an answer means (docs/reliability.md, "The hand-off"):
- 2xx: delivered. 409: delivered too, a duplicate of a hand-off already taken
  (the callee claims it once: jobs/default/leases/{id});
- 401 / 403: the job changed (cancelled, finished, resumed with a new token): the chain
  stops here, nothing to retry;
- anything else (Cloud Run's 429 when no instance is free, 404 or 408 from a front end,
  5xx) and every connection error: nobody took it. Retried with exponential backoff
  (0.5, 1, 2, 4 s), never sooner than the answer's Retry-After (seconds or an HTTP date,
  RFC 9110 §10.2.3), within MAX_RETRY_SECONDS so the batch, its checkpoint and its
  hand-off finish inside the worker's timeout. What still fails is the sweeper's.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from typing import Callable

import requests

from shared import logs
from shared.retry import Exhausted, Policy
from shared.settings import Settings, get_settings

logger = logging.getLogger("mission_control.jobs.dispatch")

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 2
ATTEMPTS = 5
# Sleeping between attempts stops once this much has been spent (the worker's
# time_budget leaves it, plus the attempts' own timeouts, before its timeout).
MAX_RETRY_SECONDS = 30.0

Dispatcher = Callable[[str, str, str], bool]


class NotTaken(Exception):
    """Nobody took the hand-off; `retry_after` is what the answer asked to wait, in seconds."""

    def __init__(self, problem: str, retry_after: float = 0.0):
        super().__init__(problem)
        self.retry_after = retry_after


class Refused(Exception):
    """401 / 403: the job changed under the chain."""


# 0.5, 1, 2, 4 s (or longer when the answer's Retry-After asks), within MAX_RETRY_SECONDS.
HANDOFF = Policy("the worker hand-off", retry_on=(NotTaken,), initial=0.5, maximum=8, jitter=False)


def default_dispatcher(settings: Settings) -> Dispatcher:
    """The real hand-off: invoke_worker over HTTP with these settings."""
    return lambda run_id, token, lease: invoke_worker(run_id, token, lease, settings)


def worker_url(run_id: str, settings: Settings | None = None) -> str:
    base = (settings or get_settings()).worker_url.rstrip("/")
    return f"{base}/api/lead-runs/{run_id}/jobs/worker"


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float:
    """Retry-After as seconds: a delay ("120") or an HTTP date; 0 when absent or unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


def invoke_worker(
    run_id: str,
    token: str,
    lease: str,
    settings: Settings | None = None,
    post: Callable[..., requests.Response] = requests.post,
    sleep: Callable[[float], None] = time.sleep,
    budget: float = MAX_RETRY_SECONDS,
) -> bool:
    """True once a worker holds the request (or answered 2xx/409); False if the chain stops here."""
    url = worker_url(run_id, settings)
    headers = {"X-Worker-Token": token, "X-Worker-Lease": lease}

    def once() -> bool:
        try:
            response = post(url, headers=headers, timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS))
        except requests.ReadTimeout:
            return True
        except requests.RequestException as exc:
            raise NotTaken(type(exc).__name__) from None
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            return True
        if status in (401, 403):
            raise Refused(f"HTTP {status}")
        raise NotTaken(f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After")))

    def note(attempt: int, exc: BaseException, delay: float) -> None:
        logs.log(logger, logging.WARNING, f"worker hand-off failed ({exc}), attempt {attempt}/{ATTEMPTS}",
                 runId=run_id, attempt=attempt)

    try:
        return HANDOFF.call(once, attempts=ATTEMPTS, sleep=sleep, budget=budget, on_retry=note,
                            wait_hint=lambda exc: getattr(exc, "retry_after", None))
    except Refused as exc:
        logs.log(logger, logging.WARNING, f"worker refused the hand-off ({exc}): the job changed; the chain stops",
                 runId=run_id)
        return False
    except Exhausted as gave_up:
        logs.log(logger, logging.WARNING, f"worker hand-off failed ({gave_up.last}) after every attempt", runId=run_id)
        return False
