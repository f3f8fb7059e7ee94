"""Sign-in in the browser, the way it runs where it is deployed.

- A page served as Firebase Hosting serves it (only public/ plus a production-shaped
  /__/firebase/init.json) shows the sign-in form; nothing committed switches auth off.
- Against `make dev AUTH=emulator`'s shape of stack (functions on AUTH_MODE=firebase,
  the real Firebase Auth emulator from firebase-tools), the page signs in through the
  emulator, sends its ID token, stays signed in across a reload, and an account that is
  not on the allow-list is told so. Accounts are made through the emulator's REST API.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.conftest import LOG_DIR
from tools import localstack

PASSWORD = "correct horse battery"
ALLOWED = "ops@example.com"
# What Hosting serves at /__/firebase/init.json for a real project (the web app's config).
PRODUCTION_INIT = {
    "apiKey": "AIzaSyDOCAbC123dEf456GhI789jKl012-MnO",
    "appId": "1:123456789012:web:0123456789abcdef",
    "authDomain": "mission-control-prod.firebaseapp.com",
    "databaseURL": "",
    "messagingSenderId": "123456789012",
    "projectId": "mission-control-prod",
    "storageBucket": "mission-control-prod.appspot.com",
}


@pytest.fixture
def hosting_site(tmp_path):
    """A static server of public/ plus the reserved init.json, nothing else: Hosting's view."""

    def start(init: dict | None):
        root = tmp_path / "site"
        shutil.copytree(localstack.ROOT / "public", root)
        if init is not None:
            (root / "__" / "firebase").mkdir(parents=True)
            (root / "__" / "firebase" / "init.json").write_text(json.dumps(init))
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *args: None
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()


def test_a_page_served_as_hosting_serves_it_asks_for_sign_in(open_page, hosting_site, screenshot):
    url = hosting_site(PRODUCTION_INIT)
    page = open_page(base_url=url, wait_ready=False)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-email")).to_be_visible()
    expect(page.locator("#signin-password")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    expect(page.locator("#auth-area")).to_contain_text("Not signed in")
    expect(page.locator("#signin-error")).to_be_hidden()
    screenshot(page, "sign-in-hosting")


def test_without_init_json_the_page_fails_closed(open_page, hosting_site):
    url = hosting_site(None)
    page = open_page(base_url=url, wait_ready=False)
    expect(page.locator("#signin-error")).to_contain_text("Could not load the site's Firebase config")
    expect(page.locator("#main")).to_be_hidden()
    expect(page.locator("#auth-area")).not_to_contain_text("Auth off")


def test_the_local_auth_off_stack_says_so_on_the_page(page):
    expect(page.locator("#auth-area")).to_contain_text("Auth off")
    expect(page.locator("#signin")).to_be_hidden()


@pytest.fixture(scope="module")
def auth_emulator(emulator):
    auth = localstack.start_auth_emulator(localstack.free_port(), emulator.project, LOG_DIR / "auth-emulator.log")
    try:
        yield auth
    finally:
        auth.stop()


@pytest.fixture(scope="module")
def auth_stack(emulator, auth_emulator):
    env = {
        "AUTH_MODE": "firebase",
        "FIREBASE_AUTH_EMULATOR_HOST": auth_emulator.host,
        "AUTH_ALLOWED_EMAILS": ALLOWED,
    }
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), env=env, names=["receipts", "templates"], sweep_interval=0,
    ) as stack:
        yield stack


@pytest.fixture
def accounts(auth_emulator):
    auth_emulator.reset()
    auth_emulator.create_user(ALLOWED, PASSWORD)
    auth_emulator.create_user("stranger@example.org", PASSWORD)
    return auth_emulator


def test_sign_in_through_the_auth_emulator_sends_the_id_token_and_survives_a_reload(
    open_page, auth_stack, accounts, db, screenshot
):
    page = open_page(base_url=auth_stack.url, also_allowed=(accounts.url,), wait_ready=False)
    sent_auth: list[str] = []
    refreshes: list[str] = []
    page.on("request", lambda r: sent_auth.append(r.headers.get("authorization", "")) if "/api/templates" in r.url else None)
    page.on("request", lambda r: refreshes.append(r.url) if "/securetoken.googleapis.com/v1/token" in r.url else None)

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    page.locator("#signin-email").fill(ALLOWED)
    page.locator("#signin-password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text(re.compile("password is wrong"))

    page.locator("#signin-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_have_text(ALLOWED)
    page.wait_for_selector("body[data-ready='true']", state="attached")
    screenshot(page, "signed-in-emulator")

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
    assert len(refreshes) == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_account_off_the_allow_list_is_told_so(open_page, auth_stack, accounts):
    page = open_page(base_url=auth_stack.url, also_allowed=(accounts.url,), wait_ready=False)
    page.locator("#signin-email").fill("stranger@example.org")
    page.locator("#signin-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("tab", name="Templates").click()
    expect(page.locator("#templates-error")).to_contain_text("stranger@example.org is not on the allow-list")


def test_the_api_answers_401_without_and_403_off_the_list_with_emulator_tokens(auth_stack, accounts):
    import requests

    url = f"{auth_stack.url}/api/templates"
    assert requests.get(url, timeout=10).status_code == 401
    stranger = accounts.sign_in("stranger@example.org", PASSWORD)
    assert requests.get(url, headers={"Authorization": f"Bearer {stranger}"}, timeout=10).status_code == 403
    operator = accounts.sign_in(ALLOWED, PASSWORD)
    assert requests.get(url, headers={"Authorization": f"Bearer {operator}"}, timeout=10).status_code == 200
