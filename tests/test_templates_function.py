"""templates through functions-framework's real app, against the emulator."""

from __future__ import annotations

import concurrent.futures

import pytest

VALID = {"name": "Intro", "subject": "Hi {{firstName}}", "body": "Hello {{ firstName }} at {{company}}"}


@pytest.fixture
def client(function_client):
    return function_client("templates")


def create(client, **overrides):
    response = client.post("/api/templates", json={**VALID, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_returns_the_resource_with_defaults(client, db):
    body = create(client)
    assert body["draftFirst"] is False and body["version"] == 1 and body["channel"] == "email"
    assert body["createdAt"].endswith("Z") and body["createdAt"] == body["updatedAt"]
    stored = db.collection("templates").document(body["id"]).get().to_dict()
    assert stored["subject"] == VALID["subject"] and stored["draftFirst"] is False


def test_get_returns_etag_and_no_store(client):
    created = create(client, draftFirst=True)
    response = client.get(f"/api/templates/{created['id']}")
    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Cache-Control"] == "no-store"


def test_list_paginates_newest_first_without_gaps(client):
    made = [create(client, name=f"T{i}")["id"] for i in range(7)]
    seen, token = [], None
    while True:
        query = {"pageSize": 3, **({"pageToken": token} if token else {})}
        page = client.get("/api/templates", query_string=query).get_json()
        seen += [t["id"] for t in page["templates"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    "payload, field",
    [
        ({**VALID, "subject": "Hi {{firstName"}, "subject"),
        ({**VALID, "body": "Hello }} there"}, "body"),
        ({**VALID, "body": "Hello {{ first name }}"}, "body"),
        ({**VALID, "body": "Hello {{}}"}, "body"),
        ({**VALID, "name": ""}, "name"),
        ({**VALID, "channel": "sms"}, "channel"),
        ({**VALID, "draftFirst": "yes"}, "draftFirst"),
        ({**VALID, "unknown": 1}, "unknown"),
        ({"subject": "x", "body": "y"}, "name"),
        ([VALID], "(body)"),
    ],
)
def test_bad_template_is_400_naming_the_field_and_writes_nothing(client, db, payload, field):
    response = client.post("/api/templates", json=payload)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_argument"
    assert field in [d["field"] for d in error["details"]]
    assert list(db.collection("templates").stream()) == []


def test_non_json_is_415_and_malformed_json_is_400(client):
    assert client.post("/api/templates", data="name=x", content_type="text/plain").status_code == 415
    response = client.post("/api/templates", data="{bad", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_argument"


def test_oversized_body_is_413(client, configure):
    configure(MAX_BODY_BYTES="1000")
    response = client.post("/api/templates", json={**VALID, "body": "x" * 2000})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_unknown_method_is_405_with_allow(client):
    response = client.delete("/api/templates")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_unknown_and_malformed_ids(client):
    assert client.get("/api/templates/doesNotExist").status_code == 404
    assert client.get("/api/templates/__reserved__").status_code == 400
    assert client.get("/api/templates/a/b").status_code == 404


def test_patch_changes_only_given_fields_and_bumps_version(client):
    created = create(client)
    response = client.patch(f"/api/templates/{created['id']}", json={"draftFirst": True, "version": 1})
    assert response.status_code == 200
    body = response.get_json()
    assert body["draftFirst"] is True and body["version"] == 2 and body["subject"] == VALID["subject"]


def test_put_replaces_and_if_match_is_honoured(client):
    created = create(client, draftFirst=True)
    replacement = {"name": "New", "subject": "S", "body": "B"}
    response = client.put(f"/api/templates/{created['id']}", json=replacement, headers={"If-Match": '"1"'})
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "New" and body["draftFirst"] is False and body["version"] == 2


def test_edit_without_version_is_400_and_stale_version_is_409(client):
    created = create(client)
    missing = client.patch(f"/api/templates/{created['id']}", json={"name": "x"})
    assert missing.status_code == 400
    assert client.patch(f"/api/templates/{created['id']}", json={"name": "y", "version": 1}).status_code == 200
    stale = client.patch(f"/api/templates/{created['id']}", json={"name": "z", "version": 1})
    assert stale.status_code == 409
    assert stale.get_json()["error"]["details"][0]["current"] == 2


def test_patch_null_is_refused(client):
    created = create(client)
    response = client.patch(f"/api/templates/{created['id']}", json={"name": None, "version": 1})
    assert response.status_code == 400


def test_two_concurrent_patches_with_one_version_give_one_200_and_one_409(function_client, db):
    created = create(function_client("templates"))

    def patch(name):
        client = function_client("templates")
        return client.patch(f"/api/templates/{created['id']}", json={"name": name, "version": 1})

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = sorted(r.status_code for r in pool.map(patch, ["A", "B"]))
    assert statuses == [200, 409]
    stored = db.collection("templates").document(created["id"]).get().to_dict()
    assert stored["version"] == 2 and stored["name"] in {"A", "B"}


def test_delete_with_stale_version_is_409_then_deletes(client, db):
    created = create(client)
    client.patch(f"/api/templates/{created['id']}", json={"name": "x", "version": 1})
    assert client.delete(f"/api/templates/{created['id']}", headers={"If-Match": '"1"'}).status_code == 409
    assert client.delete(f"/api/templates/{created['id']}?version=2").status_code == 200
    assert not db.collection("templates").document(created["id"]).get().exists
    assert client.delete(f"/api/templates/{created['id']}").status_code == 404


def test_bad_page_tokens_are_400(client):
    from shared import pagination

    for token in ["garbage!!", pagination.encode("lead-runs", {"x": 1}), pagination.encode("templates", {"createdAt": "no"})]:
        response = client.get("/api/templates", query_string={"pageToken": token})
        assert response.status_code == 400, token
        assert response.get_json()["error"]["details"][0]["field"] == "pageToken"
    assert client.get("/api/templates?pageSize=0").status_code == 400
    assert client.get("/api/templates?pageSize=101").status_code == 400
