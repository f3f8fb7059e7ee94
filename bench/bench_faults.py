"""Fault trials: Firestore outages and SIGKILLed workers during background runs, healed unattended.

    python bench/bench_faults.py                 # 10 SIGKILL trials + 3 outage trials (docs/reliability.md)
    python bench/bench_faults.py --smoke         # 1 of each, small: for CI
    python bench/bench_faults.py --kills 20 --outages 5 --leads 600 --seed 7
    python bench/bench_faults.py --operator      # no sweeper; the operator procedure of docs/jobs.md instead

The functions run as real processes behind the local Hosting router and reach the
Firestore emulator through tools/faultproxy.FaultProxy, so an outage is real from
their point of view (connections refused and reset) while the emulator keeps the run's
data for checking afterwards. This process checks the outcome with its own Firestore
client, straight to the emulator.

- **outage trial**: a background run; at a random point the proxy goes down for a
  few seconds while three probes keep calling GET templates, receipts and jobs (each
  must answer 503 + Retry-After with a JSON error, fast); the proxy comes back.
- **kill trial**: a background run; at a random point (a random number of leads sent,
  plus a random delay) the worker function's whole process group gets SIGKILL; the
  worker is started again on the same port, as Cloud Run starts a new instance.

Then nobody acts: the stack's own sweeper timer (tools/localstack.Sweeper, what `make dev`
runs in Cloud Scheduler's place, here every SWEEP_SECONDS) restarts the job once its lease
has lapsed, and this process only watches GET …/jobs until the job is `completed`. A job
that ends any other way (or not in time) needed an operator: the trial fails. Each trial
says how long after the fault (the kill, the outage's end) the first lead was sent and the
job completed, and how often the sweeper restarted it (its `sweeper_restarted` diagnostics,
written in the same commit as each restart, so none is missed by a sweep still answering). `--operator` turns the timer off and follows the operator procedure of
docs/jobs.md instead (`resume` a stalled or paused job, `retry` one that finished with errors).

After each run: one `mail` document per lead (duplicates: extra documents of a lead;
lost: leads with none), every lead `sent`, the job's counts equal to the leads' statuses,
no `resume` or `retry` on the job unless --operator, no 5xx other than 503 on any call this
process made, and no unhandled error (the request pipeline's "Unhandled error" log line,
which a 500 writes) in any function's log.
Exits 1 if any trial breaks one of these.

If FIRESTORE_EMULATOR_HOST is unset the benchmark starts an emulator of its own.
The e2e test tests/e2e/test_faults.py runs these same trials, fewer and smaller.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import random
import signal
import statistics
import sys
import threading
import time
from typing import Any, Callable, Iterator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from tools import localstack  # noqa: E402
from tools.faultproxy import FaultProxy  # noqa: E402

PROJECT = "demo-mission-control-faults"
LOG_DIR = localstack.ROOT / "build" / "bench-logs" / "faults"
FUNCTIONS = ["jobs", "receipts", "schedule", "telemetry", "templates", "worker"]
# Short deadlines and leases, so an outage answers in ~2 s and a dead chain looks stalled
# ~4 s after its last checkpoint (lease + a quarter-lease grace, at least 1 s).
FAULT_ENV = {
    "FIRESTORE_DEADLINE_SECONDS": "2",
    "WORKER_TIME_BUDGET_SECONDS": "2",
    "WORKER_LEASE_SECONDS": "3",
}
# Cloud Scheduler's minute, shortened as the lease is: a dead chain is restarted within a
# second of being stalled. (A batch ends within its 2 s budget, so the 3 s lease stays
# longer than a batch and a live chain is never taken for dead.)
SWEEP_SECONDS = 1.0
OPERATOR_CODES = ("resume", "retry")  # the job's diagnostics for an operator's action
SUBJECT = "Hi {{firstName}}"
BODY = "Hello {{firstName}} at {{company}}"
UNHANDLED = "Unhandled error in request"
ACTIVE = ("queued", "running")
GOING = (*ACTIVE, "waiting")  # a waiting job is woken by the sweeper: still nobody's business


# --- the stack with a fault injector ---------------------------------------------------------


@dataclasses.dataclass
class FaultStack:
    """A local stack whose functions reach the emulator through `proxy`."""

    emulator: localstack.Emulator  # the real one (this process checks the data through it)
    proxy: FaultProxy
    stack: localstack.Stack
    env: dict[str, str]
    log_dir: pathlib.Path | None

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def unattended(self) -> bool:
        return self.stack.sweeper is not None

    def kill_worker(self) -> None:
        """SIGKILL to the worker function's whole process group (gunicorn arbiter and workers)."""
        victim = self.stack.functions["worker"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()

    def restart_worker(self) -> None:
        """A new worker process on the same port, so the router (and WORKER_URL) reach it again."""
        old = self.stack.functions["worker"]
        env = localstack.function_env(self.stack.emulator, self.url, self.env)
        revived = localstack.start_function("worker", old.port, env, self.log_dir)
        self.stack.functions["worker"] = revived
        localstack.wait_for_http(revived.url + "/", 60, revived.process)

    def ensure_ready(self, timeout: float = 60) -> float:
        """Proxy up, a live worker, and every function reaching Firestore again: what every
        trial starts from. After an outage gRPC reconnects with backoff, so a function may
        go on answering 503 for a few seconds after `up()`. Returns the seconds it waited."""
        began = time.monotonic()
        self.proxy.up()
        if self.stack.functions["worker"].process.poll() is not None:
            self.restart_worker()
        wait_for(self.reaches_firestore, timeout, "every function to reach Firestore", interval=0.1)
        return time.monotonic() - began

    def reaches_firestore(self) -> bool:
        """One call per function that reads Firestore: anything but a 503 means it got through."""
        calls = [  # (method, path, headers): the unknown run and the bad token still cost a read
            ("GET", "/api/templates?pageSize=1", {}),
            ("GET", "/api/lead-runs?limit=1", {}),
            ("GET", "/api/lead-runs/fault-probe/jobs", {}),
            ("POST", "/api/lead-runs/fault-probe/jobs/worker", {"X-Worker-Token": "probe"}),
        ]
        for method, path, headers in calls:
            try:
                response = requests.request(method, self.url + path, headers=headers, timeout=10)
            except requests.RequestException:
                return False
            if response.status_code >= 500:
                return False
        return True

    def log_marks(self) -> dict[str, int]:
        """Where each function's log ends now; `unhandled_since` reads from there."""
        if self.log_dir is None:
            return {}
        return {name: _size(self.log_dir / f"{name}.log") for name in self.stack.functions}

    def unhandled_since(self, marks: dict[str, int]) -> list[str]:
        """'Unhandled error' log lines (what a 500 writes) since `marks`, as 'function: exception'."""
        found = []
        for name, offset in marks.items():
            path = self.log_dir / f"{name}.log"  # type: ignore[operator]
            if not path.exists():
                continue
            with open(path, "rb") as handle:
                handle.seek(min(offset, _size(path)))
                text = handle.read().decode(errors="replace")
            for line in text.splitlines():
                if UNHANDLED in line:
                    try:
                        message = json.loads(line).get("message", line)
                    except ValueError:
                        message = line
                    lines = [part for part in message.splitlines() if part.strip()]
                    found.append(f"{name}: {lines[-1].strip()[:200]}")  # the exception itself
        return found


def _size(path: pathlib.Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextlib.contextmanager
def fault_stack(
    emulator: localstack.Emulator, log_dir: pathlib.Path | None = LOG_DIR, env: dict[str, str] | None = None,
    names: list[str] | None = None, sweep_seconds: float = SWEEP_SECONDS,
) -> Iterator[FaultStack]:
    """The stack behind a FaultProxy, with its sweeper timer every `sweep_seconds` (0: none,
    the operator procedure's stack)."""
    merged = {**FAULT_ENV, **(env or {})}
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for old in log_dir.glob("*.log"):
            old.unlink()
    with FaultProxy(emulator.host) as proxy:
        behind_proxy = localstack.Emulator(host=proxy.address, project=emulator.project)
        with localstack.running_stack(
            emulator=behind_proxy, port=localstack.free_port(), env=merged, log_dir=log_dir,
            names=names or FUNCTIONS, sweep_interval=sweep_seconds,
        ) as stack:
            ready = FaultStack(emulator, proxy, stack, merged, log_dir)
            ready.ensure_ready()  # a cold emulator may miss the 2 s deadline on its first calls
            yield ready


# --- HTTP, recorded ----------------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    path: str
    status: int  # 0: no answer at all (connection error or client timeout)
    seconds: float
    retry_after: str | None
    json_error: bool  # the shared envelope {"error": {"code", "message", "details"}}
    stack_trace: bool  # the body shows a Python stack
    started: float  # time.monotonic() when it was sent
    detail: str = ""  # the error's code and message, for answers ≥ 400

    def __str__(self) -> str:
        return f"{self.path} {self.status or 'no answer'} {self.detail}".strip()


class Http:
    """requests, recording every answer, so a trial can say which 5xx it ever saw."""

    def __init__(self, base: str):
        self.base = base
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, method: str, path: str, timeout: float = 30, **kwargs: Any) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = self._session().request(method, self.base + path, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            self._record(Answer(path, 0, time.monotonic() - started, None, False, False, started, type(exc).__name__))
            return None
        body = response.text
        try:
            parsed = response.json()
            json_error = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) and {
                "code", "message", "details"} <= set(parsed["error"])
        except ValueError:
            json_error = False
        stack_trace = "Traceback" in body or 'File "' in body
        detail = ""
        if response.status_code >= 400:
            detail = (f"{parsed['error']['code']}: {parsed['error']['message']}" if json_error else body)[:160]
        self._record(Answer(path, response.status_code, time.monotonic() - started,
                            response.headers.get("Retry-After"), json_error, stack_trace, started, detail))
        return response

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def get(self, path: str, **kwargs: Any) -> requests.Response | None:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> requests.Response | None:
        return self.call("POST", path, json=body, **kwargs)

    def other_5xx(self) -> list[Answer]:
        return [a for a in self.answers if a.status >= 500 and a.status != 503]

    def bad_503s(self) -> list[Answer]:
        """503s that break the contract: no Retry-After, not the JSON envelope, or a stack."""
        return [a for a in self.answers if a.status == 503 and (not a.retry_after or not a.json_error or a.stack_trace)]


# --- runs ---------------------------------------------------------------------------------------


def make_leads(count: int) -> list[dict[str, Any]]:
    return [{"email": f"lead{i}@example.com", "firstName": f"Lead{i}", "company": "Acme"} for i in range(count)]


def create_template(http: Http) -> str:
    response = http.post("/api/templates", {"name": "Faults", "subject": SUBJECT, "body": BODY, "draftFirst": False})
    assert response is not None and response.status_code == 201, response.text if response is not None else "no answer"
    return response.json()["id"]


def start_run(http: Http, run_id: str, template_id: str, leads: int, batch_size: int,
              accept: tuple[int, ...] = (202,)) -> int:
    """Sends the start; returns its status (0: no answer), asserting it is one of `accept`."""
    body = {"action": "start", "mode": "background", "leads": make_leads(leads),
            "config": {"templateId": template_id, "batchSize": batch_size}}
    response = http.post(f"/api/lead-runs/{run_id}/jobs", body, timeout=60)
    status = response.status_code if response is not None else 0
    assert status in accept, f"start answered {status}: {response.text if response is not None else 'no answer'}"
    return status


def mail_count(db: Any, run_id: str) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = db.collection("mail").where(filter=FieldFilter("runId", "==", run_id))
    return int(query.count().get()[0][0].value)


def stored_job(db: Any, run_id: str) -> dict[str, Any]:
    from shared.store import runs as repo

    return repo.get_job(db, run_id) or {}


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def watch_to_the_end(http: Http, run_id: str, timeout: float) -> tuple[dict[str, Any] | None, list[str]]:
    """Only GET …/jobs, every 250 ms, until the job is no longer going (or `timeout`).
    Returns (the last job seen, no actions): the same shape as `drive_to_completion`."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        response = http.get(f"/api/lead-runs/{run_id}/jobs", timeout=15)
        if response is not None and response.status_code == 200:
            job = response.json()["job"]
            if job["status"] not in GOING:
                break
        time.sleep(0.25)
    return job, []


def drive_to_completion(http: Http, run_id: str, timeout: float) -> tuple[dict[str, Any] | None, list[str]]:
    """The operator procedure of docs/jobs.md, until the job is `completed`:
    `resume` a stalled or paused job, `retry` one that finished with errors or failed.
    Returns (the last job seen, the actions taken)."""
    deadline = time.monotonic() + timeout
    actions: list[str] = []
    job = None
    while time.monotonic() < deadline:
        response = http.get(f"/api/lead-runs/{run_id}/jobs", timeout=15)
        if response is not None and response.status_code == 200:
            job = response.json()["job"]
            status = job["status"]
            action = None
            if status == "completed":
                return job, actions
            if status in ("completed_with_errors", "failed"):
                action = "retry"
            elif status == "paused" or (status in ACTIVE and job["stalled"]):
                action = "resume"
            elif status == "cancelled":
                break
            if action:
                answer = http.post(f"/api/lead-runs/{run_id}/jobs", {"action": action}, timeout=30)
                code = answer.status_code if answer is not None else 0
                actions.append(f"{action}:{code}")
                if code == 200:
                    continue
        time.sleep(0.25)
    return job, actions


@dataclasses.dataclass
class Check:
    leads: int
    duplicates: int  # extra mail documents for a lead (beyond its first)
    lost: int  # leads without a mail document
    not_sent: int  # leads whose status is not `sent`
    counts_ok: bool  # the job's counts equal the leads' statuses
    reconciled: bool  # the worker had to fix its counts (a `counts_reconciled` diagnostic)
    operator_codes: list[str]  # `resume`/`retry` diagnostics: what an operator did to the job
    restarts: int  # `sweeper_restarted` diagnostics: one a sweep that listed the run as `resumed`
    mail_times: list[float]  # each mail document's createdAt (epoch seconds, the worker's clock), sorted
    finished_at: float | None  # the job's finishedAt (epoch seconds)


def check_run(db: Any, run_id: str, total: int) -> Check:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.store import runs as repo

    mails = [snapshot.to_dict() for snapshot in db.collection("mail").where(filter=FieldFilter("runId", "==", run_id)).stream()]
    per_lead = collections.Counter(mail.get("leadDocId") for mail in mails)
    expected = [repo.lead_doc_id(i) for i in range(total)]
    statuses = collections.Counter(s.to_dict().get("status") for s in repo.leads(db, run_id).stream())
    job = stored_job(db, run_id)
    counts = {k: int(v) for k, v in (job.get("counts") or {}).items() if v}
    return Check(
        leads=total,
        duplicates=sum(n - 1 for n in per_lead.values() if n > 1) + sum(n for lead, n in per_lead.items() if lead not in expected),
        lost=sum(1 for lead in expected if per_lead[lead] == 0),
        not_sent=total - statuses.get("sent", 0),
        counts_ok=counts == {k: v for k, v in statuses.items() if v},
        reconciled=any(d.get("code") == "counts_reconciled" for d in job.get("diagnostics") or []),
        operator_codes=[d["code"] for d in job.get("diagnostics") or [] if d.get("code") in OPERATOR_CODES],
        restarts=sum(1 for d in job.get("diagnostics") or [] if d.get("code") == "sweeper_restarted"),
        mail_times=sorted(mail["createdAt"].timestamp() for mail in mails if mail.get("createdAt")),
        finished_at=job["finishedAt"].timestamp() if job.get("finishedAt") else None,
    )


# --- trials -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Trial:
    kind: str
    number: int
    run_id: str
    unattended: bool = True  # the sweeper heals it, nobody presses resume or retry
    check: Check | None = None
    status: str = "?"
    seconds: float = 0.0  # start POST → observed `completed`
    fault_at: int = 0  # mail documents when the fault hit
    fault_ended: float | None = None  # epoch seconds: the worker dead (kill) or the proxy up (outage)
    start_status: int = 0  # the start's own answer (a 503 when the outage came before it answered)
    actions: list[str] = dataclasses.field(default_factory=list)  # what this process POSTed to finish the run
    outage_seconds: float = 0.0
    probes: int = 0  # probe answers received while the proxy was down
    probe_503s: int = 0
    probe_max_seconds: float = 0.0  # slowest probe answer while down
    recovery_seconds: float = 0.0  # up() → every probe answers 200 again
    other_5xx: list[str] = dataclasses.field(default_factory=list)
    bad_503s: list[str] = dataclasses.field(default_factory=list)
    no_answer: list[str] = dataclasses.field(default_factory=list)  # connection errors, client timeouts
    unavailable: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # 503s, by what they said
    unhandled: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None

    @property
    def operator_actions(self) -> int:
        return len(self.actions)

    @property
    def unattended_ok(self) -> bool:
        """Finished with nobody's help: nothing posted here, no resume/retry on the job."""
        return not self.unattended or (not self.actions and self.check is not None and not self.check.operator_codes)

    @property
    def moved_after(self) -> float | None:
        """Seconds from the fault's end to the first lead sent after it (the chain moving again)."""
        if self.fault_ended is None or self.check is None:
            return None
        after = [t for t in self.check.mail_times if t > self.fault_ended]
        return after[0] - self.fault_ended if after else None

    @property
    def completed_after(self) -> float | None:
        """Seconds from the fault's end to the job's finishedAt."""
        if self.fault_ended is None or self.check is None or self.check.finished_at is None:
            return None
        return self.check.finished_at - self.fault_ended

    @property
    def finished_first(self) -> bool:
        """The job completed before the fault (the bench's wait for its target lagged the run):
        nothing was left to heal, so the trial says nothing about healing."""
        return self.completed_after is not None and self.completed_after <= 0

    @property
    def ok(self) -> bool:
        c = self.check
        return (
            self.error is None and c is not None and self.status == "completed" and c.duplicates == 0
            and c.lost == 0 and c.not_sent == 0 and c.counts_ok and not c.reconciled and self.unattended_ok
            and not self.other_5xx and not self.bad_503s and not self.no_answer and not self.unhandled
        )

    def line(self) -> str:
        c = self.check
        parts = [f"{self.kind} #{self.number}", f"leads {c.leads if c else '?'}",
                 f"duplicates {c.duplicates if c else '?'}", f"lost {c.lost if c else '?'}",
                 f"operator actions {self.operator_actions}", f"sweeper restarts {c.restarts if c else '?'}",
                 f"fault at {self.fault_at} sent", f"moved again {_seconds(self.moved_after)} after the fault",
                 "completed " + ("before the fault" if self.finished_first else f"{_seconds(self.completed_after)} after it"),
                 f"start to end {self.seconds:.1f}s ({self.status})"]
        if self.kind == "outage":
            parts += [f"outage {self.outage_seconds:.1f}s", f"503s {self.probe_503s}/{self.probes}",
                      f"slowest 503 {self.probe_max_seconds:.1f}s", f"recovered {self.recovery_seconds:.1f}s after up"]
        if self.kind == "kill" and c and self.fault_at >= c.leads:
            parts.append("(the run had finished before the kill)" if self.finished_first
                         else "(every lead was sent before the kill, but the job was not yet completed)")
        if self.start_status == 503:
            parts.append("the start answered 503 (the outage came first)")
        if self.actions:
            parts.append("actions " + _compact(self.actions))
        if self.unattended and self.status != "completed":
            parts.append(f"NOT HEALED: {self.status} when the watch ended (it needed an operator)")
        if self.unattended and c and c.operator_codes:  # somebody else resumed or retried it
            parts.append(f"OPERATOR ON THE JOB {c.operator_codes}")
        if self.kind == "kill" and self.unavailable:
            parts.append("503s " + "; ".join(f"{n}× {what}" for what, n in self.unavailable.most_common(2)))
        if c and (c.not_sent or not c.counts_ok or c.reconciled):
            parts.append(f"not sent {c.not_sent}, counts ok {c.counts_ok}, reconciled {c.reconciled}")
        if self.other_5xx:
            parts.append(f"OTHER 5xx {self.other_5xx[:3]}")
        if self.bad_503s:
            parts.append(f"BAD 503 {self.bad_503s[:3]}")
        if self.no_answer:
            parts.append(f"NO ANSWER {self.no_answer[:3]}")
        if self.unhandled:
            parts.append(f"UNHANDLED {self.unhandled[:2]}")
        if self.error:
            parts.append(f"ERROR {self.error}")
        return " | ".join(parts) + (" | ok" if self.ok else " | FAILED")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _compact(items: list[str]) -> str:
    """resume:503,resume:503,resume:200 → resume:503×2,resume:200"""
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return ",".join(item if n == 1 else f"{item}×{n}" for item, n in out)


PROBES = ("/api/templates", "/api/lead-runs/{run}/receipts?pageSize=20", "/api/lead-runs/{run}/jobs")


def probe(http: Http, run_id: str, stop: threading.Event) -> list[threading.Thread]:
    """One thread per probe path, each calling its path back to back until `stop`."""
    def loop(path: str) -> None:
        while not stop.is_set():
            http.get(path.format(run=run_id), timeout=20)
            time.sleep(0.05)

    threads = [threading.Thread(target=loop, args=(p,), daemon=True) for p in PROBES]
    for thread in threads:
        thread.start()
    return threads


def all_probes_ok(http: Http, run_id: str) -> bool:
    return all((r := http.get(p.format(run=run_id), timeout=20)) is not None and r.status_code == 200 for p in PROBES)


def outage_trial(
    fs: FaultStack, db: Any, number: int, rng: random.Random, leads: int = 400, batch_size: int = 50,
    outage: tuple[float, float] = (3.0, 6.0), timeout: float = 90,
) -> Trial:
    """A run; the proxy down for a few seconds mid-run while probes call the API; up; then
    watched to its end (unattended), or the operator procedure until it completes."""
    trial = Trial("outage", number, f"fault-outage-{number}-{rng.randrange(10**6)}", unattended=fs.unattended)
    fs.ensure_ready()
    http, marks = Http(fs.url), fs.log_marks()
    began = time.monotonic()
    try:
        template_id = create_template(http)
        # The start answers only after its hand-off to the first worker (up to 2 s), so it is
        # sent from another thread: the outage may come before it answers. Then its answer
        # may be a 503 although the job was written (leads were being sent). Unattended, that
        # job is left to the sweeper; the operator sends the same start again (idempotent: 200).
        answers: list[int] = []
        starting = _in_thread(lambda: answers.append(
            start_run(http, trial.run_id, template_id, leads, batch_size, accept=(202, 503))))
        target = rng.randint(leads // 8, leads * 3 // 5)
        wait_for(lambda: mail_count(db, trial.run_id) >= target, 60, f"{target} leads sent", interval=0.005)

        length = rng.uniform(*outage)
        fs.proxy.down()
        went_down = time.monotonic()
        trial.fault_at = mail_count(db, trial.run_id)
        stop = threading.Event()
        threads = probe(http, trial.run_id, stop)
        time.sleep(length)
        fs.proxy.up()
        came_up = time.monotonic()
        trial.fault_ended = time.time()
        stop.set()
        for thread in threads:
            thread.join()
        trial.outage_seconds = came_up - went_down
        during = [a for a in http.answers if went_down <= a.started and a.started + a.seconds <= came_up]
        trial.probes = len(during)
        trial.probe_503s = sum(1 for a in during if a.status == 503)
        trial.probe_max_seconds = max((a.seconds for a in during), default=0.0)

        wait_for(lambda: all_probes_ok(http, trial.run_id), 60, "the API to answer again", interval=0.1)
        trial.recovery_seconds = time.monotonic() - came_up
        starting()
        trial.start_status = answers[0] if answers else 0
        if answers != [202] and not trial.unattended:
            trial.actions.append("start:503")
            start_run(http, trial.run_id, template_id, leads, batch_size, accept=(200, 202))
        job, actions = (watch_to_the_end if trial.unattended else drive_to_completion)(http, trial.run_id, timeout)
        trial.actions += actions
        trial.status = (job or {}).get("status", "?")
    except Exception as exc:  # reported on the trial's line; the other trials go on
        trial.error = f"{type(exc).__name__}: {exc}"
        fs.proxy.up()
    trial.seconds = time.monotonic() - began
    return _finish(trial, fs, db, http, marks, leads)


def kill_trial(
    fs: FaultStack, db: Any, number: int, rng: random.Random, leads: int = 400, batch_size: int = 50,
    timeout: float = 90,
) -> Trial:
    """A run; the worker SIGKILLed at a random point; a new worker on the same port; then
    watched to its end (unattended), or the operator procedure until it completes."""
    trial = Trial("kill", number, f"fault-kill-{number}-{rng.randrange(10**6)}", unattended=fs.unattended)
    fs.ensure_ready()
    http, marks = Http(fs.url), fs.log_marks()
    began = time.monotonic()
    try:
        template_id = create_template(http)
        # The start answers only after its hand-off to the first worker (up to 2 s), so it is
        # sent from another thread: the kill may come before it answers, too.
        starting = _in_thread(lambda: start_run(http, trial.run_id, template_id, leads, batch_size))
        target = rng.randint(1, leads * 3 // 4)
        wait_for(lambda: mail_count(db, trial.run_id) >= target, 60, f"{target} leads sent", interval=0.005)
        time.sleep(rng.uniform(0, 0.1))  # so it also lands between leads: checkpoints, hand-offs
        fs.kill_worker()
        trial.fault_ended = time.time()  # a mail document created after this is the new chain's
        trial.fault_at = mail_count(db, trial.run_id)
        fs.restart_worker()
        starting()
        job, trial.actions = (watch_to_the_end if trial.unattended else drive_to_completion)(http, trial.run_id, timeout)
        trial.status = (job or {}).get("status", "?")
    except Exception as exc:
        trial.error = f"{type(exc).__name__}: {exc}"
    trial.seconds = time.monotonic() - began
    return _finish(trial, fs, db, http, marks, leads)


def _in_thread(call: Callable[[], None]) -> Callable[[], None]:
    """Runs `call` in a thread; the function returned joins it and re-raises its exception."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(120)
        if failure:
            raise failure[0]

    return join


def _finish(trial: Trial, fs: FaultStack, db: Any, http: Http, marks: dict[str, int], leads: int) -> Trial:
    try:
        trial.check = check_run(db, trial.run_id, leads)
    except Exception as exc:
        trial.error = (trial.error or "") + f" check failed: {type(exc).__name__}: {exc}"
    trial.other_5xx = [str(a) for a in http.other_5xx()]
    trial.unavailable = collections.Counter(str(a) for a in http.answers if a.status in (0, 503))
    trial.no_answer = [f"{a.path} after {a.seconds:.1f}s" for a in http.answers if a.status == 0]
    trial.bad_503s = [f"{a.path} retry-after={a.retry_after} json={a.json_error} stack={a.stack_trace}"
                      for a in http.bad_503s()]
    trial.unhandled = fs.unhandled_since(marks)
    return trial


# --- the command ----------------------------------------------------------------------------------


def summary(trials: list[Trial]) -> str:
    kills = [t for t in trials if t.kind == "kill"]
    outages = [t for t in trials if t.kind == "outage"]
    checks = [t.check for t in trials if t.check]
    failed = [t for t in trials if not t.ok]
    times = [t.seconds for t in trials if t.ok]
    text = (
        f"summary: {len(kills)} kill + {len(outages)} outage trials, "
        f"{sum(c.leads for c in checks)} leads, duplicates {sum(c.duplicates for c in checks)}, "
        f"lost {sum(c.lost for c in checks)}, operator actions {sum(t.operator_actions for t in trials)}, "
        f"sweeper restarts {sum(c.restarts for c in checks)}, 503s during outages {sum(t.probe_503s for t in outages)}/"
        f"{sum(t.probes for t in outages)} probes, other 5xx {sum(len(t.other_5xx) for t in trials)}, "
        f"unhandled errors {sum(len(t.unhandled) for t in trials)}"
    )
    cut_off = [t for t in trials if not t.finished_first]
    for what, values in (("moved again", [t.moved_after for t in cut_off]),
                         ("completed", [t.completed_after for t in cut_off])):
        known = [v for v in values if v is not None]
        if known:
            text += f", {what} after the fault median {statistics.median(known):.1f}s (max {max(known):.1f}s)"
    if len(cut_off) < len(trials):
        text += f", {len(trials) - len(cut_off)} fault(s) after the job had completed (nothing to heal)"
    if times:
        text += f", start to end median {statistics.median(times):.1f}s (max {max(times):.1f}s)"
    if outages:
        text += f", recovery after up max {max(t.recovery_seconds for t in outages):.1f}s"
    return text + f"; {len(failed)} failed trial(s)" + ("" if failed else " — ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 kill + 1 outage trial on small runs (CI)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--outages", type=int, default=3)
    parser.add_argument("--leads", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--outage-seconds", default="3,6", help="MIN,MAX: each outage lasts a random time in this range")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: from the clock)")
    parser.add_argument("--operator", action="store_true",
                        help="no sweeper timer: this process resumes and retries the job itself (docs/jobs.md)")
    args = parser.parse_args()
    kills, outages, leads = (1, 1, 200) if args.smoke else (args.kills, args.outages, args.leads)
    low, _, high = args.outage_seconds.partition(",")
    outage = (float(low), float(high or low))
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the local router's access log
    target = localstack.emulator_from_env_or_start(PROJECT, LOG_DIR / "firestore.log")
    sweep_seconds = 0 if args.operator else SWEEP_SECONDS
    healing = "the operator procedure, no sweeper" if args.operator else f"unattended, sweep every {sweep_seconds:g}s"
    print(f"fault trials: {kills} kill + {outages} outage, {leads} leads each, batchSize {args.batch_size}, "
          f"outages of {outage[0]:g}-{outage[1]:g}s, {healing}, seed {seed}, emulator {target.host}, "
          f"settings {FAULT_ENV}", flush=True)
    trials: list[Trial] = []
    try:
        from google.cloud import firestore

        db = firestore.Client(project=target.project)  # straight to the emulator, never through the proxy
        with fault_stack(target, sweep_seconds=sweep_seconds) as fs:
            plan = ["kill"] * kills + ["outage"] * outages
            for number, kind in enumerate(plan, 1):
                if kind == "kill":
                    trial = kill_trial(fs, db, number, rng, leads, args.batch_size)
                else:
                    trial = outage_trial(fs, db, number, rng, leads, args.batch_size, outage=outage,
                                         timeout=max(90, 4 * outage[1]))
                trials.append(trial)
                print(trial.line(), flush=True)
    finally:
        target.stop()
    print(summary(trials))
    return 0 if trials and all(t.ok for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
