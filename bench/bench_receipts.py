"""Receipts read cost: a whole run read page by page, and Firestore queries per page.

    python bench/bench_receipts.py            # 1,000 leads x 3 actions (docs/receipts.md has a copy)
    python bench/bench_receipts.py --smoke    # 30 leads, for CI: checks it runs and stays <= 3 queries a page
    python bench/bench_receipts.py --leads 5000 --page-sizes 100,200

Seeds one run in the Firestore emulator (FIRESTORE_EMULATOR_HOST, or one started
here with tools.localstack), then reads it through the receipts function's real
functions-framework app in process, following nextPageToken to the end. Queries
are counted twice: by the read model's own tally and by the read RPCs that reach
the Firestore client; the two must agree. One lead in ten is `failed`, scattered,
so the `status=failed` row shows the filtered path. Times are the median of
--runs full reads, after one warm-up read; they include the JSON response.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import localstack  # noqa: E402

PROJECT = "demo-mission-control-bench"
READ_RPCS = ("batch_get_documents", "run_query", "get_document", "list_documents", "run_aggregation_query")
TARGET_QUERIES = 3


def seed(db, run_id: str, leads: int, actions: int) -> None:
    from shared.store import runs as paths

    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    writer = db.bulk_writer()
    writer.set(paths.run_ref(db, run_id), {
        "name": "bench", "createdAt": t0, "updatedAt": t0, "status": "completed", "totalLeads": leads,
        "templateId": "tpl-bench", "counts": {"pending": 0, "sent": leads - leads // 10, "drafted": 0,
                                              "failed": leads // 10, "skipped": 0},
    })
    writer.set(paths.job_ref(db, run_id), {
        "status": "completed", "nextIndex": leads, "totalLeads": leads, "counts": {}, "diagnostics": [],
        "attemptsByLead": {}, "workerToken": uuid.uuid4().hex, "config": {"batchSize": 25}, "lease": None,
        "createdAt": t0, "updatedAt": t0, "startedAt": t0, "finishedAt": t0,
    })
    for i in range(leads):
        lead_id = f"lead-{i:06d}"
        failed = i % 10 == 7
        writer.set(paths.lead_ref(db, run_id, lead_id), {
            "index": i, "email": f"lead{i}@example.com", "firstName": "Ada", "lastName": f"L{i}",
            "company": "Acme", "timeZone": "Europe/Paris", "fields": {"title": "CTO"},
            "status": "failed" if failed else "sent", "attempts": 1,
            "lastError": "bounced" if failed else None, "updatedAt": t0,
        })
        for step in range(actions):
            writer.set(paths.action_ref(db, run_id, lead_id, f"step-{step}"), {
                "type": "email.send", "status": "failed" if failed else "sent",
                "at": t0 + dt.timedelta(seconds=i, milliseconds=step), "attempt": 1,
                "idempotencyKey": f"{run_id}:{lead_id}:step-{step}", "summary": f"sent to lead{i}@example.com",
                "error": None, "providerIds": {"mailId": f"m-{i}-{step}"},
                "runId": run_id, "leadDocId": lead_id, "leadIndex": i,
            })
    writer.close()


class RpcCounter:
    """Counts the read RPCs the Firestore client sends, whoever sends them."""

    def __init__(self) -> None:
        from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

        self.sent = 0
        self._class = FirestoreClient
        self._originals = {name: getattr(FirestoreClient, name) for name in READ_RPCS}
        for name, original in self._originals.items():
            def spy(client, *args, _original=original, **kwargs):
                self.sent += 1
                return _original(client, *args, **kwargs)

            setattr(FirestoreClient, name, spy)

    def close(self) -> None:
        for name, original in self._originals.items():
            setattr(self._class, name, original)


def read_whole_run(client, run_id: str, page_size: int, status: str | None, rpcs: RpcCounter):
    """(seconds, pages, queries of each page, documents read, leads seen)"""
    from shared.store import receipts as store

    pages, queries, documents, leads, token = 0, [], 0, 0, None
    began = time.perf_counter()
    while True:
        query = {"pageSize": page_size, **({"status": status} if status else {}), **({"pageToken": token} if token else {})}
        before = rpcs.sent
        with store.counting() as tally:
            response = client.get(f"/api/lead-runs/{run_id}/receipts", query_string=query)
        if response.status_code != 200:
            raise SystemExit(f"page {pages + 1}: HTTP {response.status_code} {response.get_data(as_text=True)}")
        if tally.queries != rpcs.sent - before:
            raise SystemExit(f"tally {tally.queries} != {rpcs.sent - before} RPCs sent")
        body = response.get_json()
        pages, documents, leads = pages + 1, documents + tally.documents, leads + len(body["leads"])
        queries.append(tally.queries)
        token = body["nextPageToken"]
        if not token:
            return time.perf_counter() - began, pages, queries, documents, leads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="30 leads, page size 10, one run")
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=3, help="actions per lead")
    parser.add_argument("--page-sizes", default="50,100,200")
    parser.add_argument("--runs", type=int, default=3, help="full reads per page size; the median is shown")
    args = parser.parse_args()
    leads, page_sizes, runs = (30, [10], 1) if args.smoke else (
        args.leads, [int(s) for s in args.page_sizes.split(",")], args.runs)

    emulator = localstack.emulator_from_env_or_start(PROJECT)
    os.environ["AUTH_MODE"] = "off"
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # one log line per page would drown the table

    import functions_framework

    from shared.store import runs as paths
    from shared.store.client import get_db

    db = get_db()
    run_id = f"bench-{uuid.uuid4().hex[:12]}"
    rpcs = None
    try:
        began = time.perf_counter()
        seed(db, run_id, leads, args.actions)
        print(f"seeded {leads:,} leads x {args.actions} actions in {time.perf_counter() - began:.1f}s "
              f"(emulator {os.environ['FIRESTORE_EMULATOR_HOST']})")
        client = functions_framework.create_app(
            target="receipts", source=str(ROOT / "functions" / "receipts" / "main.py")).test_client()
        rpcs = RpcCounter()
        read_whole_run(client, run_id, page_sizes[0], None, rpcs)  # warm-up: channel, imports, caches

        print(f"\nreading the whole run, page by page (median of {runs})")
        print("| filter | pageSize | pages | total ms | ms / page | queries / page | docs read |")
        print("|---|---:|---:|---:|---:|---|---:|")
        worst = 0
        cells = [(None, size) for size in page_sizes] + [("failed", page_sizes[len(page_sizes) // 2])]
        for status, size in cells:
            results = [read_whole_run(client, run_id, size, status, rpcs) for _ in range(runs)]
            seconds = statistics.median(r[0] for r in results)
            _, pages, queries, documents, seen = results[0]
            expected = leads if status is None else sum(1 for i in range(leads) if i % 10 == 7)
            if seen != expected:
                raise SystemExit(f"read {seen} leads, expected {expected}")
            worst = max(worst, *queries)
            spread = f"{min(queries)}" if min(queries) == max(queries) else f"{min(queries)}-{max(queries)}"
            print(f"| {status or 'none'} | {size} | {pages} | {seconds * 1000:,.0f} | "
                  f"{seconds * 1000 / pages:,.1f} | {spread} | {documents:,} |")
        print(f"\nmost queries on any page: {worst} (target <= {TARGET_QUERIES})")
        return 0 if worst <= TARGET_QUERIES else 1
    finally:
        if rpcs is not None:
            rpcs.close()
        db.recursive_delete(paths.run_ref(db, run_id))
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
