"""POST /api/telemetry/error through the real functions-framework app, on the emulator.

What is checked here is what reaches Firestore and what reaches the log, since
those are the two places a report ends up: bounds, scrubbing, grouping, the
Error Reporting entry, the rate limit and exact counting under concurrency.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading

import pytest
from google.cloud.logging_v2.handlers import StructuredLogHandler

from shared.telemetry import limits
from shared.telemetry.error_reporting import REPORTED_ERROR_EVENT
from tests.conftest import TEST_PROJECT
from tests.tokens import TokenIssuer

URL = "/api/telemetry/error"
PAGE = "https://mc.web.app/ops?tab=runs"

CHROME_STACK = (
    "TypeError: Cannot read properties of undefined (reading 'status')\n"
    "    at renderJob (https://mc.web.app/runs.js?v=41:120:17)\n"
    "    at async loadRun (https://mc.web.app/runs.js?v=41:88:5)\n"
    "    at https://www.gstatic.com/firebasejs/10.12.0/firebase-app.js:1:4410"
)


def report(**fields):
    return {"source": "auto", "message": "TypeError: Cannot read properties of undefined", "url": PAGE, **fields}


@pytest.fixture
def client(function_client):
    return function_client("telemetry")


@pytest.fixture
def unlimited(configure):
    configure(TELEMETRY_RATE_LIMIT="0")


def post(client, body, headers=None, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data=data, headers={"Content-Type": "application/json", **(headers or {})}, **kwargs)


class CapturedLogs:
    """Everything written through the logging module, formatted as Cloud Logging would receive it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = StructuredLogHandler(stream=self.stream, project_id=TEST_PROJECT)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip().startswith("{")]

    def error_events(self) -> list[dict]:
        return [e for e in self.entries() if e.get("@type") == REPORTED_ERROR_EVENT]


@pytest.fixture
def logs():
    captured = CapturedLogs()
    root = logging.getLogger()
    root.addHandler(captured.handler)
    yield captured
    root.removeHandler(captured.handler)


def every_document(db) -> list[tuple[str, dict]]:
    found = []

    def walk(collection):
        for snapshot in collection.stream():
            found.append((snapshot.reference.path, snapshot.to_dict()))
            for sub in snapshot.reference.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    return found


def group(db, fingerprint):
    return db.collection("telemetry_errors").document(fingerprint).get().to_dict()


def events(db, fingerprint):
    return [s.to_dict() for s in db.collection("telemetry_errors").document(fingerprint).collection("events").stream()]


# --- accepted, stored, counted --------------------------------------------------


def test_a_report_is_accepted_stored_and_grouped(client, db):
    response = post(client, report(stack=CHROME_STACK, runId="run-7", leadDocId="lead-3", release="ops-page-1",
                                   severity="error", userAgent="Mozilla/5.0", context={"screen": "runs"}))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert set(body) == {"reportId", "fingerprint"}
    assert response.headers["Cache-Control"] == "no-store"

    stored = group(db, body["fingerprint"])
    assert stored["count"] == 1
    assert stored["firstSeen"] == stored["lastSeen"]
    assert stored["sources"] == ["auto"]
    assert stored["lastRunId"] == "run-7"
    assert stored["lastReportId"] == body["reportId"]
    assert stored["errorType"] == "TypeError"
    assert stored["groupedBy"] == "stack"
    assert stored["sample"]["reportId"] == body["reportId"]

    event = db.collection("telemetry_errors").document(body["fingerprint"]).collection("events").document(
        body["reportId"]).get().to_dict()
    assert event["source"] == "auto"
    assert event["stack"] == CHROME_STACK
    assert event["runId"] == "run-7" and event["leadDocId"] == "lead-3"
    assert event["context"] == {"screen": "runs"}
    assert event["truncated"] == []
    assert event["user"] is None


