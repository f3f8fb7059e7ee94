"""Background worker chain vs a plain loop, on the Firestore emulator.

    python bench/bench_worker.py                  # 1,000 leads (docs/jobs.md has the figures)
    python bench/bench_worker.py --smoke          # 60 leads, for CI: checks it runs, not how fast
    python bench/bench_worker.py --leads 5000 --batch-size 200

Both sides send the same leads with the same template on the same emulator:

- chain: POST /api/lead-runs/{runId}/jobs {action: start, mode: background} through the
  local Hosting router; the worker function (a real functions-framework process) runs
  batch after batch, invoking itself over HTTP at WORKER_URL. Timed from the job's
  `startedAt` to its `finishedAt` (server-side, so lead creation and polling are not in
  it); the wall time from the POST to the observed finish is printed too.
- plain loop: one process reads the same leads (pages of `--batch-size`, by key) and,
  per lead, renders the message and commits its mail document + receipt in one batch:
  the essential writes, with no lease, no pause check, no checkpoints, no HTTP.

Printed: leads/s of both and their ratio (target ≤ 2.0), the job document's write count
(its `writes` field, incremented by every write) against the number of batches (one
hand-off claim document per worker invocation; target ≤ 1 write per batch), and the
worker process group's peak RSS (VmHWM from /proc).

If FIRESTORE_EMULATOR_HOST is unset the benchmark starts an emulator of its own.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench.bench_faults import mail_count  # noqa: E402
from tools import localstack  # noqa: E402

PROJECT = "demo-mission-control-bench"
LOG_DIR = localstack.ROOT / "build" / "bench-logs"
SUBJECT = "Hi {{firstName}}"
BODY = "Hello {{firstName}},\n\nA note for {{company}} about {{fields.industry}}.\n\nBest"


def leads(count: int) -> list[dict]:
    return [
        {"email": f"lead{i}@example.com", "firstName": f"Lead{i}", "company": f"Company {i % 97}",
         "fields": {"industry": "looms"}}
        for i in range(count)
    ]


def process_group_peak_rss_kib(pid: int) -> int:
    """Largest VmHWM among `pid` and its descendants (gunicorn's arbiter and its worker)."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    peak, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in pathlib.Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak


def run_chain(stack: localstack.Stack, db, template_id: str, count: int, batch_size: int) -> dict:
    from shared.store import runs as repo

    run_id = f"bench-chain-{count}-{int(time.time())}"
    began = time.perf_counter()
    response = requests.post(
        f"{stack.url}/api/lead-runs/{run_id}/jobs",
        json={"action": "start", "mode": "background", "leads": leads(count),
              "config": {"templateId": template_id, "batchSize": batch_size}},
        timeout=300,
    )
    response.raise_for_status()
    while True:
        job = requests.get(f"{stack.url}/api/lead-runs/{run_id}/jobs", timeout=30).json()["job"]
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - began
    stored = repo.get_job(db, run_id)
    seconds = (stored["finishedAt"] - stored["startedAt"]).total_seconds()
    invocations = len(list(repo.job_ref(db, run_id).collection("leases").stream()))
    mails = mail_count(db, run_id)
    return {
        "status": job["status"], "seconds": seconds, "wall": wall, "mails": mails, "writes": stored["writes"],
        "batches": invocations, "counts": job["counts"],
    }


def run_plain_loop(db, count: int, batch_size: int) -> dict:
    """The same essential writes from one process: mail document + receipt, per lead."""
    from google.cloud import firestore

    from shared import clock
    from shared.jobs.bodies import LeadIn
    from shared.jobs.service import lead_documents
    from shared.outreach import pipeline
    from shared.store import mail as mail_store
    from shared.store import runs as repo

    run_id = f"bench-plain-{count}-{int(time.time())}"
    repo.write_leads(db, run_id, lead_documents([LeadIn(**lead) for lead in leads(count)]))
    template = {"subject": SUBJECT, "body": BODY}
    began = time.perf_counter()
    for first in range(0, count, batch_size):
        for lead in repo.read_leads(db, run_id, first, min(batch_size, count - first)):
            email = pipeline.compose(template, lead, run_id, draft=False)
            batch = db.batch()
            batch.create(mail_store.mail_ref(db, email.message_id), {
                "to": email.to, "message": {"subject": email.subject, "text": email.text, "html": email.html},
                "runId": run_id, "leadDocId": lead["id"],
            })
            batch.set(repo.action_ref(db, run_id, lead["id"], email.step), {
                "type": "email.send", "status": "sent", "at": clock.now(), "attempt": 1,
                "idempotencyKey": email.idempotency_key, "runId": run_id, "leadDocId": lead["id"],
                "leadIndex": lead["index"], "updatedAt": firestore.SERVER_TIMESTAMP,
            })
            batch.commit()
    return {"seconds": time.perf_counter() - began}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="60 leads: checks that it runs")
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    count, batch_size = (60, 20) if args.smoke else (args.leads, args.batch_size)

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the local router's access log
    target = localstack.emulator_from_env_or_start(PROJECT, LOG_DIR / "firestore.log")
    try:
        from shared.store.client import get_db

        db = get_db()
        # The plain loop goes first, so the chain runs on the fuller database (the conservative order).
        plain = run_plain_loop(db, count, batch_size)
        with localstack.running_stack(
            emulator=target, port=localstack.free_port(), log_dir=LOG_DIR, names=["jobs", "templates", "worker"],
        ) as stack:
            created = requests.post(f"{stack.url}/api/templates",
                                    json={"name": "Bench", "subject": SUBJECT, "body": BODY}, timeout=30)
            created.raise_for_status()
            chain = run_chain(stack, db, created.json()["id"], count, batch_size)
            rss_kib = process_group_peak_rss_kib(stack.functions["worker"].process.pid)
    finally:
        target.stop()

    chain_rate, plain_rate = count / chain["seconds"], count / plain["seconds"]
    ratio = plain_rate / chain_rate
    print(f"{count:,} leads, batchSize {batch_size}, emulator {target.host}")
    print("| | leads/s | seconds |")
    print("|---|---|---|")
    print(f"| worker chain (startedAt→finishedAt) | {chain_rate:7.1f} | {chain['seconds']:6.2f} |")
    print(f"| worker chain (wall, incl. creating the leads) | {count / chain['wall']:7.1f} | {chain['wall']:6.2f} |")
    print(f"| plain loop | {plain_rate:7.1f} | {plain['seconds']:6.2f} |")
    print(f"time ratio chain/plain: {ratio:.2f} (target ≤ 2.0: {'met' if ratio <= 2.0 else 'MISSED'})")
    per_batch = (chain["writes"] - 2) / max(chain["batches"], 1)
    print(f"job-document writes: {chain['writes']} for {chain['batches']} batches "
          f"(1 at start, 1 when the first batch begins, {chain['writes'] - 2} by the batches: "
          f"{per_batch:.2f} per batch; target ≤ 1)")
    print(f"worker peak RSS (VmHWM, gunicorn arbiter + worker): {rss_kib / 1024:.1f} MiB")
    print(f"job {chain['status']}, {chain['mails']} mail documents, counts {chain['counts']}")
    ok = chain["status"] == "completed" and chain["mails"] == count
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
