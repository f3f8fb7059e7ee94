"""Run receipts: GET /api/lead-runs, GET /api/lead-runs/{runId}/receipts, GET /api/health."""

import functions_framework

from shared.http import Router, not_implemented

router = Router("receipts")
not_implemented(router, [('/api/lead-runs', ['GET']), ('/api/lead-runs/<run_id>/receipts', ['GET']), ('/api/health', ['GET'])], "issue 4")


@functions_framework.http
def receipts(request):
    return router.dispatch(request)