def test_a_second_report_of_the_same_bug_increments_the_group(client, db):
    first = post(client, report(stack=CHROME_STACK, runId="run-1")).get_json()
    second = post(client, report(stack=CHROME_STACK, source="manual", description="again")).get_json()
    assert first["fingerprint"] == second["fingerprint"]
    assert first["reportId"] != second["reportId"]
    stored = group(db, first["fingerprint"])
    assert stored["count"] == 2
    assert sorted(stored["sources"]) == ["auto", "manual"]
    assert stored["lastRunId"] == "run-1"  # a report without a run does not erase the last one
    assert stored["lastReportId"] == second["reportId"]
    assert stored["sample"]["reportId"] == first["reportId"]
    assert stored["lastSeen"] >= stored["firstSeen"]
    assert len(events(db, first["fingerprint"])) == 2


def test_the_operations_page_manual_report_shape_is_accepted(client, db):
    body = {
        "url": "http://127.0.0.1:5000/?run=no-such-run", "runId": "no-such-run", "userAgent": "Mozilla/5.0",
        "release": "ops-page-1", "source": "manual", "severity": "warning",
        "description": "The run I started this morning is missing.\nIt had 40 leads.",
        "message": "The run I started this morning is missing.",
        "context": {"screen": "report", "viewport": "1280x800", "lastApiError": {
            "status": 404, "code": "not_found", "message": "run no-such-run not found",
            "method": "GET", "path": "/api/lead-runs/no-such-run/receipts"}},
    }
    response = post(client, body)
    assert response.status_code == 202
    [event] = events(db, response.get_json()["fingerprint"])
    assert event["description"] == body["description"]
    assert event["context"] == body["context"]
    assert event["severity"] == "warning"


# --- bounds -----------------------------------------------------------------------


def test_a_body_above_the_telemetry_cap_is_413_and_writes_nothing(client, db):
    response = post(client, report(description="x" * limits.MAX_BODY_BYTES))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert every_document(db) == []


def test_the_cap_is_configurable(client, db, configure):
    configure(TELEMETRY_MAX_BODY_BYTES="1024")
    assert post(client, report(description="x" * 900)).status_code == 413
    assert post(client, report(description="x" * 500)).status_code == 202


@pytest.mark.parametrize(
    ("field", "wire", "limit"),
    [
        ("message", "message", limits.MAX_MESSAGE_CHARS),
        ("description", "description", limits.MAX_DESCRIPTION_CHARS),
        ("url", "url", limits.MAX_URL_CHARS),
        ("userAgent", "userAgent", limits.MAX_USER_AGENT_CHARS),
        ("release", "release", limits.MAX_RELEASE_CHARS),
        ("runId", "runId", limits.MAX_ID_CHARS),
        ("leadDocId", "leadDocId", limits.MAX_ID_CHARS),
    ],
)
def test_each_text_field_is_truncated_and_marked(client, db, field, wire, limit):
    response = post(client, report(**{wire: "a b " * 5000}))
    assert response.status_code == 202
    [event] = events(db, response.get_json()["fingerprint"])
    assert len(event[field]) == limit
    assert event[field].endswith(" chars]")
    assert event["truncated"] == [field]


def test_the_stack_keeps_250_newest_frames(client, db):
    frames = "\n".join(f"    at f{i} (https://mc.web.app/runs.js:{i + 1}:3)" for i in range(400))
    response = post(client, report(stack="Error: deep\n" + frames))
    [event] = events(db, response.get_json()["fingerprint"])
    lines = event["stack"].splitlines()
    assert lines[1].startswith("    at f0 ")
    assert lines[250].startswith("    at f249 ")
    assert lines[-1].strip() == "…[truncated 150 older frames]"
    assert event["truncated"] == ["stack"]


def test_context_depth_and_size_are_bounded(client, db):
    context = {"deep": {"a": {"b": {"c": {"d": "too deep"}}}}, "wide": {f"k{i}": "v" * 300 for i in range(40)}}
    response = post(client, report(context=context))
    [event] = events(db, response.get_json()["fingerprint"])
    assert event["context"]["deep"] == {"a": {"b": {"c": "…[truncated: nested too deep]"}}}
    assert event["context"]["wide"]["_truncated"] is True
    assert len(json.dumps(event["context"], ensure_ascii=False)) <= limits.MAX_CONTEXT_BYTES
    assert event["truncated"] == ["context"]


