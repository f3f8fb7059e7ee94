"""Telemetry under abuse, on the emulator: forged X-Forwarded-For, a storm of one bug
(the group document written about once a second, counts exact), a retried commit,
and the expiry of every per-request document."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from shared.store import telemetry as store

URL = "/api/telemetry/error"
STACK = "TypeError: boom\n    at render (https://mc.web.app/app.js:10:5)\n    at main (https://mc.web.app/app.js:20:3)"


@pytest.fixture
def client(function_client):
    return function_client("telemetry")


def report(**fields):
    return {"source": "auto", "message": "TypeError: boom", "stack": STACK, **fields}


def group(db, fingerprint):
    return db.collection("telemetry_errors").document(fingerprint).get()


def test_forty_forged_forwarded_for_values_from_one_client_hit_the_limit(client, db, configure):
    configure(TELEMETRY_RATE_LIMIT="30", TELEMETRY_RATE_WINDOW_SECONDS="3600")
    statuses = []
    for i in range(40):
        # What the client wrote, then what Google's load balancer appends: <client-ip>,<lb-ip>.
        forged = f"10.{i}.{i}.{i}, 192.0.2.{i}, 203.0.113.9, 130.211.0.1"
        statuses.append(client.post(URL, json=report(), headers={"X-Forwarded-For": forged}).status_code)
    assert statuses == [202] * 30 + [429] * 10
    # Another client behind the same load balancer keeps its own limit.
    other = client.post(URL, json=report(), headers={"X-Forwarded-For": "10.0.0.1, 198.51.100.4, 130.211.0.1"})
    assert other.status_code == 202


def test_trusted_proxy_hops_is_a_setting(client, db, configure):
    configure(TELEMETRY_RATE_LIMIT="2", TELEMETRY_RATE_WINDOW_SECONDS="3600", TRUSTED_PROXY_HOPS="1")
    # Reached without the load balancer: only the last entry is the front end's.
    statuses = [
        client.post(URL, json=report(), headers={"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.20"}).status_code
        for i in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_a_storm_of_one_bug_writes_its_group_about_once_a_second_and_counts_exactly(function_client, db, unlimited):
    threads, per_thread = 6, 15
    accepted: list[str] = []
    lock = threading.Lock()
    first = function_client("telemetry").post(URL, json=report()).get_json()
    fingerprint = first["fingerprint"]
    ref = db.collection("telemetry_errors").document(fingerprint)
    seen_writes: set = set()
    storming = threading.Event()
    storming.set()

    def watch() -> None:
        while storming.is_set():
            seen_writes.add(ref.get().update_time)
            time.sleep(0.005)

    def send(n: int) -> None:
        own = function_client("telemetry")
        for i in range(per_thread):
            response = own.post(URL, json=report(runId=f"run-{n}-{i}"))
            with lock:
                if response.status_code == 202:
                    accepted.append(response.get_json()["reportId"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    storming.clear()
    watcher.join()

    assert len(accepted) == threads * per_thread
    stored = ref.get().to_dict()
    assert stored["count"] == threads * per_thread + 1  # the storm and the first report
    events = list(ref.collection("events").stream())
    assert len(events) == stored["count"]
    assert stored["lastReportId"] in accepted
    # One write when the first report created it, then at most one fold a second.
    group_writes = len(seen_writes) - 1
    assert group_writes <= elapsed + 2, (group_writes, elapsed)


@pytest.fixture
def unlimited(configure):
    configure(TELEMETRY_RATE_LIMIT="0")


def test_a_retried_commit_whose_answer_was_lost_is_not_counted_twice(db):
    now = dt.datetime.now(dt.timezone.utc)
    event = {"source": "auto", "receivedAt": now, "runId": None, "expireAt": now + dt.timedelta(days=30)}
    kwargs = dict(fingerprint="f" * 32, event=event, group={"errorType": "TypeError"}, received_at=now)
    store.record_event(db, report_id="r-first", **kwargs)
    store.record_event(db, report_id="r-second", **kwargs)
    # The client resends the very commit it already made (its answer was lost): the event
    # exists, so the batch holding the count's Increment is refused as a whole.
    store.record_event(db, report_id="r-second", **kwargs)
    store.record_event(db, report_id="r-first", **kwargs)
    store.fold(db, "f" * 32)
    stored = group(db, "f" * 32).to_dict()
    shards = [s.to_dict()["count"] for s in db.collection(f"telemetry_errors/{'f' * 32}/shards").stream()]
    assert stored["count"] == sum(shards) == 2
    assert len(list(db.collection(f"telemetry_errors/{'f' * 32}/events").stream())) == 2


def test_a_group_counted_before_shards_keeps_its_count(db):
    now = dt.datetime.now(dt.timezone.utc)
    ref = db.collection("telemetry_errors").document("legacy")
    ref.set({"count": 41, "lastSeen": now, "lastReportId": "old", "sources": ["manual"], "lastRunId": None})
    event = {"source": "auto", "receivedAt": now, "runId": "run-1"}
    store.record_event(db, fingerprint="legacy", report_id="new", event=event, group={}, received_at=now)
    store.fold(db, "legacy")
    stored = ref.get().to_dict()
    assert stored["count"] == 42 and stored["sources"] == ["auto", "manual"] and stored["lastRunId"] == "run-1"


def test_every_per_request_document_expires(client, db, configure):
    configure(TELEMETRY_RATE_LIMIT="5", TELEMETRY_RETENTION_DAYS="7")
    before = dt.datetime.now(dt.timezone.utc)
    first = client.post(URL, json=report()).get_json()
    client.post(URL, json=report())  # a second report of the group claims a fold
    ref = db.collection("telemetry_errors").document(first["fingerprint"])
    events = [e.to_dict() for e in ref.collection("events").stream()]
    assert len(events) == 2
    for event in events:
        assert dt.timedelta(days=7) <= event["expireAt"] - before <= dt.timedelta(days=7, minutes=1)
    folds = [f.to_dict() for f in ref.collection("folds").stream()]
    windows = [w.to_dict() for w in db.collection("telemetry_rate_limits").stream()]
    assert folds and windows
    for short_lived in folds + windows:
        assert before < short_lived["expireAt"] <= before + dt.timedelta(days=1, hours=2)


# --- a commit whose answer is lost, through the real client's own retry ---------------------


@pytest.fixture
def answer_losing_proxy(emulator, configure):
    """A loopback gRPC proxy to the emulator that forwards the n-th Commit creating an
    event, then answers it UNAVAILABLE: applied, but its answer lost. Firestore's client
    retries a Commit on UNAVAILABLE by itself (its default retry policy)."""
    import concurrent.futures

    import grpc

    from shared.store.client import get_db
    from tools.localstack import free_port

    upstream = grpc.insecure_channel(emulator.host)
    state = {"event_commits": 0, "lose": set(), "lost": 0}
    lock = threading.Lock()
    streaming = {"BatchGetDocuments", "RunQuery", "RunAggregationQuery"}

    def forward_unary(method):
        def handle(request, context):
            metadata = [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":")]
            try:
                answer = upstream.unary_unary(method)(request, metadata=metadata)
            except grpc.RpcError as exc:  # the emulator's own refusal passes through as it is
                context.abort(exc.code(), exc.details())
            if method.endswith("/Commit") and b"/events/" in request:
                with lock:
                    state["event_commits"] += 1
                    lose = state["event_commits"] in state["lose"]
                    state["lost"] += lose
                if lose:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset after the commit was applied")
            return answer
        return grpc.unary_unary_rpc_method_handler(handle)

    def forward_stream(method):
        def handle(request, context):
            metadata = [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":")]
            try:
                yield from upstream.unary_stream(method)(request, metadata=metadata)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())
        return grpc.unary_stream_rpc_method_handler(handle)

    class Forward(grpc.GenericRpcHandler):
        def service(self, details):
            name = details.method.rsplit("/", 1)[-1]
            return (forward_stream if name in streaming else forward_unary)(details.method)

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8), handlers=[Forward()])
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    configure(FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{port}", TELEMETRY_RATE_LIMIT="0")
    get_db.cache_clear()
    yield state
    server.stop(grace=None)
    upstream.close()
    get_db.cache_clear()


@pytest.mark.parametrize("lost", [1, 2], ids=["the first report's", "a later report's"])
def test_a_commit_whose_answer_was_lost_is_retried_by_the_client_and_counted_once(
    function_client, db, answer_losing_proxy, lost
):
    answer_losing_proxy["lose"] = {lost}
    client = function_client("telemetry")
    responses = [client.post(URL, json=report()) for _ in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202], [r.get_json() for r in responses]
    assert answer_losing_proxy["lost"] == 1
    fingerprint = responses[0].get_json()["fingerprint"]
    ref = db.collection("telemetry_errors").document(fingerprint)
    assert ref.get().to_dict()["count"] == 3
    assert len(list(ref.collection("events").stream())) == 3
    assert sum(s.to_dict()["count"] for s in ref.collection("shards").stream()) == 3
