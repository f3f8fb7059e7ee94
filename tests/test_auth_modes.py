"""Sign-in edges: Google's signing keys unreachable, Auth emulator tokens, and AUTH_MODE=off
refused anywhere but an emulator-backed demo- project (issues 13 and 14)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import TEST_PROJECT
from tests.tokens import FailingCertsServer, TokenIssuer, emulator_token

ALLOWED = "ops@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestSigningKeysUnavailable:
    @pytest.mark.parametrize("status", [500, 503, 404])
    def test_a_certs_server_that_fails_is_a_503_with_retry_after(self, function_client, configure, status):
        certs = FailingCertsServer(status)
        issuer = TokenIssuer(TEST_PROJECT)
        try:
            configure(AUTH_MODE="firebase", AUTH_CERTS_URL=certs.certs_url, AUTH_ALLOWED_EMAILS=ALLOWED)
            response = function_client("templates").get("/api/templates", headers=bearer(issuer.token(ALLOWED)))
        finally:
            certs.close()
            issuer.close()
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["code"] == "unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert certs.fetches >= 1

    def test_an_unreachable_certs_server_is_a_503_too(self, function_client, configure):
        certs = FailingCertsServer()
        certs.close()  # nothing listens there any more
        issuer = TokenIssuer(TEST_PROJECT)
        try:
            configure(AUTH_MODE="firebase", AUTH_CERTS_URL=certs.certs_url, AUTH_ALLOWED_EMAILS=ALLOWED)
            response = function_client("templates").get("/api/templates", headers=bearer(issuer.token(ALLOWED)))
        finally:
            issuer.close()
        assert response.status_code == 503 and "Retry-After" in response.headers

    def test_no_token_is_still_401_during_a_key_outage(self, function_client, configure):
        certs = FailingCertsServer()
        try:
            configure(AUTH_MODE="firebase", AUTH_CERTS_URL=certs.certs_url, AUTH_ALLOWED_EMAILS=ALLOWED)
            assert function_client("templates").get("/api/templates").status_code == 401
        finally:
            certs.close()

    def test_keys_are_fetched_once_per_max_age(self, function_client, configure):
        issuer = TokenIssuer(TEST_PROJECT)
        try:
            configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_EMAILS=ALLOWED)
            client = function_client("templates")
            for _ in range(3):
                assert client.get("/api/templates", headers=bearer(issuer.token(ALLOWED))).status_code == 200
        finally:
            issuer.close()
        assert issuer.fetches == 1


class TestAuthEmulatorTokens:
    @pytest.fixture
    def emulated(self, configure):
        configure(
            AUTH_MODE="firebase", FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099", AUTH_ALLOWED_EMAILS=ALLOWED,
            AUTH_CERTS_URL="http://127.0.0.1:9/never-fetched",
        )

    def test_an_emulator_token_of_an_allowed_user_passes(self, function_client, emulated):
        response = function_client("templates").get("/api/templates", headers=bearer(emulator_token(TEST_PROJECT)))
        assert response.status_code == 200, response.get_json()

    def test_not_on_the_allow_list_is_403_and_no_token_401(self, function_client, emulated):
        client = function_client("templates")
        stranger = client.get("/api/templates", headers=bearer(emulator_token(TEST_PROJECT, "eve@elsewhere.test")))
        assert stranger.status_code == 403
        assert client.get("/api/templates").status_code == 401

    @pytest.mark.parametrize("claims", [
        {"aud": "demo-other"},
        {"iss": "https://securetoken.google.com/demo-other"},
        {"exp": 1_000_000_000, "iat": 999_999_000},
        {"sub": ""},
    ])
    def test_emulator_tokens_for_elsewhere_or_expired_are_401(self, function_client, emulated, claims):
        token = emulator_token(TEST_PROJECT, **claims)
        assert function_client("templates").get("/api/templates", headers=bearer(token)).status_code == 401

    def test_refused_without_the_emulator_configured(self, function_client, configure):
        issuer = TokenIssuer(TEST_PROJECT)
        try:
            configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_EMAILS=ALLOWED)
            response = function_client("templates").get("/api/templates", headers=bearer(emulator_token(TEST_PROJECT)))
        finally:
            issuer.close()
        assert response.status_code == 401

    def test_refused_outside_a_demo_project_even_with_the_emulator_configured(self, function_client, configure):
        issuer = TokenIssuer("mission-control-prod")
        try:
            configure(
                AUTH_MODE="firebase", GOOGLE_CLOUD_PROJECT="mission-control-prod", AUTH_CERTS_URL=issuer.certs_url,
                FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099", AUTH_ALLOWED_EMAILS=ALLOWED,
            )
            token = emulator_token("mission-control-prod")
            response = function_client("templates").get("/api/templates", headers=bearer(token))
        finally:
            issuer.close()
        assert response.status_code == 401


class TestAuthOffOnlyWhereSafe:
    @pytest.mark.parametrize("path, method", [
        ("/api/templates", "GET"), ("/api/templates", "POST"), ("/api/health", "GET"), ("/api/templates", "OPTIONS"),
    ])
    def test_outside_a_demo_project_every_request_is_a_500_envelope(self, function_client, configure, caplog, path, method):
        configure(AUTH_MODE="off", GOOGLE_CLOUD_PROJECT="mission-control-prod")
        name = "receipts" if path == "/api/health" else "templates"
        with caplog.at_level(logging.ERROR):
            response = function_client(name).open(path, method=method, json={"name": "x"})
        assert response.status_code == 500
        body = response.get_json()
        assert body["error"]["code"] == "internal" and "AUTH_MODE" not in body["error"]["message"]
        assert any(r.levelno == logging.ERROR and "AUTH_MODE=off" in r.getMessage() for r in caplog.records)

    def test_without_the_firestore_emulator_it_is_a_500(self, function_client, configure, monkeypatch, db):
        monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
        configure(AUTH_MODE="off")
        response = function_client("templates").post("/api/templates", json={"name": "x", "subject": "s", "body": "b"})
        assert response.status_code == 500
        assert list(db.collection("templates").stream()) == []

    def test_on_the_emulator_with_a_demo_project_it_serves(self, function_client, configure):
        configure(AUTH_MODE="off")
        assert function_client("templates").get("/api/templates").status_code == 200
