"""Error reports per second through the telemetry function, over HTTP on loopback.

    python bench/bench_telemetry.py             # 8 clients for 20 s (docs/telemetry.md has a copy)
    python bench/bench_telemetry.py --smoke     # ~2 s, for CI: checks it runs, no 5xx, counts agree
    python bench/bench_telemetry.py --clients 16 --seconds 30
    python bench/bench_telemetry.py --rate-limit 100000   # with the Firestore limiter on

Starts the telemetry function as a real functions-framework server (gunicorn, as
`python -m functions_framework` runs it) against the Firestore emulator named by
FIRESTORE_EMULATOR_HOST, or one started here. Each client posts realistic reports
(a Chrome stack, a context object, secrets to scrub) drawn from 20 distinct bugs
with varying run ids, so both the "first report of a bug" and the "one more of a
known bug" paths are exercised. By default the rate limit is off
(TELEMETRY_RATE_LIMIT=0) so nothing is throttled; every report still pays for
validation, scrubbing, fingerprinting, the Firestore batch and the log line.
--rate-limit N turns the limiter on with a limit no client reaches, each client
with its own X-Forwarded-For address, to measure what the extra Firestore write costs.

Then a storm: every client posts the same bug for the same time again, while a
watcher reads that bug's group document every few milliseconds and counts its
distinct update times, printing the group document's writes per second (the
design keeps it near one a second: shard counters folded onto it, docs/telemetry.md).

Afterwards it sums `count` over telemetry_errors and counts the events, and both
must equal the number of 202s. Exit status 1 on any 5xx or a count mismatch.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import statistics
import sys
import threading
import time
import uuid

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_load import percentile  # noqa: E402
from tools import localstack  # noqa: E402

BUGS = 20


def make_report(rng: random.Random, bug: int | None = None) -> dict:
    bug = rng.randrange(BUGS) if bug is None else bug
    run_id = uuid.uuid4().hex[:20]
    return {
        "source": rng.choice(["auto", "auto", "auto", "manual"]),
        "severity": "error",
        "message": f"Uncaught TypeError: Cannot read properties of undefined (reading 'field{bug}') in run {run_id}",
        "stack": "\n".join(
            [f"TypeError: Cannot read properties of undefined (reading 'field{bug}')"]
            + [f"    at render{bug}_{depth} (https://mc.web.app/runs.js?v=41:{100 + bug}:{depth * 7})"
               for depth in range(12)]
        ),
        "url": f"https://mc.web.app/?run={run_id}&token={uuid.uuid4().hex}",
        "runId": run_id,
        "leadDocId": f"lead-{rng.randrange(1000)}",
        "description": "Clicked Start, the progress bar froze; contact ops@example.com",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
        "release": "ops-page-1",
        "context": {
            "screen": "runs",
            "viewport": "1440x900",
            "lastApiError": {"status": 503, "code": "unavailable", "path": f"/api/lead-runs/{run_id}/jobs",
                             "headers": {"Authorization": "Bearer " + uuid.uuid4().hex}},
        },
    }


def client_loop(
    url: str, deadline: float, seed: int, results: dict, lock: threading.Lock, bug: int | None = None
) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["X-Forwarded-For"] = f"198.51.100.{seed}"
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    while time.monotonic() < deadline:
        body = make_report(rng, bug)
        started = time.perf_counter()
        try:
            status = session.post(url, json=body, timeout=30).status_code
        except requests.RequestException:
            status = 599  # no answer at all counts as a server failure
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
    with lock:
        for status, n in statuses.items():
            results["statuses"][status] = results["statuses"].get(status, 0) + n
        results["latencies"].extend(latencies)


def run_clients(url: str, clients: int, seconds: float, bug: int | None = None) -> tuple[dict, float]:
    results: dict = {"statuses": {}, "latencies": []}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [
        threading.Thread(target=client_loop, args=(url, deadline, seed, results, lock, bug))
        for seed in range(1, clients + 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - started


def storm(url: str, db, clients: int, seconds: float) -> tuple[dict, float, list[float]]:
    """All clients report one bug; returns the results and the group document's write times."""
    storm_bug = BUGS  # a bug the first phase never reports, so its group starts empty
    first = requests.post(url, json=make_report(random.Random(0), storm_bug), timeout=30).json()
    ref = db.collection("telemetry_errors").document(first["fingerprint"])
    writes: dict = {}
    watching = threading.Event()
    watching.set()

    def watch() -> None:
        while watching.is_set():
            update_time = ref.get().update_time
            writes.setdefault(update_time, time.monotonic())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results, elapsed = run_clients(url, clients, seconds, storm_bug)
    finally:
        watching.clear()
        watcher.join()
    results["statuses"][202] = results["statuses"].get(202, 0) + 1  # the storm's first report
    return results, elapsed, sorted(writes.values())


