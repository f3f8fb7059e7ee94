"""What every endpoint shares: errors, CORS, preflight, auth, no-store, 500s without stacks."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import TEST_PROJECT
from tests.tokens import TokenIssuer


@pytest.fixture(scope="module")
def issuer():
    issuer = TokenIssuer(TEST_PROJECT)
    yield issuer
    issuer.close()


@pytest.fixture
def firebase_auth(configure, issuer):
    configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_EMAILS="ops@example.com", AUTH_ALLOWED_DOMAINS="acme.test")
    return issuer


@pytest.mark.parametrize("name", ["receipts", "schedule", "jobs", "worker", "templates", "telemetry"])
def test_every_function_loads_and_answers_json_404_off_its_routes(function_client, name):
    response = function_client(name).get("/api/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name, path", [("templates", "/api/templates"), ("jobs", "/api/lead-runs/r1/jobs"),
                                        ("schedule", "/api/calendar/schedule"), ("telemetry", "/api/telemetry/error")])
def test_deeply_nested_json_is_a_400_not_a_500(function_client, name, path):
    response = function_client(name).post(path, data="[" * 50_000, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == "(body)"


def test_preflight_from_allowed_origin(function_client):
    response = function_client("templates").options(
        "/api/templates/abc", headers={"Origin": "http://127.0.0.1:5000", "Access-Control-Request-Method": "PATCH"}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5000"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_other_origins_get_no_cors_grant(function_client):
    response = function_client("templates").get("/api/templates", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_unexpected_exception_is_500_with_request_id_and_no_stack(function_client, monkeypatch, caplog):
    from shared.templates import service

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/app.py line 12")

    monkeypatch.setattr(service, "list_templates", explode)
    with caplog.at_level(logging.ERROR):
        response = function_client("templates").get("/api/templates")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    request_id = response.headers["X-Request-Id"]
    assert response.get_json()["error"]["details"] == [{"requestId": request_id}]
    assert any("Traceback" in r.getMessage() and request_id in r.getMessage() for r in caplog.records)


@pytest.fixture
def unreachable_firestore(configure):
    """A real client pointed at a port nobody listens on, with a short deadline."""
    from tools.localstack import free_port

    from shared.store.client import get_db

    configure(FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}", FIRESTORE_DEADLINE_SECONDS="2")
    get_db.cache_clear()
    yield
    get_db.cache_clear()


def test_firestore_outage_is_a_quick_503_with_retry_after(function_client, unreachable_firestore):
    import time

    started = time.monotonic()
    response = function_client("templates").get("/api/templates")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_transaction_that_cannot_begin_is_a_503_not_a_500(function_client, unreachable_firestore, method):
    response = function_client("templates").open(
        "/api/templates/some-template", method=method, json={"name": "x", "version": 1}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "5"


def test_every_function_is_implemented_no_placeholder_answers_501(function_client):
    response = function_client("receipts").get("/api/lead-runs")
    assert response.status_code == 200
    assert response.get_json()["runs"] == []


class TestFirebaseAuth:
    def test_missing_token_is_401(self, function_client, firebase_auth):
        response = function_client("templates").get("/api/templates")
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthenticated"

    def test_valid_allowed_token_passes(self, function_client, firebase_auth):
        token = firebase_auth.token("ops@example.com")
        response = function_client("templates").get("/api/templates", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

    def test_allowed_domain_passes(self, function_client, firebase_auth):
        token = firebase_auth.token("someone@acme.test")
        response = function_client("templates").get("/api/templates", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "claims",
        [
            {"aud": "another-project"},
            {"iss": "https://securetoken.google.com/another-project"},
            {"exp": 1_000_000_000, "iat": 999_999_000},
        ],
    )
    def test_tokens_for_elsewhere_or_expired_are_401(self, function_client, firebase_auth, claims):
        token = firebase_auth.token("ops@example.com", **claims)
        response = function_client("templates").get("/api/templates", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401

    def test_forged_signature_is_401(self, function_client, firebase_auth):
        forged = TokenIssuer(TEST_PROJECT)  # same kid, different key
        try:
            token = forged.token("ops@example.com")
        finally:
            forged.close()
        response = function_client("templates").get("/api/templates", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401

    @pytest.mark.parametrize("email, verified", [("intruder@other.test", True), ("ops@example.com", False)])
    def test_not_allowed_or_unverified_is_403(self, function_client, firebase_auth, email, verified):
        token = firebase_auth.token(email, verified=verified)
        response = function_client("templates").get("/api/templates", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403

    def test_preflight_needs_no_token(self, function_client, firebase_auth):
        response = function_client("templates").options("/api/templates", headers={"Origin": "http://127.0.0.1:5000"})
        assert response.status_code == 204


def test_worker_tokens_are_long_and_compared_exactly():
    from shared import auth

    token = auth.new_worker_token()
    assert len(token) >= 43 and auth.new_worker_token() != token
    stored = auth.worker_token_hash(token)
    assert stored != token and len(stored) == 64
    assert auth.tokens_match(token, stored)
    assert not auth.tokens_match(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)
    assert not auth.tokens_match(token, token)  # the raw token is never what is stored
    assert not auth.tokens_match(None, stored) and not auth.tokens_match("", "")


def test_settings_parse_comma_lists(configure):
    from shared.settings import get_settings

    configure(ALLOWED_ORIGINS=" https://a.test ,https://b.test,", AUTH_MODE="off")
    assert get_settings().allowed_origins == ("https://a.test", "https://b.test")
    assert not get_settings().auth_enabled
