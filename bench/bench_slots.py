"""Slot search timing: window length x busy intervals, milliseconds per search.

    python bench/bench_slots.py            # the full table (docs/schedule.md has a copy)
    python bench/bench_slots.py --smoke    # one tiny cell, for CI: checks it runs, not how fast

Each search is the worst case for the walk: America/New_York, Mon-Fri 09:00-17:00,
15-minute step, 30-minute meetings, no maxCandidates, so every day of the window is
walked and every free slot is built. Busy intervals (15-120 minutes, random offsets,
overlapping one another) are spread over the window. The figure is the median of
several runs, including the sort/merge of the busy list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import random
import statistics
import sys
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from shared.slots import SlotQuery, find_slots  # noqa: E402

UTC = dt.timezone.utc
FIRST_DAY = dt.date(2025, 1, 6)  # the window crosses both 2025 transitions at 365 days
NOW = dt.datetime(2025, 1, 1, tzinfo=UTC)


def make_busy(count: int, days: int, rng: random.Random) -> list[tuple[dt.datetime, dt.datetime]]:
    window_start = dt.datetime.combine(FIRST_DAY, dt.time(), UTC)
    busy = []
    for _ in range(count):
        start = window_start + dt.timedelta(minutes=rng.randrange(days * 24 * 60))
        offset = dt.timezone(dt.timedelta(minutes=15 * rng.randrange(-48, 57)))
        end = start + dt.timedelta(minutes=rng.randrange(15, 121))
        busy.append((start.astimezone(offset), end.astimezone(offset)))
    return busy


def time_search(days: int, busy_count: int, runs: int) -> tuple[float, int]:
    search = SlotQuery(
        zone=ZoneInfo("America/New_York"),
        first_day=FIRST_DAY,
        last_day=FIRST_DAY + dt.timedelta(days=days - 1),
        work_start_minute=9 * 60,
        work_end_minute=17 * 60,
        working_days=frozenset({1, 2, 3, 4, 5}),
        duration_minutes=30,
        step_minutes=15,
        max_candidates=None,
    )
    busy = make_busy(busy_count, days, random.Random(busy_count * 1000 + days))
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        found = find_slots(search, busy, NOW)
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings), len(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny cell, one run")
    parser.add_argument("--runs", type=int, default=9, help="runs per cell; the median is shown")
    args = parser.parse_args()

    day_counts, busy_counts, runs = ([7], [0, 50], 1) if args.smoke else ([30, 90, 365], [0, 500, 5000], args.runs)
    print(f"ms per search (median of {runs}), slots found in brackets")
    print("| days \\ busy | " + " | ".join(f"{count:>15,}" for count in busy_counts) + " |")
    print("|---|" + "---|" * len(busy_counts))
    for days in day_counts:
        cells = []
        for busy_count in busy_counts:
            millis, found = time_search(days, busy_count, runs)
            cells.append(f"{millis:7.2f} ({found:>5})")
        print(f"| {days:>11} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
