"""Consent: the suppression list (/api/suppressions…) and the public one-click unsubscribe URL (/u/{token})."""

import html

import flask
import functions_framework

from shared.consent import models, service, unsubscribe
from shared.errors import InvalidArgument, NotFound, TooLarge, UnsupportedMediaType
from shared.http import Call, Reply, Router
from shared.store.client import get_db

router = Router("consent")


@router.route("/api/suppressions", methods=["GET"], query=models.ListQuery, response=models.SuppressionList)
def list_suppressions(call: Call):
    query = call.query(models.ListQuery)
    return service.list_page(get_db(), query.page_size, query.page_token, query.q)


@router.route("/api/suppressions", methods=["POST"], body=models.SuppressionCreate, response=models.Suppression, status=201)
def add_suppression(call: Call):
    suppression, created = service.add(get_db(), call.json(models.SuppressionCreate), _who(call))
    return Reply(suppression, 201 if created else 200)


@router.route("/api/suppressions:import", methods=["POST"], body=models.ImportRequest, response=models.ImportResult)
def import_suppressions(call: Call):
    """A text/csv body, or JSON {csv, reason?}."""
    if call.request.mimetype == "text/csv":
        request = models.ImportRequest(csv=_text_body(call.request), reason=call.request.args.get("reason", "")[:500])
    else:
        request = call.json(models.ImportRequest, max_bytes=models.MAX_IMPORT_BYTES + 4096)
    return service.import_csv(get_db(), request.csv, request.reason, _who(call))


@router.route("/api/suppressions/<suppression_id>", methods=["DELETE"], response=models.Removed)
def remove_suppression(call: Call):
    service.remove(get_db(), call.params["suppression_id"])
    return models.Removed(id=call.params["suppression_id"])


@router.route("/u/<token>", methods=["GET"], auth="public")
def unsubscribe_page(call: Call):
    """A confirmation page: a GET never unsubscribes (mail scanners prefetch links)."""
    try:
        record = unsubscribe.resolve(get_db(), call.params["token"])
    except NotFound:
        return _page("Link not valid", "This unsubscribe link is not valid or has expired.", 404)
    address = html.escape(unsubscribe.masked(record["email"]))
    return _page("Unsubscribe", f"Stop emails to {address}?", 200, form=True)


@router.route("/u/<token>", methods=["POST"], auth="public")
def unsubscribe_one_click(call: Call):
    """RFC 8058: the body `List-Unsubscribe=One-Click`, as a form; no sign-in."""
    try:
        record = unsubscribe.one_click(get_db(), call.params["token"], call.request.form.get("List-Unsubscribe"))
    except NotFound:
        return _page("Link not valid", "This unsubscribe link is not valid or has expired.", 404)
    except InvalidArgument:
        return _page("Unsubscribe", "Use the button on this page to unsubscribe.", 400, form=True)
    address = html.escape(unsubscribe.masked(record["email"]))
    return _page("Unsubscribed", f"{address} will receive no more emails from us.", 200)


# What tools/openapi.py documents for the two HTML routes.
unsubscribe_page.html_form = {}
unsubscribe_one_click.html_form = {"List-Unsubscribe": "One-Click"}


def _who(call: Call) -> str | None:
    return call.user.email if call.user else None


def _text_body(request: flask.Request) -> str:
    limit = models.MAX_IMPORT_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaType("send the CSV as UTF-8 text") from None


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{form}</body></html>"""
_FORM = ('<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
         '<button type="submit">Unsubscribe</button></form>')


def _page(title: str, message: str, status: int, form: bool = False) -> flask.Response:
    body = _PAGE.format(title=html.escape(title), message=message, form=_FORM if form else "")
    response = flask.Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    return response


@functions_framework.http
def consent(request):
    return router.dispatch(request)
