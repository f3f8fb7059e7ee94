"""scripts/smoke, the post-deploy check, run against `make dev`'s stack over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from tests.conftest import LOG_DIR, ROOT, TEST_PROJECT
from tests.tokens import TokenIssuer
from tools import localstack

pytestmark = pytest.mark.e2e

SMOKE = ROOT / "scripts" / "smoke"


def smoke(base_url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SMOKE_ID_TOKEN"}
    if token is not None:
        env["SMOKE_ID_TOKEN"] = token
    return subprocess.run(
        [sys.executable, str(SMOKE), base_url, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_smoke_passes_against_the_local_stack(stack, db):
    result = smoke(stack.url, "--expect-version", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("health", "page", "signin", "templates"):
        assert f"ok    {check}:" in result.stdout
    assert "smoke check passed" in result.stdout
    # The round-trip cleans up after itself: a deployed site keeps no smoke templates.
    assert list(db.collection("templates").stream()) == []


def test_expect_sign_in_fails_against_an_auth_off_stack(stack):
    result = smoke(stack.url, "--expect-sign-in")
    assert result.returncode == 1
    assert "signin check failed" in result.stderr and "authMode 'off'" in result.stderr
    assert "smoke check FAILED: signin" in result.stderr


def test_smoke_without_expected_version_accepts_any(stack):
    result = smoke(stack.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "version dev" in result.stdout


def test_wrong_version_fails_naming_the_health_check(stack):
    result = smoke(stack.url, "--expect-version", "deadbeef0000", "--health-timeout", "1")
    assert result.returncode == 1
    assert "health check failed" in result.stderr
    assert "reports version 'dev', expected 'deadbeef0000'" in result.stderr
    # The other checks still ran and passed: the report says exactly what is wrong.
    assert "ok    page:" in result.stdout and "ok    templates:" in result.stdout
    assert "smoke check FAILED: health" in result.stderr


def test_nothing_listening_fails_every_check_clearly():
    result = smoke(f"http://127.0.0.1:{localstack.free_port()}", "--health-timeout", "0")
    assert result.returncode == 1
    assert "did not get an answer" in result.stderr
    assert "smoke check FAILED: health, page, signin, templates" in result.stderr


def test_a_url_that_is_not_http_is_a_usage_error():
    result = smoke("127.0.0.1:5000")
    assert result.returncode == 2 and "BASE_URL must be an http(s) URL" in result.stderr


# --- a deployed-like stack: AUTH_MODE=firebase, a token from the environment -------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(TEST_PROJECT)
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def auth_stack(emulator, issuer) -> Iterator[localstack.Stack]:
    env = {
        "AUTH_MODE": "firebase",
        "AUTH_ALLOWED_EMAILS": "smoke-bot@example.com",
        "AUTH_CERTS_URL": issuer.certs_url,
        "BUILD_VERSION": "0123456789ab",
    }
    # Only what the smoke check calls: receipts (health) and templates.
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), log_dir=LOG_DIR, env=env, names=["receipts", "templates"]
    ) as running:
        yield running


def test_smoke_passes_with_the_token_from_the_environment(auth_stack, issuer):
    result = smoke(auth_stack.url, "--expect-version", "0123456789ab", token=issuer.token("smoke-bot@example.com"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_smoke_without_a_token_fails_the_templates_check(auth_stack):
    result = smoke(auth_stack.url, "--expect-version", "0123456789ab")
    assert result.returncode == 1
    assert "ok    health:" in result.stdout and "ok    page:" in result.stdout
    assert "templates check failed: POST /api/templates is 401" in result.stderr
    assert "no SMOKE_ID_TOKEN was set" in result.stderr


def test_smoke_with_a_user_off_the_allow_list_fails_with_403(auth_stack, issuer):
    result = smoke(auth_stack.url, token=issuer.token("stranger@elsewhere.test"))
    assert result.returncode == 1
    assert "POST /api/templates is 403" in result.stderr and "allow-list" in result.stderr


# --- failure messages for answers the real stack would not give --------------------------


class FakeSite:
    """An HTTP server answering fixed responses, to see what the script says about them."""

    def __init__(self, routes: dict[str, tuple[int, str, str]]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                status, content_type, body = routes.get(self.path, (404, "text/plain", "no"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_health_503_is_reported_with_its_reason_and_a_page_without_the_marker_fails():
    health = {"status": "error", "version": "x", "time": "t", "firestore": "error", "reason": "DeadlineExceeded"}
    site = FakeSite({
        "/api/health": (503, "application/json", json.dumps(health)),
        "/": (200, "text/html", "<html><title>Something else</title></html>"),
    })
    try:
        result = smoke(site.url, "--health-timeout", "0")
    finally:
        site.server.shutdown()
    assert result.returncode == 1
    assert "GET /api/health is 503: firestore 'error', reason 'DeadlineExceeded'" in result.stderr
    assert "page check failed: GET / does not look like the Operations page" in result.stderr
