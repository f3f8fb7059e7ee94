"""With AUTH_MODE=firebase, every route but preflight, health and the telemetry
intake refuses callers without a valid Firebase ID token; the worker takes only
its job's token. Routes come from the functions' own routers, so a new route is
covered the day it is added."""

from __future__ import annotations

import re

import pytest
import requests

from tools.openapi import load_routers

pytestmark = pytest.mark.e2e

PUBLIC = {("/api/health", "GET"), ("/api/telemetry/error", "POST")}
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
