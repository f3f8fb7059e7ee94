"""Lead-run jobs: POST/GET /api/lead-runs/{runId}/jobs (start, pause, resume, retry, cancel, status)."""

import functions_framework

from shared.http import Call, Reply, Router, read_json
from shared.jobs import bodies, models, service
from shared.store.client import get_db

router = Router("jobs")


@router.route("/api/lead-runs/<run_id>/jobs", methods=["GET"], response=models.JobEnvelope)
def get_job(call: Call):
    """The run's job: status, progress, counts, diagnostics, stalled."""
    return service.status(get_db(), call.params["run_id"])


@router.route(
    "/api/lead-runs/<run_id>/jobs", methods=["POST"], body=bodies.JobRequest, response=models.StartResponse,
    errors=(409,),
)
def post_job(call: Call):
    """Start (background or foreground), pause, resume, retry or cancel the run's job."""
    request = bodies.parse_request(read_json(call.request, bodies.MAX_START_BYTES))
    answer = service.post(get_db(), call.params["run_id"], request)
    # 202: a new background start is queued; everything else answers the job as it is.
    return Reply(answer.response, 202 if answer.accepted else 200)


@functions_framework.http
def jobs(request):
    return router.dispatch(request)
