"""Background lead runs: POST/GET /api/lead-runs/{runId}/jobs."""

import functions_framework

from shared.http import Router, not_implemented

router = Router("jobs")
not_implemented(router, [('/api/lead-runs/<run_id>/jobs', ['GET', 'POST'])], "issue 3")


@functions_framework.http
def jobs(request):
    return router.dispatch(request)
