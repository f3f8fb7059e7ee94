"""The worker's hand-off to its next invocation: one HTTP POST to WORKER_URL.

The call must not wait for the whole chain, or requests would nest until the first
one hit its timeout. So it uses a short read timeout: once the request is on the
wire, a read timeout means the callee holds it and is working (it only answers
after its batch), which counts as delivered. Connection failures and 5xx answers
mean nobody took it: those are retried with exponential backoff. A duplicate
delivery is harmless: the callee claims the hand-off once (jobs/default/leases/{id})
and a second copy gets 409.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import requests

from shared import logs
from shared.settings import Settings, get_settings

logger = logging.getLogger("mission_control.jobs.dispatch")

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 2
ATTEMPTS = 5
BACKOFF_SECONDS = (0.5, 1, 2, 4)

Dispatcher = Callable[[str, str, str], bool]


def default_dispatcher(settings: Settings) -> Dispatcher:
    """The real hand-off: invoke_worker over HTTP with these settings."""
    return lambda run_id, token, lease: invoke_worker(run_id, token, lease, settings)


def worker_url(run_id: str, settings: Settings | None = None) -> str:
    base = (settings or get_settings()).worker_url.rstrip("/")
    return f"{base}/api/lead-runs/{run_id}/jobs/worker"


def invoke_worker(
    run_id: str,
    token: str,
    lease: str,
    settings: Settings | None = None,
    post: Callable[..., requests.Response] = requests.post,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once a worker holds the request (or answered it); False if every attempt failed."""
    url = worker_url(run_id, settings)
    headers = {"X-Worker-Token": token, "X-Worker-Lease": lease}
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = post(url, headers=headers, timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS))
        except requests.ReadTimeout:
            return True
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}"
        else:
            if response.status_code < 500:
                if response.status_code >= 400:
                    logs.log(logger, logging.WARNING, f"worker refused the hand-off: {response.status_code}",
                             runId=run_id, status=response.status_code, body=response.text[:300])
                return True
            problem = f"HTTP {response.status_code}"
        logs.log(logger, logging.WARNING, f"worker hand-off failed ({problem}), attempt {attempt}/{ATTEMPTS}",
                 runId=run_id, attempt=attempt)
        if attempt < ATTEMPTS:
            sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
    return False
