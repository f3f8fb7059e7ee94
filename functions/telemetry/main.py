"""Browser error reports: POST /api/telemetry/error (docs/telemetry.md).

Public on purpose: errors happen before sign-in too. A valid ID token, when the
page has one, attributes the report to its operator (auth="optional").
"""

import functions_framework

from shared.http import Call, Reply, Router
from shared.settings import get_settings
from shared.store.client import get_db
from shared.telemetry import ratelimit, service
from shared.telemetry.models import ErrorReportIn, ReportAccepted

router = Router("telemetry")


@router.route(
    "/api/telemetry/error", methods=["POST"], auth="optional",
    body=ErrorReportIn, response=ReportAccepted, status=202, errors=(413, 429),
)
def report_error(call: Call):
    settings = get_settings()
    # Cut-off JS strings carry lone surrogates; the report model cleans them, so accept them.
    report = call.json(ErrorReportIn, max_bytes=settings.telemetry_max_body_bytes, lone_surrogates=True)
    reporter = service.Reporter(
        user=call.user,
        ip=ratelimit.client_ip(call.request.headers, call.request.remote_addr, settings.trusted_proxy_hops),
        referrer=call.header("Referer"),
    )
    return Reply(service.submit_report(get_db(), report, reporter, settings), 202)


@functions_framework.http
def telemetry(request):
    return router.dispatch(request)