def test_unknown_fields_are_dropped(client, db):
    response = post(client, report(bogus="x", password="hunter2", nested={"a": 1}))
    assert response.status_code == 202
    [event] = events(db, response.get_json()["fingerprint"])
    assert "bogus" not in event and "password" not in event and "nested" not in event
    assert "hunter2" not in repr(every_document(db))


def test_values_firestore_cannot_hold_are_made_safe(client, db):
    context = {"__name__": 1, "": 2, "big": 2**70, "nan": float("nan"), "lone": "a\ud800b"}
    response = post(client, json.dumps(report(context=context, message="bad \ud800 text")))
    assert response.status_code == 202
    [event] = events(db, response.get_json()["fingerprint"])
    assert event["context"] == {"name": 1, "_": 2, "big": str(2**70), "nan": None, "lone": "a?b"}
    assert event["message"] == "bad ? text"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"source": "auto", "message": 42}, ["message"]),
        ({"source": "auto", "message": "m", "stack": ["at x"]}, ["stack"]),
        ({"source": "auto", "message": "m", "context": "not an object"}, ["context"]),
        ({"source": "auto", "message": "m", "context": [1, 2]}, ["context"]),
        ({"source": "auto", "message": "m", "runId": 7, "leadDocId": True}, ["runId", "leadDocId"]),
        ({"source": "auto", "message": "m", "url": {"href": "x"}}, ["url"]),
        ({"source": "robot", "message": "m"}, ["source"]),
        ({"message": "m"}, ["source"]),
        ({"source": "auto", "message": "m", "severity": "apocalyptic"}, ["severity"]),
        ({"source": "auto", "message": "m", "severity": 3}, ["severity"]),
        ({"source": "manual", "message": " ", "description": ""}, ["(body)"]),
        ([{"source": "auto", "message": "m"}], ["(body)"]),
        ("just a string", ["(body)"]),
        (None, ["(body)"]),
    ],
)
def test_wrong_types_are_400_with_details_and_write_nothing(client, db, body, fields):
    response = post(client, json.dumps(body))
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_argument"
    assert sorted({d["field"].split(".")[0] for d in error["details"]}) == sorted(fields)
    assert every_document(db) == []


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[" * 50_000 + "]" * 50_000, "application/json", 413),
        ("[" * 20_000, "application/json", 400),
        ('{"source": "auto", "message": ' + "[" * 5_000 + "]" * 5_000 + "}", "application/json", 400),
        ("", "application/json", 400),
        ('{"source": "auto", "message": "m"}', "text/plain", 415),
        (b"\xff\xfe\x00garbage", "application/json", 400),
    ],
)
def test_malformed_bodies_get_their_4xx_and_write_nothing(client, db, data, content_type, status):
    response = client.post(URL, data=data, headers={"Content-Type": content_type})
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert "Traceback" not in response.get_data(as_text=True)
    assert every_document(db) == []


def test_other_methods_are_405_with_allow(client, db):
    response = client.get(URL)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


# --- scrubbing ----------------------------------------------------------------------

ID_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ."
    "eyJzdWIiOiJ1aWQtb3BzIiwiZW1haWwiOiJvcHNAZXhhbXBsZS5jb20ifQ."
    "bm90LWEtcmVhbC1zaWduYXR1cmUtYnV0LWxvbmctZW5vdWdo"
)


