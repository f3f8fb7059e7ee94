"""Browser error reports: POST /api/telemetry/error."""

import functions_framework

from shared.http import Router, not_implemented

router = Router("telemetry")
not_implemented(router, [('/api/telemetry/error', ['POST'])], "issue 6")


@functions_framework.http
def telemetry(request):
    return router.dispatch(request)
