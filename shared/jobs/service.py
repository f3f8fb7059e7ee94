"""Jobs use-cases behind /api/lead-runs/{runId}/jobs: start (background or foreground),
pause, resume, retry, cancel, and the status view.

Rules (docs/jobs.md has the whole story):
- start validates everything before writing anything. A new run is written in one
  consistent step as far as readers can tell: the job document is claimed first
  (so two different starts cannot both write leads), then the leads in commits of
  500, then the run document, which is what makes the run visible.
- the same start sent again is answered from what exists (200), never run twice; a
  different start while the run has a live job is 409.
- every transition is a compare-and-set commit on the job document
  (shared/store/job_writes.py), checked by shared/jobs/state.py; illegal ones are a
  Conflict naming the current status.
- resume and retry give the job a fresh worker token and lease, so a stray worker of
  the old chain is refused or stops at its next lead. Only the token's SHA-256 is stored.
- the service answers domain values (`Answer`) and raises domain errors; functions/jobs
  picks the status codes.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import auth, clock, ids
from shared.deliverability.gate import deliverability_config
from shared.errors import Conflict, NotFound, TooLarge, field_error
from shared.jobs import state, views
from shared.jobs.checkpoint import add_counts, checkpoint, diagnostic, kept_diagnostics, note_dispatch_failure
from shared.jobs.dispatch import Dispatcher, default_dispatcher
from shared.jobs.lease import LEGACY_RAW_TOKEN, new_owner, restart_fields
from shared.jobs.bodies import ControlRequest, LeadIn, StartRequest
from shared.jobs.models import Job, JobEnvelope, LeadResult, StartResponse
from shared.settings import Settings, get_settings
from shared.store import job_writes
from shared.store import runs as repo
from shared.store import templates as templates_repo
from shared.store.client import commit_args

if TYPE_CHECKING:
    from shared.outreach.providers import Provider

# Hosting ends a rewritten request at 60 s: a foreground run answers within this,
# its bookkeeping (checkpoint, results) included.
FOREGROUND_MAX_SECONDS = 50.0
# Of the foreground budget, what the leads leave for the checkpoint and the results
# (a few round trips each; measured well under 1 s on 50 leads at 5 ms each way).
FOREGROUND_BOOKKEEPING_SECONDS = 5.0
# A start that claimed a run but never finished writing it may be replaced after this.
ABANDONED_CLAIM = dt.timedelta(minutes=10)


@dataclasses.dataclass
class Answer:
    """What a POST to the jobs API did: `accepted` is a new background start (queued)."""

    response: StartResponse
    accepted: bool = False


def post(
    db: Any,
    run_id: str,
    request: StartRequest | ControlRequest,
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    provider: Provider | None = None,
) -> Answer:
    settings = settings or get_settings()
    ids.check_id(run_id, "runId")
    dispatcher = dispatcher or default_dispatcher(settings)
    if isinstance(request, StartRequest):
        return start(db, run_id, request, settings, dispatcher, provider)
    return control(db, run_id, request.action, settings, dispatcher)


def status(db: Any, run_id: str, settings: Settings | None = None) -> JobEnvelope:
    ids.check_id(run_id, "runId")
    run, job = repo.get_run_and_job(db, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return JobEnvelope(job=to_view(run_id, job, settings or get_settings()) if job else None)


# --- start ------------------------------------------------------------------------------


def start(
    db: Any, run_id: str, request: StartRequest, settings: Settings, dispatcher: Dispatcher, provider: Provider | None
) -> Answer:
    began = time.monotonic()
    config = request.config
    template = templates_repo.get(db, config.template_id)
    if template is None:
        raise field_error("config.templateId", f"no template with id {config.template_id}")
    job_config = {
        "templateId": config.template_id,
        "batchSize": config.batch_size,
        "maxAttempts": config.max_attempts,
        "draftFirst": config.draft_first,
        "timeBudgetSeconds": config.time_budget_seconds,
        **deliverability_config(db, config),
        "skipIfContactedWithinDays": config.skip_if_contacted_within_days,
    }
    lead_docs = lead_documents(request.leads) if request.leads else None
    leads_fp = fingerprint([lead.document_fields() for lead in request.leads]) if request.leads else None
    start_fp = fingerprint({"mode": request.mode, "config": job_config, "leads": leads_fp, "name": request.name})

    run, job = repo.get_run_and_job(db, run_id)
    if run is None and lead_docs is None:
        raise NotFound(f"run {run_id} does not exist; send `leads` to create it")
    _check_same_leads(run, leads_fp)
    total = len(lead_docs) if lead_docs is not None else int(run.get("totalLeads") or 0)
    if request.mode == "foreground" and total > settings.foreground_max_leads:
        raise TooLarge(
            f"a foreground run takes at most {settings.foreground_max_leads} leads and this one has {total}; "
            "use mode \"background\" for larger runs",
            [{"field": "mode", "limit": settings.foreground_max_leads, "leads": total}],
        )
    if run is not None and job is not None and job.get("startFingerprint") == start_fp:
        return _answer_repeat(db, run_id, job, request.mode, settings)
    if run is not None:
        _check_can_start(job, run, clock.now())

    background = request.mode == "background"
    now = clock.now()
    budget = _foreground_budget(config.time_budget_seconds)
    lease_for = settings.worker_lease_seconds + (0 if background else budget)
    counts = initial_counts(lead_docs) if run is None else repo.count_leads(db, run_id)
    token = auth.new_worker_token() if background else None
    fresh = {
        "status": state.QUEUED if background else state.RUNNING,
        "mode": request.mode,
        "nextIndex": 0,
        "totalLeads": total,
        "counts": counts,
        "diagnostics": [],
        "attemptsByLead": {},
        "workerTokenHash": auth.worker_token_hash(token) if token else None,
        "config": job_config,
        "lease": {"owner": new_owner("h" if background else "fg"), "expiresAt": now + dt.timedelta(seconds=lease_for)},
        "startFingerprint": start_fp,
        "createdAt": now,
        "updatedAt": now,
        "startedAt": None if background else now,
        "finishedAt": None,
        "progressAt": firestore.SERVER_TIMESTAMP,
        "writes": 1,
    }
    outcome, job = _claim(db, run_id, fresh, start_fp, leads_fp)
    if outcome == "repeat":
        return _answer_repeat(db, run_id, job, request.mode, settings)
    if run is None:
        # Created, never overwritten: an identical start that adopted this claim ("continue")
        # must not reset a lead the first start's worker has already processed.
        repo.create_missing_leads(db, run_id, lead_docs)
        try:
            repo.run_ref(db, run_id).create({
                "name": request.name or run_id,
                "createdAt": now,
                "updatedAt": now,
                "status": job["status"],
                "totalLeads": total,
                "templateId": config.template_id,
                "counts": counts,
                "leadsFingerprint": leads_fp,
            }, **commit_args())
        except gexc.AlreadyExists:  # an identical start finished first and started the job
            return _answer_repeat(db, run_id, repo.get_job(db, run_id), request.mode, settings)
    else:
        repo.run_ref(db, run_id).update(
            {"status": job["status"], "templateId": config.template_id, "counts": counts, "updatedAt": now},
            **commit_args(),
        )
    if not background:
        return _run_foreground(db, run_id, job["lease"]["owner"], began + budget, settings, provider)
    owner = job["lease"]["owner"]
    if outcome == "continue":
        # Only the hash of the claiming start's token is stored, so this start gives the
        # job a token and lease of its own; a chain the first start may have begun stops
        # at its next lead (lease lost) or hand-off (403).
        token, owner = auth.new_worker_token(), new_owner()
        job_writes.change_job(db, run_id, lambda current: (
            restart_fields(token, owner, clock.now(), settings), None, {}, True,
        ) if current is not None and current.get("status") in state.ACTIVE else None)
    if not dispatcher(run_id, token, owner):
        note_dispatch_failure(db, run_id, owner)
    return Answer(StartResponse(job=to_view(run_id, repo.get_job(db, run_id), settings)), accepted=True)


def _claim(
    db: Any, run_id: str, fresh: dict[str, Any], start_fp: str, leads_fp: str | None
) -> tuple[str, dict[str, Any]]:
    """Writes the new job unless an identical start got there first: ("new" | "continue" | "repeat", job)."""

    def decide(current: dict[str, Any] | None, run: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        if current is not None and current.get("startFingerprint") == start_fp:
            # Same start: answer it if done, or finish the interrupted creation with its claim.
            return ("repeat" if run is not None else "continue"), current
        _check_same_leads(run, leads_fp)
        _check_can_start(current, run, clock.now())
        return "new", fresh

    return job_writes.claim_start(db, run_id, decide)


def _check_same_leads(run: dict[str, Any] | None, leads_fp: str | None) -> None:
    if run is not None and leads_fp is not None and run.get("leadsFingerprint") != leads_fp:
        raise Conflict(
            f"run {run['id']} already exists with other leads: start it without `leads`, or use a new run id",
            [{"field": "leads"}],
        )


def _check_can_start(job: dict[str, Any] | None, run: dict[str, Any] | None, now: dt.datetime) -> None:
    if job is None or job.get("status") not in state.LIVE:
        return
    if run is None:
        created = job.get("createdAt")
        if created is not None and created + ABANDONED_CLAIM < now:
            return
        raise Conflict("another start is creating this run right now; try again shortly", [{"field": "action"}])
    raise Conflict(
        f"run {run['id']} already has a {job['status']} job; pause or cancel it, or wait for it to finish",
        [{"field": "action", "status": job["status"]}],
    )


def _foreground_budget(requested: float | None) -> float:
    """The whole request's budget; the leads get it less FOREGROUND_BOOKKEEPING_SECONDS (at least 1 s)."""
    return max(min(requested or FOREGROUND_MAX_SECONDS, FOREGROUND_MAX_SECONDS), FOREGROUND_BOOKKEEPING_SECONDS + 1)


