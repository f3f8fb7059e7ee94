"""The self-invoking batch worker, POST /api/lead-runs/{runId}/jobs/worker, and the
sweeper that restarts broken chains, POST /api/jobs/sweep.

The worker is authenticated by the job's own token (X-Worker-Token), not by a user: the
jobs API, the sweeper and the worker itself are its only callers. The sweeper is
authenticated by Cloud Scheduler's OIDC token (shared/jobs/sweeper.check_caller).
"""

import functions_framework

from shared.http import Call, Router
from shared.jobs import chain_models, sweeper
from shared.jobs import worker as job_worker
from shared.store.client import get_db

router = Router("worker")


@router.route(
    "/api/lead-runs/<run_id>/jobs/worker", methods=["POST"], auth="public", response=chain_models.WorkerResult,
    errors=(401, 403, 409),
)
def work(call: Call):
    """Process one batch of the run's job, then hand over to the next invocation."""
    return job_worker.handle(get_db(), call.params["run_id"], call.header("X-Worker-Token"), call.header("X-Worker-Lease"))


@router.route(
    "/api/jobs/sweep", methods=["POST"], auth="public", body=chain_models.SweepRequest, response=chain_models.SweepResult,
    errors=(401, 403, 503),
)
def sweep(call: Call):
    """Restart every active job whose lease lapsed (Cloud Scheduler, every minute)."""
    sweeper.check_caller(call.request.headers)
    if call.request.content_length:  # the body is optional, but checked when sent
        call.json(chain_models.SweepRequest)
    return sweeper.sweep(get_db())


@functions_framework.http
def worker(request):
    return router.dispatch(request)