def secrets_in_every_field() -> tuple[dict, list[str]]:
    worker = secrets.token_urlsafe(32)
    api_key = secrets.token_urlsafe(24)
    password = "Hunter2-" + secrets.token_hex(4)
    email = "lead.person@customer-example.com"
    card = "4111 1111 1111 1111"
    bearer = "Bearer " + secrets.token_hex(16)
    all_in = f"worker {worker} key={api_key} password={password} mail {email} card {card} auth {bearer} jwt {ID_TOKEN}"
    body = {
        "source": "manual",
        "severity": "error",
        "message": f"Error: failed for {email}: {all_in}",
        "stack": (
            f"Error: {all_in}\n"
            f"    at send (https://mc.web.app/runs.js?token={worker}&apiKey={api_key}:10:3)\n"
            f"    at https://admin:{password}@mc.web.app/app.js:1:1"
        ),
        "url": f"https://mc.web.app/ops?access_token={worker}&email={email}#id_token={ID_TOKEN}",
        "runId": worker,
        "leadDocId": email,
        "description": f"I pasted this by mistake: {all_in}",
        "userAgent": f"Mozilla/5.0 {bearer}",
        "release": api_key + "x" * 20,
        "context": {
            "password": password,
            "headers": {"Authorization": bearer, "Cookie": f"session={worker}", "X-Api-Key": api_key},
            "note": all_in,
            "items": [{"secret": worker}, {"text": f"card {card}"}],
            email: "an email as a key",
            "request": {"credentials": {"private_key": "-----BEGIN PRIVATE KEY-----abc"}},
        },
    }
    return body, [worker, api_key, password, email, card, card.replace(" ", ""), bearer.split()[1], ID_TOKEN,
                  "BEGIN PRIVATE KEY"]


def test_a_secret_in_every_field_reaches_neither_firestore_nor_the_log(client, db, logs):
    body, planted = secrets_in_every_field()
    worker = planted[0]
    response = post(client, body, headers={"Authorization": f"Bearer {worker}",
                                           "Referer": f"https://mc.web.app/ops?token={worker}"})
    assert response.status_code == 202, response.get_json()

    stored = repr(every_document(db))
    assert "telemetry_errors" in stored
    logged = logs.text
    assert logs.error_events(), "the report was not logged"
    for secret in planted:
        assert secret not in stored, f"{secret!r} reached Firestore"
        assert secret not in logged, f"{secret!r} reached the log"
    assert "[REDACTED" in stored


