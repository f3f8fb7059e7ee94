"""Outreach templates: GET/POST /api/templates, GET/PUT/PATCH/DELETE /api/templates/{templateId}."""

import functions_framework

from shared.http import Call, Reply, Router
from shared.store.client import get_db
from shared.templates import service
from shared.templates.models import (
    DeleteQuery,
    Deleted,
    ListQuery,
    Template,
    TemplateCreate,
    TemplateList,
    TemplatePatch,
    TemplateReplace,
)

router = Router("templates")


def _with_etag(template, status=200):
    return Reply(template, status, {"ETag": f'"{template.version}"'})


@router.route("/api/templates", methods=["GET"], query=ListQuery, response=TemplateList)
def list_templates(call: Call):
    query = call.query(ListQuery)
    return service.list_templates(get_db(), query.page_size, query.page_token)


@router.route("/api/templates", methods=["POST"], body=TemplateCreate, response=Template, status=201)
def create_template(call: Call):
    return _with_etag(service.create(get_db(), call.json(TemplateCreate)), 201)


@router.route("/api/templates/<template_id>", methods=["GET"], response=Template)
def get_template(call: Call):
    return _with_etag(service.get(get_db(), call.params["template_id"]))


@router.route("/api/templates/<template_id>", methods=["PUT"], body=TemplateReplace, response=Template, errors=(409,))
def replace_template(call: Call):
    return _edit(call, call.json(TemplateReplace), replace=True)


@router.route("/api/templates/<template_id>", methods=["PATCH"], body=TemplatePatch, response=Template, errors=(409,))
def patch_template(call: Call):
    return _edit(call, call.json(TemplatePatch), replace=False)


def _edit(call: Call, fields, replace: bool):
    version = service.expected_version(fields.version, call.header("If-Match"))
    return _with_etag(service.update(get_db(), call.params["template_id"], fields, version, replace))


@router.route("/api/templates/<template_id>", methods=["DELETE"], query=DeleteQuery, response=Deleted, errors=(409,))
def delete_template(call: Call):
    version = call.query(DeleteQuery).version
    if call.header("If-Match"):
        version = service.expected_version(version, call.header("If-Match"))
    service.delete(get_db(), call.params["template_id"], version)
    return Deleted(id=call.params["template_id"])


@functions_framework.http
def templates(request):
    return router.dispatch(request)