def _run_foreground(
    db: Any, run_id: str, owner: str, answer_by: float, settings: Settings, provider: Provider | None
) -> Answer:
    """The worker's own batch loop, inside this request, until `answer_by` (monotonic) less
    the bookkeeping; what is left waits, paused, for a resume (which continues in the background)."""
    # The batch loop and the outreach pipeline load on the first foreground run: status
    # polls and controls, most of this function's calls, never need them (docs/architecture.md,
    # "Cold start").
    from shared.jobs.loop import run_batch
    from shared.outreach.providers import get_provider

    job = repo.get_job(db, run_id)
    result = run_batch(
        db, run_id, job, owner, answer_by - FOREGROUND_BOOKKEEPING_SECONDS, int(job["totalLeads"]) or 1,
        provider or get_provider(settings),
    )
    checkpoint(db, run_id, owner, result, settings, on_unfinished="pause")
    job = repo.get_job(db, run_id)
    return Answer(StartResponse(job=to_view(run_id, job, settings), results=lead_results(db, run_id, job)))


def _answer_repeat(db: Any, run_id: str, job: dict[str, Any], mode: str, settings: Settings) -> Answer:
    results = lead_results(db, run_id, job) if mode == "foreground" else None
    return Answer(StartResponse(job=to_view(run_id, job, settings), results=results))


