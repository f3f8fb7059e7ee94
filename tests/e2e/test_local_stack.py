"""The local stack over real HTTP: router → functions-framework servers → emulator."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_templates_round_trip_through_the_router(stack):
    created = requests.post(
        f"{stack.url}/api/templates",
        json={"name": "E2E", "subject": "Hi {{firstName}}", "body": "Body", "draftFirst": True},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    template = created.json()
    fetched = requests.get(f"{stack.url}/api/templates/{template['id']}", timeout=10)
    assert fetched.status_code == 200 and fetched.json() == template
    assert fetched.headers["Cache-Control"] == "no-store"
    patched = requests.patch(
        f"{stack.url}/api/templates/{template['id']}", json={"draftFirst": False}, headers={"If-Match": '"1"'}, timeout=10
    )
    assert patched.json()["draftFirst"] is False and patched.json()["version"] == 2


def test_bad_input_over_http_is_a_4xx_envelope(stack):
    response = requests.post(f"{stack.url}/api/templates", data="{nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"


def test_the_page_is_served_at_root(stack):
    response = requests.get(f"{stack.url}/", timeout=10)
    assert response.status_code == 200 and "text/html" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_api_path_is_404_from_hosting(stack):
    assert requests.get(f"{stack.url}/api/unknown", timeout=10).status_code == 404


def test_path_reaches_the_function_unchanged(stack):
    response = requests.get(f"{stack.url}/api/templates/does-not-exist?x=1", timeout=10)
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["error"]["message"]
