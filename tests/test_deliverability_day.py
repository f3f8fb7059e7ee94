"""Whole days on a simulated clock (tools/simclock.py), the US spring-forward night
included: three runs with different sending windows share one sender. Whatever the
interleaving, never more than the caps in any rolling 24 h or hour, never closer than
the gap, never outside a lead's window, nothing lost, nothing sent twice."""

from __future__ import annotations

import collections
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from shared.settings import get_settings
from shared.store import runs as repo
from shared.store import senders as senders_repo
from tests.jobs_helpers import Captured, all_leads, docs, job, make_leads, make_template, start_request
from shared.jobs import bodies, service
from tools.simclock import RecordingProvider, SimClock, drive

UTC = dt.timezone.utc
# Saturday noon UTC; New York springs forward at 02:00 on Sunday 2030-03-10.
START = dt.datetime(2030, 3, 9, 12, 0, tzinfo=UTC)
MAX_PER_DAY, MAX_PER_HOUR, GAP, JITTER = 30, 8, 300, 120
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "", "Not/AZone"]
RUNS = {
    "day": ({"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5, 6, 7], "fallbackTimeZone": "America/New_York"}, 20),
    "night": ({"start": "22:00", "end": "02:00", "days": [1, 2, 3, 4, 5, 6, 7], "fallbackTimeZone": "Europe/Berlin"}, 20),
    # 02:00-03:00 does not exist on the DST night: the window is two hours long there.
    "dst": ({"start": "01:00", "end": "04:00", "days": [1, 2, 3, 4, 5, 6, 7], "fallbackTimeZone": "America/New_York"}, 15),
}


def wall_inside(window: dict, zone: ZoneInfo, at: dt.datetime) -> bool:
    """Independent of shared/deliverability/window.py: read the local wall clock."""
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start = int(window["start"][:2]) * 60 + int(window["start"][3:])
    end = int(window["end"][:2]) * 60 + int(window["end"][3:])
    today, yesterday = local.isoweekday(), (local - dt.timedelta(days=1)).isoweekday()
    if start < end:
        return today in window["days"] and start <= minute < end
    return (minute >= start and today in window["days"]) or (minute < end and yesterday in window["days"])


@pytest.fixture
def sim(monkeypatch):
    clock = SimClock(START)
    clock.install(monkeypatch)
    return clock


def test_three_runs_sharing_a_sender_through_a_dst_weekend(db, sim):
    make_template(db)
    senders_repo.put(db, "box", {"email": "ops@example.com", "maxPerDay": MAX_PER_DAY, "maxPerHour": MAX_PER_HOUR,
                                 "minGapSeconds": GAP, "jitterSeconds": JITTER}, START)
    handoffs = []
    for run_id, (window, count) in RUNS.items():
        leads = [{**lead, "timeZone": ZONES[i % len(ZONES)]} for i, lead in enumerate(make_leads(count))]
        captured = Captured()
        request = start_request(leads, senderId="box", sendWindow=window, batchSize=5)
        service.post(db, run_id, bodies.parse_request(request), dispatcher=captured)
        handoffs += captured.calls
    provider = RecordingProvider(sim)
    stats = drive(db, handoffs, sim, get_settings(), provider, START + dt.timedelta(days=5), list(RUNS))
    sends = provider.sends

    # Nothing lost, nothing twice: every lead of every run sent once, and the jobs completed.
    assert len(sends) == sum(count for _, count in RUNS.values())
    assert len({(s.run_id, s.lead_id) for s in sends}) == len(sends)
    assert len(docs(db, "mail")) == len(sends)
    for run_id in RUNS:
        assert job(db, run_id)["status"] == "completed"
        assert {lead["status"] for lead in all_leads(db, run_id)} == {"sent"}

    times = [s.at for s in sends]
    assert times == sorted(times)
    for i, at in enumerate(times):
        assert sum(1 for t in times[: i + 1] if t > at - dt.timedelta(hours=24)) <= MAX_PER_DAY
        assert sum(1 for t in times[: i + 1] if t > at - dt.timedelta(hours=1)) <= MAX_PER_HOUR
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert min(gaps) >= GAP

    fallback = {run_id: window["fallbackTimeZone"] for run_id, (window, _) in RUNS.items()}
    leads = {run_id: {lead["id"]: lead for lead in all_leads(db, run_id)} for run_id in RUNS}
    for send in sends:
        zone_name = leads[send.run_id][send.lead_id].get("timeZone")
        zone = ZoneInfo(zone_name if zone_name in ZONES[:3] else fallback[send.run_id])
        assert wall_inside(RUNS[send.run_id][0], zone, send.at), (send, zone)

    # Each zone's leads went in index order within a run.
    for run_id in RUNS:
        by_zone = collections.defaultdict(list)
        for send in (s for s in sends if s.run_id == run_id):
            by_zone[leads[run_id][send.lead_id].get("timeZone")].append(leads[run_id][send.lead_id]["index"])
        assert all(order == sorted(order) for order in by_zone.values())

    # The caps bit: the runs needed more than one day, and waited rather than spun.
    assert times[-1] - times[0] > dt.timedelta(hours=24)
    assert stats.invocations < 20 * len(sends)
    # The DST run sent on the spring-forward night, after the jump (no 02:xx in New York).
    dst_ny = [s.at.astimezone(ZoneInfo("America/New_York")) for s in sends
              if s.run_id == "dst" and leads["dst"][s.lead_id].get("timeZone") == "America/New_York"]
    assert dst_ny and all(local.hour != 2 for local in dst_ny)
    assert repo.get_run(db, "day")["status"] == "completed"