def lead_documents(leads: list[LeadIn]) -> list[tuple[str, dict[str, Any]]]:
    """(leadDocId, document) in index order. A repeated address is `skipped` so nobody is
    emailed twice by one run; the address itself is checked when the lead is processed."""
    seen: dict[str, str] = {}
    docs = []
    for index, lead in enumerate(leads):
        lead_id = repo.lead_doc_id(index)
        fields = lead.document_fields()
        key = fields["email"].lower()
        status, last_error = "pending", None
        if key and key in seen:
            status, last_error = "skipped", f"duplicate of {seen[key]} (same email address)"
        elif key:
            seen[key] = lead_id
        docs.append((lead_id, {
            "index": index, **fields, "status": status, "attempts": 0, "lastError": last_error,
            "updatedAt": firestore.SERVER_TIMESTAMP,
        }))
    return docs


def initial_counts(lead_docs: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    counts = {status: 0 for status in repo.LEAD_STATUSES}
    for _, doc in lead_docs:
        counts[doc["status"]] += 1
    return counts


def fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- pause / resume / retry / cancel ----------------------------------------------------


def control(
    db: Any, run_id: str, action: str, settings: Settings, dispatcher: Dispatcher, only: set[str] | None = None
) -> Answer:
    """`only`: retry just these failed leads (the review function's per-lead retry)."""
    run, job = repo.get_run_and_job(db, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    if job is None:
        raise Conflict(f"run {run_id} has no job to {action}: start one", [{"field": "action"}])
    failed = sorted(repo.leads_with_status(db, run_id, "failed"), key=lambda d: d["index"]) if action == "retry" else []
    failed = [lead for lead in failed if only is None or lead["id"] in only]
    # A retry's lead resets join the job's commit while they fit, so the job and its leads
    # never disagree; a larger retry resets them afterwards, and until then the worker
    # treats a lead failed before `retriedAt` as pending (loop.py).
    together = len(failed) <= job_writes.LEADS_PER_JOB_COMMIT
    reset = {"status": "pending", "attempts": 0, "lastError": None, "updatedAt": firestore.SERVER_TIMESTAMP}
    token, owner = auth.new_worker_token(), new_owner()

    def plan(current: dict[str, Any] | None) -> Any:
        if current is None:
            raise Conflict(f"run {run_id} has no job to {action}: start one", [{"field": "action"}])
        now = clock.now()
        if state.is_noop(action, current["status"]):
            return None
        stalled = state.is_stalled(current, now, settings.worker_lease_seconds)
        target = state.next_status(action, current["status"], stalled)
        updates: dict[str, Any] = {"status": target, "updatedAt": now}
        run_updates: dict[str, Any] = {"status": target, "updatedAt": now}
        lead_updates: dict[str, dict[str, Any]] = {}
        diagnostics = []
        if action == "cancel":
            # The lease stays so the worker in flight can still record the lead it finishes.
            updates.update({"workerTokenHash": None, LEGACY_RAW_TOKEN: firestore.DELETE_FIELD, "finishedAt": now})
        if action in ("resume", "retry"):
            was = "stalled" if stalled else current["status"]
            updates.update(restart_fields(token, owner, now, settings))
            diagnostics.append(diagnostic(action, f"{action} by the operator (job was {was})"))
        if action == "retry":
            counts = add_counts(current.get("counts"), _retry_deltas(len(failed)))
            updates.update({
                "nextIndex": failed[0]["index"] if failed else current["nextIndex"],
                "counts": counts,
                "attemptsByLead": {},
                # Only a retry whose resets follow the commit needs the loop's `retriedAt`
                # rule; one reset in this commit (a per-lead retry too) must not requeue
                # every other failed lead.
                "retriedAt": firestore.DELETE_FIELD if together else firestore.SERVER_TIMESTAMP,
            })
            run_updates["counts"] = counts
            if together:
                lead_updates = {lead["id"]: reset for lead in failed}
        updates["diagnostics"] = kept_diagnostics(current, diagnostics)
        return updates, run_updates, lead_updates, True

    changed = job_writes.change_job(db, run_id, plan)
    if changed and action == "retry" and failed and not together:
        repo.update_leads(db, run_id, [lead["id"] for lead in failed], reset)
    if changed and action in ("resume", "retry"):
        if not dispatcher(run_id, token, owner):
            note_dispatch_failure(db, run_id, owner)
    return Answer(StartResponse(job=to_view(run_id, repo.get_job(db, run_id), settings)))


def _retry_deltas(failed: int) -> collections.Counter:
    return collections.Counter({"failed": -failed, "pending": failed})


# --- views ------------------------------------------------------------------------------


def to_view(run_id: str, job: dict[str, Any], settings: Settings, now: dt.datetime | None = None) -> Job:
    """The job as the API shows it (shared/jobs/views.py): never the token's hash or the lease owner."""
    return views.job_view(run_id, job, now or clock.now(), settings.worker_lease_seconds)


def lead_results(db: Any, run_id: str, job: dict[str, Any]) -> list[LeadResult]:
    """Each lead's outcome in index order (a foreground run has at most FOREGROUND_MAX_LEADS)."""
    from shared.outreach import pipeline  # as in _run_foreground

    template = templates_repo.get(db, (job.get("config") or {}).get("templateId", "")) or {}
    draft = (job.get("config") or {}).get("draftFirst")
    step = pipeline.step_for(bool(template.get("draftFirst")) if draft is None else draft)
    results = []
    for lead in repo.read_leads(db, run_id, 0, int(job.get("totalLeads") or 0)):
        action = {"sent": "email-send", "drafted": "email-draft", "failed": step}.get(lead.get("status"))
        if lead.get("skipReason"):
            action = pipeline.SKIP_STEP
        results.append(LeadResult(
            index=lead["index"], lead_doc_id=lead["id"], email=lead.get("email", ""), status=lead.get("status", ""),
            action_id=action, error=lead.get("lastError"),
        ))
    return results
