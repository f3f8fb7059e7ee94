"""Values Firestore cannot store, and null as absent, through the jobs function's real app.

A start whose leads hold a value Firestore refuses is a 400 naming the value's path,
written before anything is stored, so a corrected start on the same run id succeeds.
"""

from __future__ import annotations

import pytest

from tests.jobs_helpers import docs, everything, make_leads, make_template, start_request

RUN = "run-values"
URL = f"/api/lead-runs/{RUN}/jobs"


@pytest.fixture
def client(function_client):
    return function_client("jobs")


@pytest.fixture(autouse=True)
def template(db):
    make_template(db)


def error_fields(response) -> list[str]:
    return [d.get("field") for d in response.get_json()["error"]["details"]]


@pytest.mark.parametrize(
    "fields, path",
    [
        ({"big": 2**63}, "leads.1.fields.big"),
        ({"small": -(2**63) - 1}, "leads.1.fields.small"),
        ({"huge": 10**400}, "leads.1.fields.huge"),
        ({"__x__": "reserved"}, "leads.1.fields.__x__"),
        ({"__name__": 1}, "leads.1.fields.__name__"),
    ],
)
def test_a_value_firestore_refuses_is_a_400_and_a_corrected_start_succeeds(client, db, fields, path):
    leads = make_leads(3)
    leads[1]["fields"] = fields
    before = everything(db)
    response = client.post(URL, json=start_request(leads))
    assert response.status_code == 400, response.get_json()
    assert path in error_fields(response)
    assert everything(db) == before  # no claim, no run: nothing holds the run id

    leads[1]["fields"] = {"ok": 2**63 - 1, "x__": "fine", "neg": -(2**63)}
    fixed = client.post(URL, json=start_request(leads))
    assert fixed.status_code == 202, fixed.get_json()
    stored = docs(db, f"lead_runs/{RUN}/leads")
    assert sorted(d["fields"].get("ok", 0) for d in stored) == [0, 0, 2**63 - 1]


def test_the_largest_allowed_integers_are_stored_exactly(client, db):
    leads = make_leads(1, fields={"max": 2**63 - 1, "min": -(2**63)})
    assert client.post(URL, json=start_request(leads)).status_code == 202
    [lead] = docs(db, f"lead_runs/{RUN}/leads")
    assert lead["fields"] == {"max": 2**63 - 1, "min": -(2**63)}


def test_one_null_among_many_leads_fails_alone_with_missing_variables(client, db):
    leads = make_leads(6)
    leads[2]["firstName"] = None  # an empty CSV cell
    leads[4]["company"] = None
    leads[5]["lastName"] = None  # the template does not use it
    response = client.post(URL, json=start_request(leads, mode="foreground"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "sent"), (1, "sent"), (2, "failed"), (3, "sent"), (4, "failed"), (5, "sent")
    ]
    assert body["results"][2]["error"] == "missing template variables: firstName"
    assert body["results"][4]["error"] == "missing template variables: company"
    assert {d["code"] for d in body["job"]["diagnostics"]} == {"missing_variables"}
    assert len(docs(db, "mail")) == 4


def test_null_for_optional_fields_everywhere_is_their_default(client, db):
    body = start_request(make_leads(1), draftFirst=None, timeBudgetSeconds=None, batchSize=None)
    body["name"] = None
    body["leads"][0].update({"lastName": None, "timeZone": None, "fields": None})
    response = client.post(URL, json=body)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()["job"]
    assert job["config"]["batchSize"] == 100 and job["config"]["draftFirst"] is None
    run = db.collection("lead_runs").document(RUN).get().to_dict()
    assert run["name"] == RUN


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda body: body["leads"][0].update(email=None), "leads.0.email"),
        (lambda body: body.update(mode=None), "mode"),
        (lambda body: body["config"].update(templateId=None), "config.templateId"),
        (lambda body: body.update(config=None), "config"),
        (lambda body: body.update(unknownField=None), "unknownField"),
    ],
)
def test_null_for_a_required_or_unknown_field_is_still_a_400(client, db, mutate, field):
    body = start_request(make_leads(1))
    mutate(body)
    before = everything(db)
    response = client.post(URL, json=body)
    assert response.status_code == 400, response.get_json()
    assert field in error_fields(response)
    assert everything(db) == before


def test_null_is_absent_in_every_endpoints_models(function_client, db):
    # The same base model everywhere: a telemetry report's optional severity and the
    # templates' optional draftFirst take their defaults when sent as null.
    report = {"source": "manual", "message": "x", "severity": None, "url": None, "context": None}
    assert function_client("telemetry").post("/api/telemetry/error", json=report).status_code == 202
    template = {"name": "T", "subject": "s", "body": "b", "draftFirst": None, "channel": None}
    created = function_client("templates").post("/api/templates", json=template)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["draftFirst"] is False and created.get_json()["channel"] == "email"
