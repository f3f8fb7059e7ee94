"""Each scrub rule on its own, then the properties that hold for any text."""

from __future__ import annotations

import secrets
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.telemetry.scrub import (
    CARD,
    EMAIL,
    JWT,
    REDACTED,
    TOKEN,
    is_sensitive_key,
    luhn_valid,
    scrub_text,
    scrub_value,
)

ID_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9."
    "eyJpc3MiOiJodHRwczovL3NlY3VyZXRva2VuLmdvb2dsZS5jb20vcCIsInN1YiI6InUxIn0."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmU"
)


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "user_password", "passwd", "pass", "secret", "client_secret", "token",
     "accessToken", "X-Worker-Token", "workerToken", "auth", "Authorization", "X-Auth-Key", "api_key",
     "apiKey", "API-KEY", "x-api-key", "bearer", "credentials", "private_key", "privateKey", "cookie",
     "Set-Cookie", "session_id", "signature"],
)
def test_credential_keys_are_sensitive(key):
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["author", "authority", "passport", "design", "name", "status", "runId", "message"])
def test_ordinary_keys_are_not(key):
    assert not is_sensitive_key(key)


def test_values_under_sensitive_keys_are_replaced_at_any_depth():
    context = {
        "page": "runs",
        "PASSWORD": "hunter2",
        "request": {"headers": {"Authorization": "Basic xyz", "Cookie": "sid=1", "accept": "json"}},
        "attempts": [{"api_key": {"nested": "k"}}, {"ok": 1}],
        "credentials": ["a", "b"],
    }
    assert scrub_value(context) == {
        "page": "runs",
        "PASSWORD": REDACTED,
        "request": {"headers": {"Authorization": REDACTED, "Cookie": REDACTED, "accept": "json"}},
        "attempts": [{"api_key": REDACTED}, {"ok": 1}],
        "credentials": REDACTED,
    }


def test_query_string_and_fragment_credentials():
    url = f"https://mc.web.app/ops?run=r1&access_token=abc123&apiKey=K9&x=1#id_token={ID_TOKEN}&state=s"
    assert scrub_text(url) == (
        f"https://mc.web.app/ops?run=r1&access_token={REDACTED}&apiKey={REDACTED}&x=1#id_token={JWT}&state=s"
    )


def test_percent_encoded_query_inside_a_redirect_parameter():
    assert scrub_text("/login?next=%2Fcb%3Ftoken%3DabcDEF123%26x%3D1") == (
        f"/login?next=%2Fcb%3Ftoken%3D{REDACTED}%26x%3D1"
    )


def test_key_value_text_and_json():
    text = 'password=hunter2 then secret: s3cr3t and {"token":"t0k", "n": 1} and apiKey=\'q\''
    assert scrub_text(text) == (
        f'password={REDACTED} then secret: {REDACTED} and {{"token":"{REDACTED}", "n": 1}} and apiKey=\'{REDACTED}\''
    )


def test_bearer_and_basic_credentials():
    assert scrub_text("sent bearer abcdefgh12345678 to api") == f"sent bearer {REDACTED} to api"
    assert scrub_text("Basic dXNlcjpwYXNzd29yZA== failed") == f"Basic {REDACTED} failed"
    assert scrub_text("basic information about the run") == "basic information about the run"


def test_header_lines_are_redacted_whole():
    assert scrub_text("Cookie: a=b; sid=xyz\nnext") == f"Cookie: {REDACTED}\nnext"
    assert scrub_text("authorization: Token abc def") == f"authorization: {REDACTED}"


def test_jwts_anywhere():
    assert scrub_text(f"token expired {ID_TOKEN}.") == f"token expired {JWT}."
    assert scrub_text(f"x={ID_TOKEN}") == f"x={JWT}"


def test_user_info_in_urls():
    assert scrub_text("https://admin:pa55@db.example.com/x") == "https://***@db.example.com/x"


def test_emails_in_free_text():
    assert scrub_text("could not mail ann.lee+q@example.co.uk today") == f"could not mail {EMAIL} today"
    assert scrub_text("/leads/bob@acme.io/x") == f"/leads/{EMAIL}/x"


def test_firefox_frames_are_not_emails():
    frame = "render@app.js:12:5"
    assert scrub_text(frame) == frame


def test_worker_tokens_and_long_random_strings():
    for _ in range(2000):
        token = secrets.token_urlsafe(32)
        assert scrub_text(f"worker {token} failed") == f"worker {TOKEN} failed", token
    # 32 characters, the shortest the rule looks at: a shape heuristic, not a guarantee
    # (about 2 in 10,000 such strings read as camelCase words and are kept).
    short = [secrets.token_urlsafe(24) for _ in range(2000)]
    assert sum(scrub_text(token) == TOKEN for token in short) >= 1980


@pytest.mark.parametrize(
    "identifier",
    [
        "handleIncomingRequestForUserProfile",
        "getElementsByClassNameAndFilter",
        "HTMLCanvasElementRenderingContext2D",
        "ERR_INVALID_ARGUMENT_TYPE_FOR_TEMPLATE",
        "campaign-2024-spring-outreach-batch-7",
        "3f9a8b7c6d5e4f3a2b1c3f9a8b7c6d5e4f3a2b1c",  # a release SHA
        "550e8400-e29b-41d4-a716-446655440000",
        "chrome-extension-abcdefghijklmnopabcdefghijklmnop",
    ],
)
def test_identifiers_and_digests_are_not_tokens(identifier):
    assert scrub_text(identifier) == identifier


def test_card_numbers_that_pass_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    text = "paid 4111 1111 1111 1111, 5500-0000-0000-0004, 378282246310005; not 4111111111111112"
    assert scrub_text(text) == f"paid {CARD}, {CARD}, {CARD}; not 4111111111111112"


def test_timestamps_and_stack_positions_are_not_cards():
    text = "at 1732450000000 ms, id 1000000000000000, at f (https://x/app.js:1234567:12)"
    assert scrub_text(text) == text


def test_stack_frames_survive_with_only_their_secrets_removed():
    stack = (
        "TypeError: x\n"
        "    at getToken (https://mc.web.app/auth.js:12:7)\n"
        "    at https://mc.web.app/app.js?token=abc:3:4\n"
        "auth@https://mc.web.app/session.js:9:9"
    )
    assert scrub_text(stack) == stack.replace("token=abc", f"token={REDACTED}")


def test_keys_themselves_are_scrubbed():
    assert scrub_value({"bob@acme.io": 1}) == {EMAIL: 1}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_scrubbing_is_idempotent_and_never_fails(text):
    once = scrub_text(text)
    assert scrub_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60), st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_a_worker_token_never_survives_whatever_surrounds_it(before, after):
    token = secrets.token_urlsafe(32)
    assert token not in scrub_text(f"{before} {token} {after}")


@pytest.mark.parametrize(
    "hostile",
    ["a" * 65_536, "@" * 65_536, "a@" * 32_768, "1 " * 32_768, "token=" * 10_000, "eyJ" * 20_000,
     "https://" * 8_000, "a." * 32_768, "x@a." * 16_000, "Bearer " * 9_000, "passwordpassword" * 4_000,
     "-" * 65_536, '"token":"' * 7_000, "token" * 13_000, "\n" * 65_536, "tokena" * 10_000, "a=" * 32_768,
     "%3Da.b." * 9_000, "next=%2F" * 8_000],
)
def test_64_kib_of_hostile_text_scrubs_in_linear_time(hostile):
    started = time.perf_counter()
    scrub_text(hostile)
    assert time.perf_counter() - started < 1.0