def test_the_request_authorization_header_is_never_stored(client, db, logs, configure):
    issuer = TokenIssuer(TEST_PROJECT)
    try:
        configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_DOMAINS="example.com")
        token = issuer.token("ops@example.com")
        response = post(client, report(), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 202
        assert token not in repr(every_document(db))
        assert token not in logs.text
    finally:
        issuer.close()


# --- grouping -------------------------------------------------------------------------


def chrome(run_id: str, host: str = "mc.web.app", build: str = "41", column: int = 17) -> dict:
    return report(
        message=f"Uncaught TypeError: Cannot read properties of undefined (reading 'status') for run {run_id}",
        stack=(
            f"TypeError: Cannot read properties of undefined (reading 'status') for run {run_id}\n"
            f"    at renderJob (https://{host}/runs.js?v={build}:120:{column})\n"
            f"    at async loadRun (https://{host}/runs.js?v={build}:88:5)"
        ),
        url=f"https://{host}/ops?run={run_id}",
        runId=run_id,
    )


def test_the_same_bug_from_two_users_and_two_runs_shares_a_fingerprint(client, db):
    a = post(client, chrome("AbCdEf1234567890wxYz"), headers={"X-Forwarded-For": "203.0.113.1"}).get_json()
    b = post(client, chrome("Zz9988776655443322aa", host="127.0.0.1:5000", build="42", column=21),
             headers={"X-Forwarded-For": "198.51.100.2"}).get_json()
    assert a["fingerprint"] == b["fingerprint"]
    assert group(db, a["fingerprint"])["count"] == 2


def test_different_bugs_get_different_fingerprints(client, db):
    base = post(client, chrome("r1")).get_json()["fingerprint"]
    other_line = chrome("r1")
    other_line["stack"] = other_line["stack"].replace(":120:", ":131:")
    other_type = chrome("r1")
    other_type["stack"] = other_type["stack"].replace("TypeError", "RangeError")
    other_type["message"] = other_type["message"].replace("TypeError", "RangeError")
    prints = {base, post(client, other_line).get_json()["fingerprint"], post(client, other_type).get_json()["fingerprint"]}
    assert len(prints) == 3
    assert len(list(db.collection("telemetry_errors").stream())) == 3


def test_firefox_stacks_group_like_chrome_ones_among_themselves(client, db):
    def firefox(run_id):
        return report(message="TypeError: job is undefined", stack=(
            f"renderJob@https://mc.web.app/runs.js?v={run_id}:120:9\nloadRun/<@https://mc.web.app/runs.js:88:11\n"))
    assert post(client, firefox("1")).get_json()["fingerprint"] == post(client, firefox("2")).get_json()["fingerprint"]


def test_without_a_stack_the_parameterised_message_groups(client, db):
    def manual(message):
        return {"source": "manual", "message": message, "description": "it broke"}
    a = post(client, manual("Run 8f14e45f-ceea-467f-a0e1-d8a1b2c3d4e5 not found after 3 tries")).get_json()
    b = post(client, manual("Run 1b4e28ba-2fa1-11d2-883f-0016d3cca427 not found after 12 tries")).get_json()
    c = post(client, manual("Template is missing its subject")).get_json()
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert group(db, a["fingerprint"])["groupedBy"] == "message"


# --- the Error Reporting entry ---------------------------------------------------------


def test_one_error_reporting_entry_per_report(client, db, logs):
    response = post(client, report(stack=CHROME_STACK, release="ops-page-1", userAgent="Mozilla/5.0 Test",
                                   runId="run-9", description="clicked start"),
                    headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "Referer": "https://mc.web.app/ops"})
    body = response.get_json()
    [entry] = logs.error_events()
    assert entry["severity"] == "ERROR"
    assert entry["serviceContext"] == {"service": "operations-page", "version": "ops-page-1"}
    assert entry["message"].startswith("TypeError: Cannot read properties of undefined (reading 'status')\n")
    assert "\n    at renderJob (https://mc.web.app/runs.js?v=41:120:17)" in entry["message"]
    assert entry["eventTime"].endswith("Z")
    assert entry["context"]["httpRequest"] == {
        "url": PAGE, "userAgent": "Mozilla/5.0 Test", "referrer": "https://mc.web.app/ops", "remoteIp": "203.0.113.9"}
    assert "user" not in entry["context"]
    assert "reportLocation" not in entry["context"]  # the stack locates it
    telemetry = entry["telemetry"]
    assert telemetry["reportId"] == body["reportId"]
    assert telemetry["fingerprint"] == body["fingerprint"]
    assert telemetry["runId"] == "run-9" and telemetry["description"] == "clicked start"
    assert "logging.googleapis.com/trace" in entry


def test_a_report_without_a_stack_carries_a_report_location(client, db, logs, configure):
    configure(BUILD_VERSION="abc123def456")
    post(client, {"source": "manual", "description": "Nothing loads", "severity": "fatal",
                  "url": "https://mc.web.app/ops?x=1"})
    [entry] = logs.error_events()
    assert entry["severity"] == "CRITICAL"
    assert entry["message"] == "OperatorReport: Nothing loads"
    assert entry["serviceContext"]["version"] == "abc123def456"  # no release: the deployed build
    assert entry["context"]["reportLocation"] == {"filePath": "/ops", "lineNumber": 0, "functionName": "manual report"}


def test_firefox_frames_are_logged_as_v8_frames(client, db, logs):
    post(client, report(message="TypeError: job is undefined",
                        stack="renderJob@https://mc.web.app/runs.js:120:9\n@https://mc.web.app/runs.js:1:1"))
    [entry] = logs.error_events()
    assert entry["message"] == (
        "TypeError: job is undefined\n"
        "    at renderJob (https://mc.web.app/runs.js:120:9)\n"
        "    at https://mc.web.app/runs.js:1:1"
    )


def test_a_signed_in_reporter_is_attached_to_the_report(client, db, logs, configure):
    issuer = TokenIssuer(TEST_PROJECT)
    try:
        configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_DOMAINS="example.com")
        signed = post(client, report(), headers={"Authorization": f"Bearer {issuer.token('ops@example.com')}"})
        anonymous = post(client, report())
        forged = post(client, report(), headers={"Authorization": "Bearer not-a-token"})
        assert [r.status_code for r in (signed, anonymous, forged)] == [202, 202, 202]
        users = [e["user"] for e in events(db, signed.get_json()["fingerprint"])]
        assert sorted(users, key=repr) == sorted([{"uid": "uid-ops", "email": "ops@example.com"}, None, None], key=repr)
        assert [e["context"].get("user") for e in logs.error_events()] == ["uid-ops", None, None]
    finally:
        issuer.close()


