"""The checked-in OpenAPI document is what the code says, and the stack serves it."""

from __future__ import annotations

import json

import pytest
import requests

from tools.openapi import DOCUMENT, build, load_routers, render


@pytest.fixture(scope="module")
def generated():
    return build(load_routers())


def test_checked_in_document_matches_the_code(generated):
    assert DOCUMENT.read_text() == render(generated), "public/api/openapi.json is stale: run `make openapi`"


def test_every_route_is_documented_with_its_models(generated):
    operations = {(path, method): op for path, item in generated["paths"].items() for method, op in item.items()}
    assert len(operations) >= 14
    for (path, method), op in operations.items():
        assert "500" in op["responses"] and "400" in op["responses"], (path, method)
        if method in ("post", "put", "patch") and not path.endswith("/worker"):
            assert "requestBody" in op, (path, method)
        success = next(code for code in op["responses"] if code.startswith("2"))
        assert "content" in op["responses"][success], f"{method.upper()} {path} declares no response model"


def test_openapi_is_3_1_with_both_security_schemes(generated):
    assert generated["openapi"] == "3.1.0"
    assert set(generated["components"]["securitySchemes"]) == {"firebase", "workerToken"}


@pytest.mark.e2e
def test_the_stack_serves_the_document(stack):
    response = requests.get(f"{stack.url}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(DOCUMENT.read_text())
