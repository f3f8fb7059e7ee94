"""What recognising a lost commit answer costs, on the Firestore emulator.

    python bench/bench_commits.py             # 500 writes per row
    python bench/bench_commits.py --smoke     # 30: checks that it runs, not how fast

Three rows, each `--writes` sequential read-modify-writes of one document:
- the same compare-and-set commit as a plain WriteBatch (what write_if_unchanged did before);
- write_if_unchanged (a MarkedBatch: one more document, the marker, in the same commit);
- write_if_unchanged with every commit's answer lost (tools/answerloss.py): the emulator
  applies it, the client sees UNAVAILABLE, the library re-sends after its own back-off, the
  copy fails its precondition and one marker read settles it.
Prints the median and 95th percentile per write, and checks that every row applied each
write exactly once. If FIRESTORE_EMULATOR_HOST is unset the benchmark starts an emulator.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tools import localstack  # noqa: E402
from tools.answerloss import AnswerLossProxy  # noqa: E402

PROJECT = "demo-mission-control-bench"
LOG_DIR = localstack.ROOT / "build" / "bench-logs"


def add_one(snapshot, batch, unchanged):
    value = snapshot.to_dict()["value"] + 1
    batch.update(snapshot.reference, {"value": value}, option=unchanged)
    return value


def plain_compare_and_set(db, ref) -> None:
    snapshot = ref.get()
    batch = db.batch()
    add_one(snapshot, batch, db.write_option(last_update_time=snapshot.update_time))
    batch.commit()


def timed(writes: int, write) -> list[float]:
    seconds = []
    for _ in range(writes):
        began = time.perf_counter()
        write()
        seconds.append(time.perf_counter() - began)
    return seconds


def row(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"| {name} | {statistics.median(ms):6.2f} | {p95:6.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="30 writes per row: checks that it runs")
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args()
    writes = 30 if args.smoke else args.writes

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    target = localstack.emulator_from_env_or_start(PROJECT, LOG_DIR / "firestore.log")
    try:
        from shared.store import client

        db = client.get_db()
        ref = db.collection("bench_commits").document("counter")
        ref.set({"value": 0})
        plain = timed(writes, lambda: plain_compare_and_set(db, ref))
        marked = timed(writes, lambda: client.write_if_unchanged(db, ref, add_one))
        with AnswerLossProxy(target.host) as proxy:
            os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.address
            client.get_db.cache_clear()
            lossy_db = client.get_db()

            def lost_answer() -> None:
                proxy.lose_answers(1)
                client.write_if_unchanged(lossy_db, ref, add_one)

            lost = timed(writes, lost_answer)
            os.environ["FIRESTORE_EMULATOR_HOST"] = target.host
            client.get_db.cache_clear()
        final = ref.get().to_dict()["value"]
    finally:
        target.stop()

    print(f"{writes} sequential writes per row, emulator {target.host}")
    print("| compare-and-set commit of one document | median ms | p95 ms |")
    print("|---|---|---|")
    print(row("plain WriteBatch (before)", plain))
    print(row("write_if_unchanged, MarkedBatch", marked))
    print(row("write_if_unchanged, every answer lost and re-sent", lost))
    expected = 3 * writes
    print(f"value {final} after {expected} writes: {'each applied once' if final == expected else 'WRONG'}")
    return 0 if final == expected else 1


if __name__ == "__main__":
    sys.exit(main())
