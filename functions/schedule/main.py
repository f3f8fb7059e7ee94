"""Meeting slots and booking: POST /api/calendar/schedule."""

import functions_framework

from shared.http import Router, not_implemented

router = Router("schedule")
not_implemented(router, [('/api/calendar/schedule', ['POST'])], "issue 5")


@functions_framework.http
def schedule(request):
    return router.dispatch(request)
