"""Sign-in when auth is on: the page signs in over the Identity Toolkit REST API,
sends the ID token to a stack running AUTH_MODE=firebase, and refreshes it after a reload.

The functions verify real RS256 tokens (tests/tokens.py). Google's sign-in service is
the one thing stood in for: a small local server answering the two REST calls the page
makes (accounts:signInWithPassword, token) with tokens the TokenIssuer signs, the way
the Firebase Auth emulator would.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from tests.tokens import TokenIssuer
from tools import localstack

PASSWORD = "correct horse battery"
ALLOWED = "ops@example.com"


class SignInService:
    """accounts:signInWithPassword and token (refresh), as Identity Toolkit answers them."""

    def __init__(self, issuer: TokenIssuer, accounts: dict[str, str]):
        self.calls: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self):  # noqa: N802 (CORS preflight of the JSON sign-in call)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Methods", "POST")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.end_headers()

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                if self.path.startswith("/v1/accounts:signInWithPassword"):
                    service.calls.append("signIn")
                    body = json.loads(raw)
                    if accounts.get(body.get("email")) != body.get("password"):
                        return self._send(400, {"error": {"code": 400, "message": "INVALID_LOGIN_CREDENTIALS"}})
                    email = body["email"]
                    return self._send(200, {
                        "idToken": issuer.token(email), "refreshToken": f"refresh:{email}",
                        "expiresIn": "3600", "email": email, "localId": "uid-" + email,
                    })
                if self.path.startswith("/v1/token"):
                    service.calls.append("refresh")
                    form = parse_qs(raw)
                    token = form.get("refresh_token", [""])[0]
                    if form.get("grant_type") != ["refresh_token"] or not token.startswith("refresh:"):
                        return self._send(400, {"error": {"code": 400, "message": "INVALID_REFRESH_TOKEN"}})
                    email = token.split(":", 1)[1]
                    return self._send(200, {"id_token": issuer.token(email), "refresh_token": token, "expires_in": "3600"})
                return self._send(404, {"error": {"code": 404, "message": "NOT_FOUND"}})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def auth_stack(emulator):
    issuer = TokenIssuer(emulator.project)
    service = SignInService(issuer, {ALLOWED: PASSWORD, "stranger@example.org": PASSWORD})
    env = {"AUTH_MODE": "firebase", "AUTH_CERTS_URL": issuer.certs_url, "AUTH_ALLOWED_EMAILS": ALLOWED}
    try:
        with localstack.running_stack(
            emulator=emulator, port=localstack.free_port(), env=env, names=["receipts", "templates"]
        ) as stack:
            yield stack, service
    finally:
        service.close()
        issuer.close()


def config_for(service: SignInService) -> str:
    return (
        'export default {auth: "firebase", apiKey: "test-api-key", '
        f'identityToolkitUrl: "{service.url}/v1", secureTokenUrl: "{service.url}/v1"}};'
    )


def test_sign_in_sends_the_id_token_and_survives_a_reload(open_page, auth_stack, db, screenshot):
    stack, service = auth_stack
    page = open_page(base_url=stack.url, config_js=config_for(service), also_allowed=(service.url,), wait_ready=False)
    sent_auth: list[str] = []
    page.on("request", lambda r: sent_auth.append(r.headers.get("authorization", "")) if "/api/templates" in r.url else None)

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    screenshot(page, "sign-in")
    page.get_by_label("Email", exact=True).fill(ALLOWED)
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("The email or password is wrong.")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_have_text(ALLOWED)
    page.wait_for_selector("body[data-ready='true']", state="attached")

    page.get_by_role("tab", name="Templates").click()
    page.get_by_label("Template name").fill("Signed-in template")
    page.get_by_label("Subject").fill("Hi {{firstName}}")
    page.get_by_label("Body").fill("Hello")
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("#template-status")).to_contain_text("Saved")
    assert sent_auth and all(h.startswith("Bearer ey") for h in sent_auth), sent_auth
    assert [d.to_dict()["name"] for d in db.collection("templates").stream()] == ["Signed-in template"]

    # A reload in the same tab refreshes the token instead of asking again.
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    expect(page.locator("#signed-in-as")).to_have_text(ALLOWED)
    expect(page.locator("#templates-body tr")).to_have_count(1)
    assert service.calls.count("refresh") == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_account_off_the_allow_list_is_told_so(open_page, auth_stack):
    stack, service = auth_stack
    page = open_page(base_url=stack.url, config_js=config_for(service), also_allowed=(service.url,), wait_ready=False)
    page.get_by_label("Email", exact=True).fill("stranger@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("tab", name="Templates").click()
    expect(page.locator("#templates-error")).to_contain_text("stranger@example.org is not on the allow-list")
