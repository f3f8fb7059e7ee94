"""The sweeper: POST /api/jobs/sweep restarts every chain that broke.

Cloud Scheduler calls it every minute (deploy.sh) with a Google-signed OIDC token, and
`make dev`'s timer every SWEEP_INTERVAL_SECONDS without one (docs/reliability.md,
"The sweeper"). One sweep:

1. lists the active jobs (`queued`/`running`): one collection-group query on `jobs`
   (its single-field index: firestore.indexes.json);
2. restarts each one that is stalled (its lease lapsed: shared/jobs/state.is_stalled)
   with a new worker token and lease, in a compare-and-set commit that re-checks the
   stall (shared/store/job_writes.change_job): of two sweepers at once exactly one
   restarts a job, the other finds a fresh lease and leaves it;
3. wakes the `waiting` jobs that are due (`wake_due_jobs`, the extension point below);
4. invokes the first worker of each restarted chain.

The job's diagnostics say when the sweeper restarted it (`sweeper_restarted`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable

from google.cloud.firestore_v1.base_query import FieldFilter

from shared import auth, clock, logs
from shared.errors import PermissionDenied, Unauthenticated, Unavailable
from shared.jobs import state
from shared.jobs.checkpoint import diagnostic, kept_diagnostics, note_dispatch_failure
from shared.jobs.dispatch import Dispatcher, default_dispatcher
from shared.jobs.lease import new_owner, restart_fields
from shared.jobs.chain_models import SweepResult
from shared.settings import Settings, get_settings
from shared.store import job_writes
from shared.store import runs as repo
from shared.store.client import read_args

logger = logging.getLogger("mission_control.jobs.sweeper")

# Who signs Scheduler's OIDC tokens (what google.oauth2.id_token.verify_oauth2_token accepts).
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


@dataclasses.dataclass
class Restart:
    run_id: str
    token: str
    owner: str


def sweep(db: Any, settings: Settings | None = None, dispatcher: Dispatcher | None = None) -> SweepResult:
    settings = settings or get_settings()
    dispatcher = dispatcher or default_dispatcher(settings)
    now = clock.now()
    active = list(active_jobs(db))
    restarts = [r for r in (restart_if_stalled(db, run_id, settings) for run_id, job in active
                            if state.is_stalled(job, now, settings.worker_lease_seconds)) if r]
    restarts += wake_due_jobs(db, now, settings)
    for restart in restarts:
        if not dispatcher(restart.run_id, restart.token, restart.owner):
            note_dispatch_failure(db, restart.run_id, restart.owner)
    resumed = [r.run_id for r in restarts]
    if resumed:
        logs.log(logger, logging.WARNING, f"sweeper restarted {len(resumed)} stalled job(s)", runIds=resumed)
    return SweepResult(resumed=resumed, checked=len(active))


def active_jobs(db: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """(runId, job) of every queued or running job, across runs."""
    query = db.collection_group(repo.JOBS).where(filter=FieldFilter("status", "in", sorted(state.ACTIVE)))
    for snapshot in query.stream(**read_args()):
        run_ref = snapshot.reference.parent.parent
        if run_ref is not None and run_ref.parent.id == repo.RUNS and snapshot.id == repo.DEFAULT_JOB:
            yield run_ref.id, snapshot.to_dict()


def restart_if_stalled(db: Any, run_id: str, settings: Settings) -> Restart | None:
    """A new token and lease for the job if it is still active and stalled when written."""
    token, owner = auth.new_worker_token(), new_owner()

    def plan(job: dict[str, Any] | None) -> Any:
        now = clock.now()
        if job is None or not state.is_stalled(job, now, settings.worker_lease_seconds):
            return None
        lease = job.get("lease") or {}
        lapsed = f"its lease lapsed at {clock.rfc3339(lease['expiresAt'])}" if lease.get("expiresAt") else "it had no lease"
        note = diagnostic("sweeper_restarted", f"the sweeper restarted the job at {clock.rfc3339(now)}: {lapsed} "
                          f"at lead {job.get('nextIndex', 0)}")
        updates = {**restart_fields(token, owner, now, settings), "updatedAt": now,
                   "diagnostics": kept_diagnostics(job, [note])}
        return updates, None, {}, Restart(run_id, token, owner)

    return job_writes.change_job(db, run_id, plan)


def wake_due_jobs(db: Any, now: Any, settings: Settings) -> list[Restart]:
    """The `waiting` jobs whose `wakeAt` has passed, each woken once (a compare-and-set
    commit in shared/deliverability/wake.py: of two sweepers one wakes it)."""
    from shared.deliverability import wake

    woken = (wake.wake(db, run_id, now, settings) for run_id in wake.due_waiting_jobs(db, now))
    return [Restart(w.run_id, w.token, w.owner) for w in woken if w is not None]


# --- who may sweep --------------------------------------------------------------------------


def check_caller(headers: Any, settings: Settings | None = None) -> None:
    """Cloud Scheduler's OIDC token: signed by Google, for SWEEPER_AUDIENCE, from
    SWEEPER_SERVICE_ACCOUNT. Unauthenticated (401) for a missing or bad token, PermissionDenied
    (403) for another account, Unavailable (503) when Google's keys cannot be fetched.

    Skipped only on the local stack: the emulator is configured and the project is a
    `demo-` project (whose timer POSTs without a token).
    """
    import os

    settings = settings or get_settings()
    if os.environ.get("FIRESTORE_EMULATOR_HOST") and settings.google_cloud_project.startswith("demo-"):
        return
    if not settings.sweeper_audience or not settings.sweeper_service_account:
        raise PermissionDenied("the sweeper is not configured: set SWEEPER_AUDIENCE and SWEEPER_SERVICE_ACCOUNT")
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an 'Authorization: Bearer <OIDC token>' header from Cloud Scheduler is required")
    claims = verify_oidc_token(token.strip(), settings)
    if claims.get("email") != settings.sweeper_service_account or not claims.get("email_verified"):
        raise PermissionDenied(f"{claims.get('email') or 'this caller'} may not run the sweeper")


def verify_oidc_token(token: str, settings: Settings) -> dict[str, Any]:
    """What google.oauth2.id_token.verify_oauth2_token checks (signature, expiry, audience,
    Google as issuer), with the certs URL configurable (SWEEPER_CERTS_URL) so tests can
    serve their own keys."""
    from google.auth import exceptions
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_token(
            token, google_requests.Request(), audience=settings.sweeper_audience,
            certs_url=settings.sweeper_certs_url, clock_skew_in_seconds=10,
        )
    except exceptions.TransportError as exc:
        raise Unavailable("could not fetch Google's token signing keys; try again", 5) from exc
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated("the OIDC token is invalid or expired") from exc
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Unauthenticated("the OIDC token was not issued by Google")
    return claims
