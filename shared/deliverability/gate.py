"""What the worker asks before each lead: may it be sent now, and if not, until when.

The worker scans pending leads in index order. For each one the gate answers:

- GO: inside the lead's sending window and, with a sender, a send was reserved on the
  sender's ledger (shared/store/senders.py: caps, pacing and pauses hold across runs);
- DEFER: the lead's window is closed. The lead stays `pending` and costs no attempt;
  every later lead of the same zone is deferred too for the rest of the scan, so each
  zone keeps its order;
- STOP: the sender may not send (daily or hourly cap, pacing longer than the batch
  has left, a provider-quota pause). No later lead could go either.

A pacing wait that fits in the batch's remaining time is slept through instead (one
gap per send would otherwise cost a checkpoint and a wake-up per lead). When the batch
ends, `conclude` moves the job's `nextIndex` back to the first deferred lead and, when
nothing else can be sent, sets the job waiting with `wakeAt` and `waitReason`.

Reservations and failed sends: a reservation is taken back (`release`) when the lead's
message certainly did not leave: a refusal before sending (invalid address, missing
variable, provider rejection), a quota refusal, or a transient error that leaves the
lead pending. It is kept when the outcome is unknown (a send that may have left counts,
erring towards fewer sends) and while another attempt is in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any, Callable

from shared import clock
from shared.deliverability.window import SendWindow, next_open, zone_of
from shared.errors import field_error
from shared.outreach.errors import ProviderQuotaError
from shared.store import senders as senders_repo

GO, DEFER, STOP = "go", "defer", "stop"
WINDOW_CLOSED = "window_closed"
PROVIDER_QUOTA = "provider_quota"
# A send needs time of its own after a pacing sleep; waits longer than the batch's
# remaining time less this go to the waiting state instead.
SEND_MARGIN_SECONDS = 5.0
# Throttling without Retry-After: 1 min, 2, 4, ... capped at 1 h (Gmail's "Resolve
# errors" page asks for exponential backoff). The daily quota pauses a full 24 h
# ("users can't send new messages for up to 24 hours": Workspace sending limits).
QUOTA_BACKOFF_BASE = dt.timedelta(minutes=1)
QUOTA_BACKOFF_CAP = dt.timedelta(hours=1)
DAILY_QUOTA_PAUSE = dt.timedelta(hours=24)
KEEP_RESERVATION_CODES = frozenset({"outcome_unknown", "in_flight"})


def deliverability_config(db: Any, config: Any) -> dict[str, Any]:
    """The job-document fields of a start config's senderId/sendWindow; 400 for an unknown sender."""
    fields: dict[str, Any] = {}
    if config.sender_id is not None:
        if senders_repo.get(db, config.sender_id) is None:
            raise field_error("config.senderId", f"no sender with id {config.sender_id}: PUT /api/senders/{{senderId}} first")
        fields["senderId"] = config.sender_id
    if config.send_window is not None:
        fields["sendWindow"] = config.send_window.document()
    return fields


def quota_backoff(level: int) -> dt.timedelta:
    return min(QUOTA_BACKOFF_CAP, QUOTA_BACKOFF_BASE * 2 ** min(level, 20))


def window_of(config: dict[str, Any]) -> SendWindow | None:
    spec = config.get("sendWindow")
    if not spec:
        return None
    return SendWindow.parse(spec["start"], spec["end"], spec.get("days") or range(1, 8), spec["fallbackTimeZone"])