def stored_counts(db) -> tuple[int, int]:
    groups = list(db.collection("telemetry_errors").stream())
    counted = sum(g.to_dict()["count"] for g in groups)
    events = db.collection_group("events").count().get()[0][0].value
    return counted, int(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--smoke", action="store_true", help="run for ~2 s")
    parser.add_argument("--rate-limit", type=int, default=0, help="TELEMETRY_RATE_LIMIT (0: off)")
    args = parser.parse_args()
    seconds = 2.0 if args.smoke else args.seconds
    project = f"demo-telemetry-bench-{uuid.uuid4().hex[:8]}"  # a fresh, empty database every run
    log_dir = ROOT / "build" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    emulator = localstack.emulator_from_env_or_start(project, log_dir / "firestore.log")
    function = None
    try:
        env = {
            "FIRESTORE_EMULATOR_HOST": emulator.host,
            "GOOGLE_CLOUD_PROJECT": project,
            "AUTH_MODE": "off",
            "TELEMETRY_RATE_LIMIT": str(args.rate_limit),
        }
        function = localstack.start_function("telemetry", localstack.free_port(), env, log_dir)
        localstack.wait_for_http(function.url + "/", 60, function.process)
        url = function.url + "/api/telemetry/error"
        warm = requests.post(url, json=make_report(random.Random(0)), timeout=30)
        if warm.status_code != 202:
            print(f"warm-up report failed: {warm.status_code} {warm.text[:300]}")
            return 1

        results, elapsed = run_clients(url, args.clients, seconds)

        from google.cloud import firestore

        db = firestore.Client(project=project)
        storm_results, storm_elapsed, group_writes = storm(url, db, args.clients, seconds)
        counted, events = stored_counts(db)
        statuses = results["statuses"]
        storm_accepted = storm_results["statuses"].get(202, 0)
        storm_errors = sum(n for status, n in storm_results["statuses"].items() if status >= 500)
        accepted = statuses.get(202, 0) + 1 + storm_accepted  # and the warm-up report
        server_errors = sum(n for status, n in statuses.items() if status >= 500) + storm_errors
        latencies = results["latencies"]
        limiter = f"rate limit {args.rate_limit} a window" if args.rate_limit else "rate limit off"
        print(f"clients {args.clients}, {elapsed:.1f} s, one function instance (gunicorn, 1 worker), {limiter}")
        print(f"requests {sum(statuses.values())}  statuses {dict(sorted(statuses.items()))}")
        print(f"reports/second {statuses.get(202, 0) / elapsed:.1f}")
        print(f"latency ms p50 {1000 * statistics.median(latencies):.0f}  p95 {1000 * percentile(latencies, 0.95):.0f}"
              f"  p99 {1000 * percentile(latencies, 0.99):.0f}")
        # The group's first write (its creation) is not part of the storm's rate.
        busiest = max((sum(1 for t in group_writes if start <= t < start + 1) for start in group_writes), default=0)
        storm_latencies = storm_results["latencies"]
        print(f"storm of one bug: {storm_accepted} reports in {storm_elapsed:.1f} s "
              f"({storm_accepted / storm_elapsed:.1f}/s), latency ms p50 {1000 * statistics.median(storm_latencies):.0f}"
              f"  p95 {1000 * percentile(storm_latencies, 0.95):.0f}")
        print(f"group document writes/s {max(0, len(group_writes) - 1) / storm_elapsed:.2f}  "
              f"(most in any 1 s: {busiest}; {len(group_writes)} writes in all)")
        print(f"accepted {accepted}  stored count {counted}  stored events {events}  5xx {server_errors}")
        ok = server_errors == 0 and accepted == counted == events
        print("OK" if ok else "FAILED: 5xx or stored count != accepted count")
        return 0 if ok else 1
    finally:
        if function is not None:
            localstack.stop(function.process)
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
