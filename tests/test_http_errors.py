"""shared/http.py's one table: Google API errors and configuration errors get the right answer."""

from __future__ import annotations

import logging

import pytest
from google.api_core import exceptions as gexc


@pytest.mark.parametrize(
    "error",
    [
        gexc.ResourceExhausted("Quota exceeded."),
        gexc.InternalServerError("Internal error."),
        gexc.ServiceUnavailable("The service is currently unavailable."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_google_api_errors_that_pass_are_503_with_retry_after(function_client, monkeypatch, error):
    from shared.templates import service

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(service, "list_templates", fail)
    response = function_client("templates").get("/api/templates")
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize(
    "setting, value",
    [("TELEMETRY_RATE_LIMIT", "plenty"), ("MAX_BODY_BYTES", "-1"), ("AUTH_MODE", "maybe")],
)
@pytest.mark.parametrize("name, method, path", [
    ("templates", "GET", "/api/templates"),
    ("telemetry", "POST", "/api/telemetry/error"),
    ("receipts", "GET", "/api/health"),
])
def test_a_configuration_error_is_the_json_envelope_without_details(
    function_client, configure, caplog, setting, value, name, method, path
):
    configure(**{setting: value})
    with caplog.at_level(logging.CRITICAL):
        response = function_client(name).open(
            path, method=method, json={"source": "manual", "message": "x"}, headers={"Origin": "http://127.0.0.1:5000"}
        )
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"]["code"] == "internal" and body["error"]["details"] == []
    text = response.get_data(as_text=True)
    assert setting not in text and value not in text and "Traceback" not in text
    assert response.headers["X-Request-Id"] in body["error"]["message"]
    # The operator's log names what is wrong.
    assert any(setting.lower() in r.getMessage().lower() for r in caplog.records if r.levelno >= logging.CRITICAL)