@dataclasses.dataclass
class Gate:
    db: Any
    run_id: str
    window: SendWindow | None
    sender_id: str | None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    deferred_from: int | None = None
    deferred_zones: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    wait: tuple[str, dt.datetime] | None = None
    missing_sender: bool = False
    reserved: str | None = None
    pause_level: int = 0

    @classmethod
    def for_job(cls, db: Any, run_id: str, job: dict[str, Any]) -> "Gate":
        config = job.get("config") or {}
        return cls(db, run_id, window_of(config), config.get("senderId"))

    def bind(self, draft: bool, sleep: Callable[[float], None], monotonic: Callable[[], float]) -> None:
        """A draft reaches nobody: it neither waits for a window nor spends the mailbox's quota."""
        if draft:
            self.window, self.sender_id = None, None
        self.sleep, self.monotonic = sleep, monotonic

    def admit(self, lead: dict[str, Any], deadline: float) -> str:
        while True:
            now = clock.now()
            if self.window is not None:
                zone = zone_of(self.window, lead.get("timeZone"))
                # Once a zone is deferred it stays deferred for the scan, even if its
                # window opens meanwhile: a later lead must not overtake an earlier one.
                opens = self.deferred_zones.get(zone.key) or next_open(self.window, zone, now)
                if zone.key in self.deferred_zones or opens > now:
                    self.deferred_zones.setdefault(zone.key, opens)
                    if self.deferred_from is None:
                        self.deferred_from = lead["index"]
                    return DEFER
            if self.sender_id is None:
                return GO
            key = f"{self.run_id}/{lead['id']}"
            granted = senders_repo.reserve(self.db, self.sender_id, key, now)
            if granted.granted:
                self.reserved = key
                self.pause_level = granted.pause_level
                return GO
            if granted.reason == "sender_missing":
                self.missing_sender = True
                return STOP
            wait = (granted.wake_at - now).total_seconds()
            if granted.reason == "pacing" and wait <= deadline - self.monotonic() - SEND_MARGIN_SECONDS:
                self.sleep(wait)
                continue  # the window may have closed meanwhile: ask again from the top
            self.wait = (granted.reason, granted.wake_at)
            return STOP

    def settle(self, result: Any, went_on: bool) -> None:
        """After the pipeline (`went_on`: the lead got an outcome): give back the
        reservation of a send that never happened, and pause the sender on a quota refusal."""
        outcome = result.outcomes[-1] if went_on else None
        error = result.quota
        key, self.reserved = self.reserved, None
        now = clock.now()
        if isinstance(error, ProviderQuotaError):
            until = self._quota_pause(error, now)
            self.wait = (PROVIDER_QUOTA, until)
        sent = outcome is not None and outcome.status in ("sent", "drafted")
        if key is None or self.sender_id is None:
            return
        if sent:
            if self.pause_level:
                senders_repo.clear_backoff(self.db, self.sender_id, now)
            return
        if outcome is not None:
            code = outcome.code
        elif error is not None:
            code = error.code
        else:  # stopped without an outcome: the worker noted why last
            code = result.diagnostics[-1]["code"] if result.diagnostics else None
        if code not in KEEP_RESERVATION_CODES:
            senders_repo.release(self.db, self.sender_id, key, now)

    def _quota_pause(self, error: ProviderQuotaError, now: dt.datetime) -> dt.datetime:
        if error.daily:
            until: dt.datetime | None = now + DAILY_QUOTA_PAUSE
        elif error.retry_after_seconds is not None:
            until = now + dt.timedelta(seconds=error.retry_after_seconds)
        else:
            until = None
        if self.sender_id is None:
            return until or now + quota_backoff(0)
        paused = senders_repo.pause(self.db, self.sender_id, until, error.message, now, quota_backoff)
        return paused or until or now + quota_backoff(0)

    def conclude(self, result: Any, total: int) -> None:
        """Bends the batch's result: back to the first deferred lead, and waiting when nothing can go."""
        if self.missing_sender:
            result.job_failed = f"sender {self.sender_id} no longer exists"
            result.note("sender_missing", result.job_failed + "; PUT it again, then resume")
            result.finished = False
            return
        reached_end = max(result.next_index, result.scanned) >= total
        if self.deferred_from is not None:
            result.next_index = min(result.next_index, self.deferred_from)
            result.finished = False
            if reached_end and self.wait is None and result.stop_reason in ("end", "batch_size"):
                self.wait = (WINDOW_CLOSED, min(self.deferred_zones.values()))
        if self.wait is not None and not result.job_failed:
            result.finished = False
            result.wait = self.wait
            result.stop_reason = self.wait[0]
