"""Load on loopback: concurrent clients across templates, receipts, schedule and
telemetry, then several background runs at once.

Prints per-operation p50/p99 latency and status counts, and for the background
runs the time to finish and the mail documents per lead. Exits 1 on any 5xx or
on a lead with other than exactly one mail document.

    python bench/bench_load.py            # 20 clients × 30 s, 3 runs × 500 leads
    python bench/bench_load.py --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import collections
import itertools
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import localstack  # noqa: E402

PROJECT = "demo-mission-control-bench"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def operations(base: str, template_id: str, run_id: str):
    """Each call is (name, method, url, json) — a mix an operator's day produces."""
    report_no = itertools.count()

    def mix():
        while True:
            yield "templates.list", "GET", f"{base}/api/templates?pageSize=20", None
            yield "templates.get", "GET", f"{base}/api/templates/{template_id}", None
            yield "templates.create", "POST", f"{base}/api/templates", {
                "name": "load", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}}"}
            yield "runs.list", "GET", f"{base}/api/lead-runs?limit=10", None
            yield "receipts.page", "GET", f"{base}/api/lead-runs/{run_id}/receipts?pageSize=50", None
            yield "schedule.search", "POST", f"{base}/api/calendar/schedule", {
                "slotSearch": {"timeZone": "America/New_York", "startDate": "2031-03-03", "days": 14,
                               "workingHours": {"start": "09:00", "end": "17:00"}, "stepMinutes": 30, "maxCandidates": 20},
                "durationMinutes": 30}
            yield "telemetry.report", "POST", f"{base}/api/telemetry/error", {
                "source": "auto", "message": f"TypeError: x is undefined (load {next(report_no) % 7})",
                "stack": "TypeError: x is undefined\n    at render (https://app.test/app.js:10:5)", "url": "https://app.test/"}

    return mix


def run_clients(base: str, clients: int, seconds: float, mix) -> dict[str, dict]:
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(offset: int) -> None:
        session = requests.Session()
        calls = mix()
        for _ in range(offset):
            next(calls)
        while time.monotonic() < deadline:
            name, method, url, body = next(calls)
            started = time.perf_counter()
            try:
                status = session.request(method, url, json=body, timeout=30).status_code
            except requests.RequestException:
                status = 599
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies[name].append(elapsed)
                statuses[name][status] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {name: {"latencies": latencies[name], "statuses": statuses[name]} for name in latencies}


def seed(base: str) -> tuple[str, str]:
    template = requests.post(f"{base}/api/templates", json={
        "name": "Load", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}"}, timeout=30)
    template.raise_for_status()
    template_id = template.json()["id"]
    run_id = "load-receipts"
    leads = [{"email": f"lead{i}@example.com", "firstName": f"L{i}", "company": "Acme"} for i in range(20)]
    started = requests.post(f"{base}/api/lead-runs/{run_id}/jobs", json={
        "action": "start", "mode": "foreground", "config": {"templateId": template_id}, "leads": leads}, timeout=120)
    started.raise_for_status()
    return template_id, run_id


def outbox_by_recipient(db) -> collections.Counter:
    """Every lead has its own address, so mail documents per address = per lead."""
    counts: collections.Counter = collections.Counter()
    for collection in ("mail", "mail_drafts"):
        for snapshot in db.collection(collection).select(["to"]).stream():
            to = snapshot.get("to")
            counts.update(to if isinstance(to, list) else [to])
    return counts


def background_runs(base: str, db, template_id: str, runs: int, leads: int, timeout: float) -> tuple[bool, float]:
    run_ids = [f"load-bg-{i}" for i in range(runs)]
    started = time.monotonic()
    for run_id in run_ids:
        response = requests.post(f"{base}/api/lead-runs/{run_id}/jobs", json={
            "action": "start", "mode": "background", "config": {"templateId": template_id, "batchSize": 50},
            "leads": [{"email": f"r{run_id}-{i}@example.com", "firstName": f"F{i}", "company": "Acme"} for i in range(leads)],
        }, timeout=120)
        response.raise_for_status()
    pending = set(run_ids)
    while pending and time.monotonic() - started < timeout:
        for run_id in list(pending):
            job = requests.get(f"{base}/api/lead-runs/{run_id}/jobs", timeout=30).json()["job"]
            if job["status"] in ("completed", "completed_with_errors", "failed", "cancelled"):
                pending.discard(run_id)
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    ok = not pending
    outbox = outbox_by_recipient(db)
    for run_id in run_ids:
        per_lead = {f"r{run_id}-{i}@example.com": outbox.get(f"r{run_id}-{i}@example.com", 0) for i in range(leads)}
        wrong = {lead: n for lead, n in per_lead.items() if n > 1}
        missing = sum(1 for n in per_lead.values() if n == 0)
        print(f"  {run_id}: {leads - missing} leads with mail, {missing} without, {len(wrong)} with duplicates")
        ok = ok and not wrong and missing == 0
    return ok, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--leads", type=int, default=500)
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.runs, args.leads = 4, 3, 2, 20

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the router's per-request lines
    emulator = localstack.start_emulator(localstack.free_port(), PROJECT)
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
    env = {"TELEMETRY_RATE_LIMIT": "0", "WORKER_TIME_BUDGET_SECONDS": "5"}
    failed = False
    try:
        with localstack.running_stack(emulator=emulator, port=localstack.free_port(), env=env) as stack:
            template_id, run_id = seed(stack.url)
            print(f"{args.clients} clients for {args.seconds:.0f} s against {stack.url}")
            results = run_clients(stack.url, args.clients, args.seconds, operations(stack.url, template_id, run_id))
            total = sum(len(r["latencies"]) for r in results.values())
            print(f"{'operation':<18} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
            for name, result in sorted(results.items()):
                lat = result["latencies"]
                print(f"{name:<18} {len(lat):>8} {statistics.median(lat):>8.1f} {percentile(lat, 0.99):>8.1f}  {dict(result['statuses'])}")
                failed |= any(status >= 500 for status in result["statuses"])
            every = [v for r in results.values() for v in r["latencies"]]
            print(f"{'all':<18} {total:>8} {statistics.median(every):>8.1f} {percentile(every, 0.99):>8.1f}  "
                  f"{total / args.seconds:.0f} req/s, 5xx: {sum(s for r in results.values() for c, s in r['statuses'].items() if c >= 500)}")

            from shared.store.client import get_db

            print(f"\n{args.runs} background runs × {args.leads} leads at once")
            ok, elapsed = background_runs(stack.url, get_db(), template_id, args.runs, args.leads, timeout=600)
            print(f"  finished: {ok}, {elapsed:.1f} s, {args.runs * args.leads / elapsed:.0f} leads/s overall")
            failed |= not ok
    finally:
        emulator.stop()
    print("FAILED" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
