"""With AUTH_MODE=firebase, every route but preflight, health, the telemetry
intake and the one-click unsubscribe URL (RFC 8058: no sign-in) refuses callers without a valid Firebase ID token; the worker takes only
its job's token. Routes come from the functions' own routers, so a new route is
covered the day it is added."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tools import localstack
from tools.openapi import load_routers

pytestmark = pytest.mark.e2e

PUBLIC = {("/api/health", "GET"), ("/api/telemetry/error", "POST"), ("/u/<token>", "GET"), ("/u/<token>", "POST")}
WORKER = {("/api/lead-runs/<run_id>/jobs/worker", "POST")}
# Cloud Scheduler's route: an OIDC token, not a user's, and none on a demo- project with the
# emulator (the local timer's case: this stack). tests/test_jobs_sweeper.py holds it to
# 401/403/503 with deployed settings.
SCHEDULER = {("/api/jobs/sweep", "POST")}


def _operations():
    for router in load_routers():
        for op in router.operations:
            for method in op.methods:
                yield op.rule, method


def _url(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?\w+>", "auth-probe-1", rule)


ROUTES = sorted(set(_operations()))


@pytest.mark.parametrize("rule, method", ROUTES)
def test_without_a_token_only_public_routes_answer(secured_stack, rule, method):
    stack = secured_stack
    response = requests.request(method, stack.url + _url(rule), json={}, timeout=15)
    if (rule, method) in PUBLIC | SCHEDULER:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 401, (rule, method, response.status_code, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("rule, method", [r for r in ROUTES if r not in PUBLIC | WORKER | SCHEDULER])
def test_a_valid_token_gets_past_auth_and_a_foreign_one_does_not(secured_stack, rule, method):
    stack = secured_stack
    response = requests.request(method, stack.url + _url(rule), json={}, headers=stack.headers(), timeout=15)
    assert response.status_code not in (401, 403), response.text
    outsider = stack.headers("eve@elsewhere.test")
    assert requests.request(method, stack.url + _url(rule), json={}, headers=outsider, timeout=15).status_code == 403


@pytest.mark.parametrize("rule, method", ROUTES)
def test_preflight_needs_no_token(secured_stack, rule, method):
    stack = secured_stack
    response = requests.options(stack.url + _url(rule), headers={"Origin": stack.url}, timeout=15)
    assert response.status_code == 204
    assert method in response.headers["Allow"]


def test_worker_refuses_user_tokens_and_missing_worker_tokens(secured_stack):
    url = secured_stack.url + "/api/lead-runs/auth-probe-1/jobs/worker"
    assert requests.post(url, json={}, headers=secured_stack.headers(), timeout=15).status_code == 401
    assert requests.post(url, json={}, headers={"X-Worker-Token": "x" * 43}, timeout=15).status_code in (403, 404)


# `make test` installs firebase-tools first (browser-deps); `make test-fast` must work without Node.
@pytest.mark.skipif(not localstack.FIREBASE_CLI.exists(), reason="firebase-tools is not installed: run `make node-deps`")
def test_make_dev_auth_emulator_signs_in_through_the_real_auth_emulator(emulator, tmp_path):
    """`make dev AUTH=emulator` as a developer runs it: 401 without a token, 403 off the
    allow-list, 200 for an allowed account signed in at the emulator; init.json names it."""
    port, auth_port = localstack.free_port(), localstack.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH_MODE", "LOG_FORMAT")}
    env.update(
        FIRESTORE_EMULATOR_HOST=emulator.host, GOOGLE_CLOUD_PROJECT=emulator.project, SWEEP_INTERVAL_SECONDS="0",
        AUTH_ALLOWED_EMAILS="ops@example.com", PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, str(localstack.ROOT / "tools" / "dev.py"), "--port", str(port), "--auth", "emulator",
         "--auth-port", str(auth_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while not any("Operations page and API" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        auth = localstack.AuthEmulator(host=f"127.0.0.1:{auth_port}", project=emulator.project)
        auth.create_user("ops@example.com", "secret-pass")
        auth.create_user("eve@example.org", "secret-pass")
        base = f"http://127.0.0.1:{port}"
        init = requests.get(f"{base}/__/firebase/init.json", timeout=10).json()
        assert init["authEmulatorHost"] == auth.host and "authMode" not in init
        url = f"{base}/api/templates"
        assert requests.get(url, timeout=15).status_code == 401
        eve = auth.sign_in("eve@example.org", "secret-pass")
        assert requests.get(url, headers={"Authorization": f"Bearer {eve}"}, timeout=15).status_code == 403
        ops = auth.sign_in("ops@example.com", "secret-pass")
        assert requests.get(url, headers={"Authorization": f"Bearer {ops}"}, timeout=15).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{auth_port}/", timeout=5)  # the Auth emulator stopped with it
