"""Run receipts: GET /api/lead-runs, GET /api/lead-runs/{runId}/receipts, and GET /api/health.

/api/health lives here because receipts is the read-only function the Operations
page calls first: it is the one most often warm, and it touches nothing.
"""

import functions_framework

from shared import health
from shared.http import Call, Router, not_implemented
from shared.settings import get_settings
from shared.store.client import get_db

router = Router("receipts")
not_implemented(router, [("/api/lead-runs", ["GET"]), ("/api/lead-runs/<run_id>/receipts", ["GET"])], "issue 4")


@router.route("/api/health", methods=["GET"], auth="public")
def health_check(call: Call):
    return health.status(get_db(), get_settings())


@functions_framework.http
def receipts(request):
    return router.dispatch(request)
