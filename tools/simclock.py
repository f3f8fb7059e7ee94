"""A simulated clock driving background runs through hours or days on the real emulator.

`shared.clock.now` is the seam: `SimClock.install()` replaces it, and the worker's
`sleep`/`monotonic` (which run_batch takes as parameters) advance the same clock, so a
pacing gap of two minutes costs no real time. `drive()` plays the part of the worker
chain and of the sweeper (shared/jobs/sweeper.py): it runs every hand-off, and when every job is
waiting it moves the clock to the next sweep at or after the earliest `wakeAt` and wakes
what is due through shared/deliverability/wake.py.

Used by tests/test_deliverability_day.py and bench/bench_deliverability.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable

from shared import clock
from shared.deliverability import wake
from shared.jobs import state, worker
from shared.outreach.providers import MailCollectionProvider
from shared.settings import Settings
from shared.store import mail
from shared.store import runs as repo

UTC = dt.timezone.utc
SWEEP_SECONDS = 60


class SimClock:
    def __init__(self, start: dt.datetime, send_seconds: float = 1.0):
        self.at = start
        self.send_seconds = send_seconds  # how long one provider call takes

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - dt.datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=max(0.0, seconds))

    def install(self, monkeypatch: Any = None) -> Callable[[], None]:
        """Makes shared.clock.now read this clock; returns the undo."""
        if monkeypatch is not None:
            monkeypatch.setattr(clock, "now", self.now)
            return lambda: None
        original = clock.now
        clock.now = self.now
        return lambda: setattr(clock, "now", original)


@dataclasses.dataclass(frozen=True)
class Send:
    at: dt.datetime
    run_id: str
    lead_id: str
    to: str


class RecordingProvider(MailCollectionProvider):
    """The mail collection, recording each send at the simulated instant it happens.

    A send counts once its mail document exists: an attempt whose commit was refused (the
    consent guard saw the address's record change, docs/consent.md) queued a document that
    never landed, and the attempt that follows replaces it.
    """

    def __init__(self, sim: SimClock):
        self.sim = sim
        self._db: Any = None
        self._attempts: dict[tuple[str, bool], Send] = {}

    def deliver(self, db: Any, batch: Any, email: Any) -> dict[str, str]:
        self.sim.sleep(self.sim.send_seconds)
        ids = super().deliver(db, batch, email)
        self._db = db
        self._attempts[(email.message_id, email.draft)] = Send(self.sim.now(), email.run_id, email.lead_id, email.to)
        return ids

    @property
    def sends(self) -> list[Send]:
        if self._db is None:
            return []
        refs = [mail.outbox_ref(self._db, message_id, draft) for message_id, draft in self._attempts]
        landed = {snapshot.reference.path for snapshot in self._db.get_all(refs) if snapshot.exists}
        kept = [send for ref, send in zip(refs, self._attempts.values()) if ref.path in landed]
        return sorted(kept, key=lambda send: send.at)


@dataclasses.dataclass
class Drive:
    invocations: int = 0
    wakes: int = 0
    sweeps: int = 0


def invoke(db: Any, run_id: str, token: str, handoff: str, sim: SimClock, settings: Settings, provider: Any):
    """One worker invocation (worker.handle's steps) on the simulated clock; the next hand-off or None."""
    owner, job = worker.acquire(db, run_id, token, handoff, settings)
    deadline = sim.monotonic() + worker.time_budget(job["config"], settings)
    # One lane: the simulated clock is one timeline, and leads in flight at once would
    # advance it in whatever order their threads run (shared/jobs/loop.py's lanes are
    # exercised by tests/test_jobs_concurrency.py on the real clock).
    result = worker.run_batch(
        db, run_id, job, owner, deadline, job["config"]["batchSize"], provider, sleep=sim.sleep, monotonic=sim.monotonic,
        concurrency=1,
    )
    done = worker.checkpoint(db, run_id, owner, result, settings)
    return done.next_owner


def drive(
    db: Any, handoffs: list[tuple[str, str, str]], sim: SimClock, settings: Settings, provider: Any,
    until: dt.datetime, run_ids: list[str], max_invocations: int = 100000,
) -> Drive:
    """Runs the chains of `run_ids` until every job has finished or the clock passes `until`."""
    stats = Drive()
    queue = list(handoffs)
    while sim.now() < until and stats.invocations < max_invocations:
        if queue:
            run_id, token, lease = queue.pop(0)
            stats.invocations += 1
            next_owner = invoke(db, run_id, token, lease, sim, settings, provider)
            if next_owner:
                queue.append((run_id, token, next_owner))
            continue
        jobs = {run_id: repo.get_job(db, run_id) for run_id in run_ids}
        waiting = [j for j in jobs.values() if j and j["status"] == state.WAITING]
        if not waiting:
            break  # finished (or paused): nothing left to wake
        earliest = min(j["wakeAt"] for j in waiting)
        # The sweeper runs once a minute: the first sweep at or after the earliest wakeAt.
        sweep = max(sim.now(), earliest)
        epoch_seconds = (sweep - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        remainder = epoch_seconds % SWEEP_SECONDS
        if remainder:
            sweep += dt.timedelta(seconds=SWEEP_SECONDS - remainder)
        sim.at = sweep
        stats.sweeps += 1
        for run_id in wake.due_waiting_jobs(db, sim.now()):
            if run_id not in run_ids:
                continue
            woken = wake.wake(db, run_id, sim.now(), settings)
            if woken:
                stats.wakes += 1
                queue.append((run_id, woken.token, woken.owner))
    return stats