# --- rate limit -------------------------------------------------------------------------


def test_a_burst_above_the_limit_gets_429_with_retry_after(client, db, configure):
    configure(TELEMETRY_RATE_LIMIT="3", TELEMETRY_RATE_WINDOW_SECONDS="86400")  # a day: no window ends mid-test
    client_a = {"X-Forwarded-For": "203.0.113.7, 10.1.1.1"}
    statuses = [post(client, report(), headers=client_a).status_code for _ in range(3)]
    refused = post(client, report(), headers={"X-Forwarded-For": "203.0.113.7, 10.9.9.9"})
    assert statuses == [202, 202, 202]
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    # Another client is not affected, and the refused report was not stored.
    assert post(client, report(), headers={"X-Forwarded-For": "198.51.100.3"}).status_code == 202
    prints = [g.id for g in db.collection("telemetry_errors").stream()]
    assert [group(db, p)["count"] for p in prints] == [4]


def test_signed_in_users_are_limited_per_user_not_per_address(client, db, configure):
    issuer = TokenIssuer(TEST_PROJECT)
    try:
        configure(AUTH_MODE="firebase", AUTH_CERTS_URL=issuer.certs_url, AUTH_ALLOWED_DOMAINS="example.com",
                  TELEMETRY_RATE_LIMIT="2", TELEMETRY_RATE_WINDOW_SECONDS="86400")
        same_ip = {"X-Forwarded-For": "203.0.113.50"}
        ann = {**same_ip, "Authorization": f"Bearer {issuer.token('ann@example.com')}"}
        bob = {**same_ip, "Authorization": f"Bearer {issuer.token('bob@example.com')}"}
        assert [post(client, report(), headers=ann).status_code for _ in range(3)] == [202, 202, 429]
        assert [post(client, report(), headers=bob).status_code for _ in range(2)] == [202, 202]
        assert post(client, report(), headers=same_ip).status_code == 202  # anonymous: the address's own bucket
    finally:
        issuer.close()


def test_the_limit_can_be_turned_off(client, db, unlimited):
    assert {post(client, report()).status_code for _ in range(40)} == {202}
    assert list(db.collection("telemetry_rate_limits").stream()) == []


# --- concurrency ------------------------------------------------------------------------


def test_concurrent_reports_of_one_bug_are_counted_exactly(function_client, db, unlimited):
    threads, per_thread = 8, 12
    results: list[dict] = []
    failures: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        own = function_client("telemetry")
        for i in range(per_thread):
            response = post(own, chrome(f"run{n}x{i}"), headers={"X-Forwarded-For": f"203.0.113.{n}"})
            with lock:
                if response.status_code == 202:
                    results.append(response.get_json())
                else:
                    failures.append(response.status_code)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    assert len({r["fingerprint"] for r in results}) == 1
    fingerprint = results[0]["fingerprint"]
    assert group(db, fingerprint)["count"] == threads * per_thread
    assert len(events(db, fingerprint)) == threads * per_thread
    assert len({r["reportId"] for r in results}) == threads * per_thread


def test_concurrent_reports_are_limited_exactly(function_client, db, configure):
    # A day's window: with the default minute, a test that runs across a minute's end
    # meets two fixed windows and rightly admits up to ten in each.
    configure(TELEMETRY_RATE_LIMIT="10", TELEMETRY_RATE_WINDOW_SECONDS="86400")
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        own = function_client("telemetry")
        for _ in range(5):
            status = post(own, report(), headers={"X-Forwarded-For": "192.0.2.1"}).status_code
            with lock:
                statuses.append(status)

    workers = [threading.Thread(target=send) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses.count(202) == 10
    assert statuses.count(429) == 20
