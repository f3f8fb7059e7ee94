"""Run receipts: GET /api/lead-runs, GET /api/lead-runs/{runId}/receipts, and GET /api/health.

/api/health lives here because receipts is the read-only function the Operations
page calls first: it is the one most often warm, and it touches nothing.
"""

import functions_framework

from shared import health
from shared.http import Call, Reply, Router
from shared.receipts import service
from shared.receipts.models import Receipts, ReceiptsQuery, RunList, RunsQuery
from shared.settings import get_settings
from shared.store.client import get_db

router = Router("receipts")


@router.route("/api/lead-runs", methods=["GET"], query=RunsQuery, response=RunList)
def list_runs(call: Call):
    """Recent runs, newest first, for the run-ID loader."""
    query = call.query(RunsQuery)
    return service.list_runs(get_db(), query.size, query.page_token)


@router.route("/api/lead-runs/<run_id>/receipts", methods=["GET"], query=ReceiptsQuery, response=Receipts)
def run_receipts(call: Call):
    """A run, its job summary, and a page of its leads in index order with their action receipts."""
    query = call.query(ReceiptsQuery)
    return service.read_receipts(
        get_db(), call.params["run_id"], query.size, query.page_token, query.status,
        lease_seconds=get_settings().worker_lease_seconds,
    )


@router.route("/api/health", methods=["GET"], auth="public", response=health.Health)
def health_check(call: Call):
    answer = health.status(get_db(), get_settings())
    body = answer.model_dump(by_alias=True, mode="json", exclude_none=True)  # `reason` only when there is one
    if answer.firestore == "error":
        return Reply(body, 503, {"Retry-After": str(health.RETRY_AFTER_SECONDS)})
    return Reply(body)


@functions_framework.http
def receipts(request):
    return router.dispatch(request)
