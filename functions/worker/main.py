"""The self-invoking batch worker: POST /api/lead-runs/{runId}/jobs/worker.

Authenticated by the job's own token (X-Worker-Token), not by a user: the jobs API
and the worker itself are its only callers.
"""

import functions_framework

from shared.http import Call, Router
from shared.jobs import models
from shared.jobs import worker as batch
from shared.store.client import get_db

router = Router("worker")


@router.route(
    "/api/lead-runs/<run_id>/jobs/worker", methods=["POST"], auth="public", response=models.WorkerResult,
    errors=(401, 403, 409),
)
def work(call: Call):
    """Process one batch of the run's job, then hand over to the next invocation."""
    return batch.handle(get_db(), call.params["run_id"], call.header("X-Worker-Token"), call.header("X-Worker-Lease"))


@functions_framework.http
def worker(request):
    return router.dispatch(request)
