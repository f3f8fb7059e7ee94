"""Deliverability on a simulated clock: leads over many zones, several senders, caps,
pacing and sending windows, on the Firestore emulator.

    python bench/bench_deliverability.py             # 10,000 leads, 20 zones, 5 senders
    python bench/bench_deliverability.py --smoke     # 100 leads, for CI: checks it runs

One background run per sender (its share of the leads, zones assigned round-robin),
each with the window 09:00-17:00 Monday-Friday in the lead's zone, driven by
tools/simclock.py: the worker chain runs every hand-off, the sweeper wakes waiting
jobs once a simulated minute, and every send takes one simulated second. The clock
starts Monday 2030-03-04 00:00 UTC, so the US spring-forward (Sunday 10 March) falls
inside the run.

Printed: sends per sender per UTC day and the most in any rolling 24 h (the cap holds
if that is ≤ maxPerDay), the largest and the median gap between one sender's
consecutive sends (≥ minGapSeconds), the share of sends inside the lead's window read
off its local wall clock (target 100%), and Firestore writes per lead after the start
(every committed write counted: batch writes and single-document writes).

If FIRESTORE_EMULATOR_HOST is unset the benchmark starts an emulator of its own.

Full size is slow on the emulator: while some zones' windows are closed every worker
invocation re-reads the run's leads from the first deferred one (docs/deliverability.md,
"Not done / known limits"); `--leads 1000` gives the shape of the figures sooner.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import logging
import pathlib
import statistics
import sys
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tools import localstack  # noqa: E402

PROJECT = "demo-mission-control-bench"
LOG_DIR = localstack.ROOT / "build" / "bench-logs"
UTC = dt.timezone.utc
START = dt.datetime(2030, 3, 4, 0, 0, tzinfo=UTC)
ZONES = [
    "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver", "America/Chicago",
    "America/New_York", "America/Sao_Paulo", "Atlantic/Azores", "Europe/London", "Europe/Berlin",
    "Europe/Helsinki", "Europe/Moscow", "Asia/Dubai", "Asia/Kolkata", "Asia/Kathmandu",
    "Asia/Shanghai", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland",
]
WINDOW = {"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5], "fallbackTimeZone": "UTC"}


def inside(zone: ZoneInfo, at: dt.datetime) -> bool:
    local = at.astimezone(zone)
    return local.isoweekday() in WINDOW["days"] and 9 * 60 <= local.hour * 60 + local.minute < 17 * 60


class WriteCounter:
    """Counts every committed write: WriteBatch.commit (len of the batch) and single-document writes."""

    def __init__(self) -> None:
        self.writes = 0

    def install(self) -> None:
        from google.cloud.firestore_v1.batch import WriteBatch
        from google.cloud.firestore_v1.document import DocumentReference

        counter = self
        commit = WriteBatch.commit

        def counted_commit(batch, *args, **kwargs):
            result = commit(batch, *args, **kwargs)
            counter.writes += len(batch)
            return result

        WriteBatch.commit = counted_commit
        for name in ("create", "set", "update", "delete"):
            original = getattr(DocumentReference, name)

            def single(ref, *args, _original=original, **kwargs):
                result = _original(ref, *args, **kwargs)
                counter.writes += 1
                return result

            setattr(DocumentReference, name, single)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="100 leads: checks that it runs")
    parser.add_argument("--leads", type=int, default=10000)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--days", type=int, default=14, help="simulated days at most")
    args = parser.parse_args()
    if args.smoke:
        count, senders, caps = 100, 5, {"maxPerDay": 12, "maxPerHour": 8, "minGapSeconds": 120, "jitterSeconds": 60}
    else:
        # Gmail's Workspace limit (2,000 a day), spaced 30-45 s apart.
        count, senders, caps = args.leads, args.senders, {"maxPerDay": 2000, "maxPerHour": 120,
                                                          "minGapSeconds": 30, "jitterSeconds": 15}

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.INFO)
    target = localstack.emulator_from_env_or_start(PROJECT, LOG_DIR / "firestore.log")
    try:
        from shared.jobs import bodies, service
        from shared.settings import get_settings
        from shared.store import runs as repo
        from shared.store import senders as senders_repo
        from shared.store.client import get_db
        from tools.simclock import RecordingProvider, SimClock, drive

        db = get_db()
        target.reset()
        sim = SimClock(START)
        undo = sim.install()
        db.collection("templates").document("bench").set({
            "name": "Bench", "channel": "email", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}}",
            "draftFirst": False, "version": 1, "createdAt": START, "updatedAt": START,
        })
        handoffs, zone_of, run_ids = [], {}, []
        for s in range(senders):
            sender_id, run_id = f"sender-{s}", f"bench-{s}"
            senders_repo.put(db, sender_id, {"email": f"box{s}@example.com", "maxPerHour": None, **caps}, START)
            mine = range(s, count, senders)
            leads = [{"email": f"lead{i}@example.com", "firstName": f"Lead{i}", "timeZone": ZONES[i % len(ZONES)]}
                     for i in mine]
            for index, lead in enumerate(leads):
                zone_of[(run_id, repo.lead_doc_id(index))] = ZoneInfo(lead["timeZone"])
            request = {"action": "start", "mode": "background", "leads": leads, "config": {
                "templateId": "bench", "batchSize": 100, "senderId": sender_id, "sendWindow": WINDOW}}
            captured = []
            service.post(db, run_id, bodies.parse_request(request), dispatcher=lambda *call: captured.append(call) or True)
            handoffs += captured
            run_ids.append(run_id)
        counter = WriteCounter()
        counter.install()
        provider = RecordingProvider(sim)
        began = time.perf_counter()
        stats = drive(db, handoffs, sim, get_settings(), provider, START + dt.timedelta(days=args.days), run_ids)
        wall = time.perf_counter() - began
        statuses = collections.Counter(repo.get_job(db, run_id)["status"] for run_id in run_ids)
        sends = provider.sends  # read while the emulator runs: a send counts once its mail landed
        undo()
    finally:
        target.stop()

    by_run = collections.defaultdict(list)
    for send in sends:
        by_run[send.run_id].append(send.at)
    days = sorted({send.at.date() for send in sends})
    print(f"{count:,} leads over {len(ZONES)} zones and {senders} senders; caps {caps}; "
          f"window {WINDOW['start']}-{WINDOW['end']} Mon-Fri local")
    print(f"simulated {START:%Y-%m-%d} → {sim.now():%Y-%m-%d %H:%M} UTC in {wall:.1f} s of wall time; "
          f"{stats.invocations} worker invocations, {stats.wakes} wake-ups, {stats.sweeps} sweeps; jobs {dict(statuses)}")
    print("\nsends per sender per UTC day (max in any rolling 24 h last)")
    print("| sender | " + " | ".join(f"{d:%m-%d}" for d in days) + " | max 24 h |")
    print("|---|" + "---|" * (len(days) + 1))
    worst_gap, gaps_all, over_cap = None, [], 0
    for s, run_id in enumerate(run_ids):
        times = sorted(by_run[run_id])
        per_day = collections.Counter(t.date() for t in times)
        rolling, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - dt.timedelta(hours=24):
                j += 1
            rolling = max(rolling, i - j + 1)
        over_cap += rolling > caps["maxPerDay"]
        print(f"| sender-{s} | " + " | ".join(str(per_day.get(d, 0)) for d in days) + f" | {rolling} |")
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        gaps_all += gaps
        if gaps:
            worst_gap = min(gaps) if worst_gap is None else min(worst_gap, min(gaps))
    within = sum(inside(zone_of[(s.run_id, s.lead_id)], s.at) for s in sends)
    print()
    if gaps_all:
        print(f"gap between one sender's sends: largest {max(gaps_all) / 3600:.1f} h, median {statistics.median(gaps_all):.0f} s, "
              f"smallest {worst_gap:.0f} s (minGapSeconds {caps['minGapSeconds']})")
    print(f"inside the lead's window: {within}/{len(sends)} = {100 * within / max(len(sends), 1):.2f}% (target 100%)")
    print(f"sent {len(sends)} of {count} leads, {len(sends) - len({(s.run_id, s.lead_id) for s in sends})} twice")
    print(f"Firestore writes after the start: {counter.writes:,} = {counter.writes / max(len(sends), 1):.2f} per lead sent")
    ok = within == len(sends) and over_cap == 0 and len({(s.run_id, s.lead_id) for s in sends}) == len(sends)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
