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


# The same through the real client: a loopback gRPC server that answers every Firestore
# call with one status code, as Firestore does when out of quota or failing internally
# (google.rpc.Code over gRPC: https://cloud.google.com/firestore/docs/understand-error-codes).

_STREAMING = {"RunQuery", "BatchGetDocuments", "RunAggregationQuery", "Listen", "Write", "PartitionQuery"}


@pytest.fixture
def failing_firestore(configure):
    import concurrent.futures

    import grpc

    from shared.store.client import get_db
    from tools.localstack import free_port

    servers = []

    def start(code: "grpc.StatusCode") -> None:
        def fail(request, context):
            context.abort(code, f"{code.name} from the test server")

        class EveryMethod(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method.rsplit("/", 1)[-1]
                factory = grpc.unary_stream_rpc_method_handler if method in _STREAMING else grpc.unary_unary_rpc_method_handler
                return factory(fail)

        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4), handlers=[EveryMethod()])
        port = free_port()
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)
        configure(FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{port}", FIRESTORE_DEADLINE_SECONDS="2")
        get_db.cache_clear()

    yield start
    for server in servers:
        server.stop(grace=None)
    get_db.cache_clear()


@pytest.mark.parametrize("code", ["RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE"])
@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/templates", None),
    ("POST", "/api/templates", {"name": "T", "subject": "s", "body": "b"}),
])
def test_firestore_answering_an_error_status_is_503_with_retry_after(function_client, failing_firestore, code, method, path, body):
    import grpc

    failing_firestore(getattr(grpc.StatusCode, code))
    response = function_client("templates").open(path, method=method, json=body)
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"
