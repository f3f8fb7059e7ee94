"""What the consent gate costs a lead, on the Firestore emulator.

    python bench/bench_consent.py            # 300 leads per side
    python bench/bench_consent.py --smoke    # 30 leads per side: checks it runs, not how fast

Both sides run shared/outreach/pipeline.process_lead over the same leads with the mail
collection provider, one lead after another, in this process:

- gate: as shipped (one batched read of the address's and the domain's contact
  records, both written in the lead's commit with a precondition, plus the unsubscribe
  token document);
- no gate: the same with gate.check answering "clear" from no read and a guard that
  queues nothing, i.e. the pipeline before docs/consent.md.

Printed: ms per lead of both (median of per-lead times) and the difference.

If FIRESTORE_EMULATOR_HOST is unset the benchmark starts an emulator of its own.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tools import localstack  # noqa: E402

PROJECT = "demo-mission-control-bench"


def run_side(db, run_id: str, count: int) -> list[float]:
    from shared.jobs import service
    from shared.jobs.bodies import LeadIn
    from shared.outreach import pipeline
    from shared.outreach.providers import MailCollectionProvider
    from shared.store import runs as repo

    leads = [LeadIn(email=f"{run_id}-{i}@example{i % 7}.com", first_name=f"L{i}") for i in range(count)]
    docs = service.lead_documents(leads)
    repo.write_leads(db, run_id, docs)
    ctx = pipeline.RunContext(db=db, run_id=run_id, template={"subject": "Hi {{firstName}}", "body": "Hello"},
                              draft=False, provider=MailCollectionProvider(), max_attempts=3)
    times = []
    for lead in repo.read_leads(db, run_id, 0, count):
        started = time.perf_counter()
        assert pipeline.process_lead(ctx, lead, 0, time.monotonic() + 60).status == "sent"
        times.append((time.perf_counter() - started) * 1000)
    return times


class _Clear:
    skip_reason = None
    detail = ""

    def queue_guard(self, db, batch, sent):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="30 leads per side: checks that it runs")
    parser.add_argument("--leads", type=int, default=300)
    args = parser.parse_args()
    count = 30 if args.smoke else args.leads
    emulator = localstack.emulator_from_env_or_start(PROJECT)
    try:
        emulator.reset()
        from shared.consent import gate
        from shared.store.client import get_db

        db = get_db()
        stamp = int(time.time())
        run_side(db, f"bench-warm-{stamp}", 5)  # the client's channel and the emulator's JIT
        with_gate = run_side(db, f"bench-gate-{stamp}", count)
        original = gate.check
        gate.check = lambda *a, **k: _Clear()
        try:
            without = run_side(db, f"bench-plain-{stamp}", count)
        finally:
            gate.check = original
        a, b = statistics.median(with_gate), statistics.median(without)
        print(f"leads per side: {count}")
        print(f"with the consent gate:    {a:.2f} ms/lead (median)")
        print(f"without (pre-consent):    {b:.2f} ms/lead (median)")
        print(f"the gate costs:           {a - b:+.2f} ms/lead ({(a / b - 1) * 100:+.0f}%)")
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
