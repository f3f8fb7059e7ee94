"""The self-invoking batch worker: POST /api/lead-runs/{runId}/jobs/worker."""

import functions_framework

from shared.http import Router, not_implemented

router = Router("worker")
not_implemented(router, [('/api/lead-runs/<run_id>/jobs/worker', ['POST'])], "issue 3")


@functions_framework.http
def worker(request):
    return router.dispatch(request)
