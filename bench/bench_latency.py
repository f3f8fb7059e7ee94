"""The worker chain vs a plain sequential loop at production latency (issue 15).

    python bench/bench_latency.py                 # 1,000 leads, 5 ms each way (docs/jobs.md has the figures)
    python bench/bench_latency.py --smoke         # 60 leads: checks that it runs, not how fast
    python bench/bench_latency.py --leads 300 --delay-ms 5 --concurrency 16

Every Firestore call of the functions and of the plain loop goes through
tools/faultproxy.LatencyProxy, which holds each byte `--delay-ms` in each direction
(a round trip costs 2 x delay more than on the bare emulator, as from Cloud Functions
to Firestore). Otherwise the two sides are bench/bench_worker.py's: the chain through
the local router, timed from the job's startedAt to finishedAt, and a plain loop that
commits each lead's mail document + receipt in one commit, one lead after another.

Printed: leads/s of both, the job-document writes per batch (target ≤ 1), the worker's
peak RSS, and whether the chain met the target (≥ 150 leads/s and faster than the loop).
Then, under the same latency, how long the jobs API takes to answer a large background
start (`--large`, 10,000 leads) and a foreground run of FOREGROUND_MAX_LEADS (50): both
must answer well inside Hosting's 60 s.
`--concurrency` sets the worker's WORKER_LEAD_CONCURRENCY.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench.bench_worker import BODY, SUBJECT, process_group_peak_rss_kib, run_chain, run_plain_loop  # noqa: E402
from tools import localstack  # noqa: E402
from tools.faultproxy import LatencyProxy  # noqa: E402

PROJECT = "demo-mission-control-bench"
LOG_DIR = localstack.ROOT / "build" / "bench-logs" / "latency"
TARGET_LEADS_PER_SECOND = 150


def time_starts(url: str, template_id: str, large: int) -> dict[str, tuple[int, float]]:
    """Seconds until the jobs API answers a large background start and a full foreground run."""
    from bench.bench_worker import leads

    answers = {}
    for what, mode, count in ((f"background start of {large:,} leads", "background", large),
                              ("foreground run of 50 leads", "foreground", 50)):
        run_id = f"bench-{mode}-{count}-{int(time.time())}"
        began = time.perf_counter()
        response = requests.post(f"{url}/api/lead-runs/{run_id}/jobs", timeout=600, json={
            "action": "start", "mode": mode, "leads": leads(count), "config": {"templateId": template_id}})
        answers[what] = (response.status_code, time.perf_counter() - began)
        if mode == "background":  # let the chain go on alone; pause it so it does not load the foreground run
            requests.post(f"{url}/api/lead-runs/{run_id}/jobs", json={"action": "cancel"}, timeout=60)
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="60 leads: checks that it runs")
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=5.0, help="added in each direction")
    parser.add_argument("--concurrency", type=int, default=None, help="WORKER_LEAD_CONCURRENCY for the worker")
    parser.add_argument("--large", type=int, default=10_000, help="leads of the large background start")
    args = parser.parse_args()
    count, batch_size = (60, 20) if args.smoke else (args.leads, args.batch_size)

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    target = localstack.emulator_from_env_or_start(PROJECT, LOG_DIR / "firestore.log")
    proxy = LatencyProxy(target.host, args.delay_ms / 1000)
    # This process's client (the plain loop, the checks) goes through the proxy too.
    os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.address
    slow = localstack.Emulator(host=proxy.address, project=target.project)
    env = {"WORKER_LEAD_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}
    try:
        from shared.store.client import get_db

        db = get_db()
        plain = run_plain_loop(db, count, batch_size)
        with localstack.running_stack(
            emulator=slow, port=localstack.free_port(), log_dir=LOG_DIR, names=["jobs", "templates", "worker"], env=env,
        ) as stack:
            created = requests.post(f"{stack.url}/api/templates",
                                    json={"name": "Bench", "subject": SUBJECT, "body": BODY}, timeout=30)
            created.raise_for_status()
            chain = run_chain(stack, db, created.json()["id"], count, batch_size)
            answers = time_starts(stack.url, created.json()["id"], 500 if args.smoke else args.large)
            rss_kib = process_group_peak_rss_kib(stack.functions["worker"].process.pid)
    finally:
        proxy.close()
        target.stop()

    chain_rate, plain_rate = count / chain["seconds"], count / plain["seconds"]
    print(f"{count:,} leads, batchSize {batch_size}, {args.delay_ms:g} ms each way, "
          f"WORKER_LEAD_CONCURRENCY {args.concurrency or 'default'}")
    print("| | leads/s | seconds |")
    print("|---|---|---|")
    print(f"| worker chain (startedAt→finishedAt) | {chain_rate:7.1f} | {chain['seconds']:6.2f} |")
    print(f"| plain sequential loop | {plain_rate:7.1f} | {plain['seconds']:6.2f} |")
    met = chain_rate >= TARGET_LEADS_PER_SECOND and chain_rate > plain_rate
    print(f"chain/plain speed: {chain_rate / plain_rate:.2f}x "
          f"(target ≥ {TARGET_LEADS_PER_SECOND} leads/s and faster than the loop: {'met' if met else 'MISSED'})")
    per_batch = (chain["writes"] - 2) / max(chain["batches"], 1)
    print(f"job-document writes: {chain['writes']} for {chain['batches']} batches "
          f"({per_batch:.2f} per batch after the 2 of the start; target ≤ 1)")
    print(f"worker peak RSS (VmHWM, gunicorn arbiter + worker): {rss_kib / 1024:.1f} MiB")
    print(f"job {chain['status']}, {chain['mails']} mail documents, counts {chain['counts']}")
    for what, (status, seconds) in answers.items():
        print(f"{what}: answered {status} in {seconds:.2f} s (Hosting cuts at 60 s)")
    return 0 if chain["status"] == "completed" and chain["mails"] == count else 1


if __name__ == "__main__":
    sys.exit(main())
