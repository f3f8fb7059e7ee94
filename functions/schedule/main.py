"""Meeting slots and booking: POST /api/calendar/schedule."""

import functions_framework

from shared import clock
from shared.calendar import service
from shared.calendar.models import ScheduleRequest, ScheduleResult
from shared.http import Call, Router
from shared.store.client import get_db

router = Router("schedule")


@router.route(
    "/api/calendar/schedule", methods=["POST"], body=ScheduleRequest, response=ScheduleResult, errors=(404, 409, 503)
)
def schedule_meeting(call: Call):
    request = call.json(ScheduleRequest)
    return service.schedule(get_db(), request, clock.now(), call.user)


@functions_framework.http
def schedule(request):
    return router.dispatch(request)
