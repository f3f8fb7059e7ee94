"""GET /api/health, served by the receipts function: what the smoke check and uptime checks read."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from shared import clock
from tests.conftest import LOG_DIR
from tests.tokens import TokenIssuer
from tools import localstack


def test_health_is_ok_with_the_stamped_version(function_client, configure):
    configure(BUILD_VERSION="0123456789ab")
    response = function_client("receipts").get("/api/health")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"status", "version", "time", "firestore"}
    assert body["status"] == "ok" and body["firestore"] == "ok"
    assert body["version"] == "0123456789ab"
    assert abs((clock.parse_rfc3339(body["time"]) - clock.now()).total_seconds()) < 60
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")


def test_version_defaults_to_dev_outside_a_deploy(function_client):
    assert function_client("receipts").get("/api/health").get_json()["version"] == "dev"


def test_health_needs_no_sign_in_even_when_auth_is_on(function_client, configure):
    issuer = TokenIssuer("demo-mission-control-test")
    try:
        configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com", AUTH_CERTS_URL=issuer.certs_url)
        client = function_client("receipts")
        anonymous = client.get("/api/health")
        assert anonymous.status_code == 200 and anonymous.get_json()["status"] == "ok"
        # A broken token is not an error on a public route: health does not care who asks.
        garbage = client.get("/api/health", headers={"Authorization": "Bearer not-a-token"})
        assert garbage.status_code == 200
        # The same function's other routes do need a token, so "public" is a per-route decision.
        assert client.get("/api/lead-runs").status_code == 401
    finally:
        issuer.close()


def test_health_says_nothing_sensitive(function_client, configure):
    configure(BUILD_VERSION="abc", AUTH_ALLOWED_EMAILS="boss@example.com", GOOGLE_CALENDAR_ID="secret-calendar")
    text = function_client("receipts").get("/api/health").get_data(as_text=True)
    for leak in ("boss@example.com", "secret-calendar", "demo-mission-control-test", "127.0.0.1"):
        assert leak not in text


def test_health_is_read_only(function_client):
    response = function_client("receipts").post("/api/health", json={})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


@pytest.fixture(params=["closed-port", "silent-server"])
def unreachable_firestore(request):
    """host:port of a Firestore that refuses connections, or accepts them and never answers."""
    if request.param == "closed-port":
        yield f"127.0.0.1:{localstack.free_port()}"  # bound and released: nothing listens there
        return
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield f"127.0.0.1:{silent.getsockname()[1]}"


def test_health_is_503_within_seconds_when_firestore_is_unreachable(unreachable_firestore):
    """A function whose Firestore cannot be reached: a quick 503, not a hang and not a 500."""
    env = {
        "FIRESTORE_EMULATOR_HOST": unreachable_firestore,
        "GOOGLE_CLOUD_PROJECT": "demo-mission-control-test",
        "AUTH_MODE": "firebase",
        "BUILD_VERSION": "v-unreachable",
    }
    function = localstack.start_function("receipts", localstack.free_port(), env, LOG_DIR)
    try:
        localstack.wait_for_http(function.url + "/", 60, function.process)
        started = time.monotonic()
        response = requests.get(function.url + "/api/health", timeout=30)
        elapsed = time.monotonic() - started
    finally:
        localstack.stop(function.process)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["firestore"] == "error" and body["status"] == "error"
    assert body["reason"] and len(body["reason"]) < 100 and "Traceback" not in body["reason"]
    assert body["version"] == "v-unreachable"
    assert response.headers["Retry-After"] and response.headers["Cache-Control"] == "no-store"
    assert elapsed < 8, f"health took {elapsed:.1f}s to report an unreachable Firestore"


@pytest.mark.e2e
def test_health_through_the_hosting_router(stack):
    response = requests.get(f"{stack.url}/api/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["firestore"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"
