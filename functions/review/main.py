"""Review drafts, then send: /api/lead-runs/{runId}/drafts…, and per-lead retry /api/lead-runs/{runId}/leads/{leadDocId}:retry."""

import functions_framework

from shared.http import Call, Reply, Router
from shared.outreach.providers import get_provider
from shared.review import models, service
from shared.store.client import get_db

router = Router("review")


def _with_etag(draft):
    return Reply(draft, 200, {"ETag": f'"{draft.version}"'})


@router.route("/api/lead-runs/<run_id>/drafts", methods=["GET"], query=models.DraftsQuery, response=models.DraftList)
def list_drafts(call: Call):
    query = call.query(models.DraftsQuery)
    return service.list_drafts(get_db(), call.params["run_id"], query.page_size, query.page_token)


@router.route(
    "/api/lead-runs/<run_id>/drafts/<id:lead_id>", methods=["PATCH"], body=models.DraftPatch, response=models.Draft,
    errors=(409,),
)
def edit_draft(call: Call):
    """Edits subject and/or body; If-Match (or `version`) must name the current version."""
    patch = call.json(models.DraftPatch)
    version = service.expected_version(patch.version, call.header("If-Match"))
    return _with_etag(service.edit(get_db(), call.params["run_id"], call.params["lead_id"], patch.subject, patch.body, version))


@router.route(
    "/api/lead-runs/<run_id>/drafts/<id:lead_id>:send", methods=["POST"], body=models.SendRequest,
    response=models.SendOutcome, errors=(409,),
)
def send_draft(call: Call):
    """Sends the draft's current version exactly once; an empty body or {} sends whatever is current."""
    version = _optional_version(call)
    return service.send(get_db(), call.params["run_id"], call.params["lead_id"], version, get_provider())


@router.route(
    "/api/lead-runs/<run_id>/drafts/<id:lead_id>:discard", methods=["POST"], body=models.SendRequest,
    response=models.Draft, errors=(409,),
)
def discard_draft(call: Call):
    version = _optional_version(call)
    return _with_etag(service.discard(get_db(), call.params["run_id"], call.params["lead_id"], version, get_provider()))


@router.route(
    "/api/lead-runs/<run_id>/drafts:send", methods=["POST"], body=models.BulkSendRequest, response=models.BulkSendResult,
)
def send_drafts(call: Call):
    request = call.json(models.BulkSendRequest)
    return service.send_many(get_db(), call.params["run_id"], request.lead_doc_ids, get_provider())


@router.route(
    "/api/lead-runs/<run_id>/leads/<id:lead_id>:retry", methods=["POST"], body=models.RetryRequest,
    response=models.RetryResult, errors=(409,),
)
def retry_lead(call: Call):
    """Re-queues one failed lead and restarts the run's job if it had ended."""
    if call.request.content_length:
        call.json(models.RetryRequest)
    return service.retry_lead(get_db(), call.params["run_id"], call.params["lead_id"])


def _optional_version(call: Call):
    body = call.json(models.SendRequest) if call.request.content_length else models.SendRequest()
    return service.expected_version(body.version, call.header("If-Match"))


@functions_framework.http
def review(request):
    return router.dispatch(request)
