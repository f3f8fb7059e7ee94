"""Builds the OpenAPI 3.1 document from the functions' own routes and pydantic models.

Nothing here is written by hand per endpoint: each `router.route(...)` declares its
body, query and response models, and this walks every function's router.

    python tools/openapi.py            # rewrite public/api/openapi.json
    python tools/openapi.py --check    # exit 1 if the checked-in document is stale
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel  # noqa: E402
from pydantic.alias_generators import to_camel  # noqa: E402
from pydantic.json_schema import models_json_schema  # noqa: E402

from shared.http import Operation, Router  # noqa: E402
from tools.localstack import ROOT, function_names  # noqa: E402

DOCUMENT = ROOT / "public" / "api" / "openapi.json"
_REF = "#/components/schemas/{model}"
_REASONS = {
    400: "Invalid input; `details` names each field.",
    401: "Missing or invalid credentials.",
    403: "Authenticated but not allowed.",
    404: "No such resource or endpoint.",
    405: "Method not allowed; see the Allow header.",
    409: "Conflict with the resource's current state.",
    413: "Request body too large.",
    415: "Body is not JSON.",
    429: "Rate limited; see Retry-After.",
    500: "Unexpected error; quote the request id.",
    503: "A backend is unavailable; see Retry-After.",
}


def load_routers() -> list[Router]:
    routers = []
    for name in function_names():
        spec = importlib.util.spec_from_file_location(f"function_{name}", ROOT / "functions" / name / "main.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        routers.append(module.router)
    return routers


def _path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + to_camel(m.group(1)) + "}", rule)
    return path, [to_camel(n) for n in names]


def _statuses(op: Operation, method: str) -> list[int]:
    codes = {400, 404, 405, 500, 503, *op.errors}
    if op.auth == "user":
        codes |= {401, 403}
    if op.body is not None:
        codes |= {413, 415}
    return sorted(codes)


def build(routers: list[Router], version: str = "1") -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for router in routers:
        for op in router.operations:
            models |= {m for m in (op.body, op.query, op.response) if m is not None}
    ordered = sorted(models, key=lambda m: m.__name__)
    keys = [(m, "validation") for m in ordered] + [(m, "serialization") for m in ordered]
    refs, defs = models_json_schema(keys, by_alias=True, ref_template=_REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    }
    paths: dict[str, dict[str, Any]] = {}
    for router in routers:
        for op in router.operations:
            path, params = _path(op.rule)
            for method in op.methods:
                paths.setdefault(path, {})[method.lower()] = _operation(router.name, op, method, params, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mission Control functions", "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"},
                "workerToken": {"type": "apiKey", "in": "header", "name": "X-Worker-Token"},
            },
        },
    }


def _operation(function: str, op: Operation, method: str, params: list[str], refs, schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{function}.{op.handler.__name__}" + (f".{method.lower()}" if len(op.methods) > 1 else ""),
        "tags": [function],
        "summary": (op.handler.__doc__ or op.handler.__name__.replace("_", " ")).strip().splitlines()[0],
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"}}
            for p in params
        ],
    }
    if op.auth == "user":
        operation["security"] = [{"firebase": []}]
    elif op.auth == "public" and "worker" in op.rule:
        operation["security"] = [{"workerToken": []}]
    else:
        operation["security"] = []
    if op.query is not None:
        query_schema = op.query.model_json_schema(by_alias=True, ref_template=_REF)
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            schema = {k: v for k, v in schema.items() if k != "title"}
            operation["parameters"].append({"name": name, "in": "query", "required": name in required, "schema": schema})
    if op.body is not None:
        operation["requestBody"] = {
            # A body model without fields (POST /api/jobs/sweep) documents an optional body.
            "required": bool(op.body.model_fields),
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": "Success."}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    responses = {str(op.status): success}
    for code in _statuses(op, method):
        responses[str(code)] = {
            "description": _REASONS.get(code, "Error."),
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
        }
    operation["responses"] = responses
    _html_page(op, method, operation, success)
    return operation


def _html_page(op: Operation, method: str, operation: dict[str, Any], success: dict[str, Any]) -> None:
    """A public page (functions/consent's /u/{token}): an HTML answer, and a form body for POST."""
    form = getattr(op.handler, "html_form", None)
    if form is None:
        return
    success["content"] = {"text/html": {"schema": {"type": "string"}}}
    for code in ("400", "404"):  # an unknown token or a wrong body is a page too
        if code in operation["responses"]:
            operation["responses"][code]["content"]["text/html"] = {"schema": {"type": "string"}}
    if method == "POST":
        schema = {"type": "object", "required": list(form), "properties": {k: {"const": v} for k, v in form.items()}}
        operation["requestBody"] = {"required": True, "content": {
            media: {"schema": schema} for media in ("application/x-www-form-urlencoded", "multipart/form-data")
        }}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render(build(load_routers()))
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
