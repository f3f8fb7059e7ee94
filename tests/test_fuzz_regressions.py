"""Inputs fuzzing found that once produced a 500, kept as regression tests."""

from __future__ import annotations

import pytest

# schemathesis, seed 1: a context holding an array inside an array (Firestore refuses those).
FUZZED_REPORT = (
    '{"": [], "__main__": [-1.401298464324817e-45, -1149733984], "release": null, "severity": "error",'
    ' "stack": "\\u00c9\\ud886\\udd87", "source": "manual", "runId": "",'
    ' "context": {"\\u00fc": [], "": [-154303, [[], {"": false}], -2.2250738585072014e-308], "x": {}},'
    ' "description": "\\uda55\\udccf\\u00c3"}'
)


def test_the_fuzzed_report_is_accepted_and_stored(function_client, db):
    response = function_client("telemetry").post("/api/telemetry/error", data=FUZZED_REPORT, content_type="application/json")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    event = db.document(f"telemetry_errors/{body['fingerprint']}/events/{body['reportId']}").get().to_dict()
    inner = event["context"]["_"][1]  # the array that was inside an array, now a one-key map
    assert set(inner) == {"items"} and len(inner["items"]) == 2


@pytest.mark.parametrize(
    "context, stored_as",
    [({"grid": [[1, 2], [3]]}, {"grid": [{"items": [1, 2]}, {"items": [3]}]}),
     ({"rows": [[True], "x"]}, {"rows": [{"items": [True]}, "x"]})],
)
def test_arrays_inside_arrays_are_stored_as_maps_not_500(function_client, db, context, stored_as):
    report = {"source": "auto", "message": "TypeError: boom", "context": context}
    response = function_client("telemetry").post("/api/telemetry/error", json=report)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    stored = db.document(f"telemetry_errors/{body['fingerprint']}/events/{body['reportId']}").get().to_dict()["context"]
    assert stored == stored_as


@pytest.mark.parametrize(
    "name, path",
    [("templates", "/api/templates"), ("schedule", "/api/calendar/schedule"), ("jobs", "/api/lead-runs/r1/jobs")],
)
def test_an_unpaired_surrogate_is_a_400_not_a_500(function_client, db, name, path):
    body = '{"name": "\\ud800", "subject": "s", "body": "b", "source": "manual", "description": "\\udfff"}'
    response = function_client(name).post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("the request body holds an unpaired")
    assert list(db.collection("templates").stream()) == []
