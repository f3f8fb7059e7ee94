"""/api/suppressions and /u/{token} through functions-framework's real app, against the emulator."""

from __future__ import annotations

import pytest

from shared.consent import gate, keys
from shared.store import suppressions as store


@pytest.fixture
def client(function_client):
    return function_client("consent")


def add(client, **body):
    response = client.post("/api/suppressions", json=body)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def test_add_email_is_stored_normalised_under_a_hash(client, db):
    created = client.post("/api/suppressions", json={"email": "  Ann@Example.COM ", "reason": "asked"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["value"] == "ann@example.com" and body["kind"] == "email" and body["reason"] == "asked"
    assert body["id"] == keys.email_id("ann@example.com") and "ann" not in body["id"]
    assert db.collection("suppressions").document(body["id"]).get().get("value") == "ann@example.com"
    assert db.collection("contacts").document(body["id"]).get().get("suppressed") is True


def test_adding_again_is_200_with_the_first_entry(client):
    first = add(client, email="bob@example.com", reason="first")
    again = client.post("/api/suppressions", json={"email": "BOB@example.com", "reason": "second"})
    assert again.status_code == 200 and again.get_json() == first


def test_add_domain_strips_at_and_lowercases(client):
    body = add(client, domain="@Spam.Example")
    assert body["kind"] == "domain" and body["value"] == "spam.example" and body["id"] == keys.domain_id("spam.example")


@pytest.mark.parametrize("payload, field", [
    ({}, "(body)"),
    ({"email": "a@b.co", "domain": "b.co"}, "(body)"),
    ({"email": "not-an-address"}, "email"),
    ({"domain": "no spaces.com"}, "domain"),
    ({"email": 5}, "email"),
    ({"email": "a@b.co", "extra": 1}, "extra"),
    ({"email": "a@b.co", "reason": "x" * 501}, "reason"),
])
def test_bad_suppression_is_400_naming_the_field_and_writes_nothing(client, db, payload, field):
    response = client.post("/api/suppressions", json=payload)
    assert response.status_code == 400, response.get_json()
    assert field in [d["field"] for d in response.get_json()["error"]["details"]]
    assert list(db.collection("suppressions").stream()) == []


def test_non_json_is_415(client):
    assert client.post("/api/suppressions", data="email=a@b.co", content_type="text/plain").status_code == 415


def test_list_is_newest_first_and_pages_without_gaps(client):
    for i in range(7):
        add(client, email=f"p{i}@example.com")
    seen, token = [], None
    while True:
        page = client.get("/api/suppressions", query_string={"pageSize": 3, **({"pageToken": token} if token else {})}).get_json()
        seen += [s["value"] for s in page["suppressions"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert seen == [f"p{i}@example.com" for i in reversed(range(7))]


def test_search_by_prefix(client):
    for value in ["alice@a.example", "alex@b.example", "bob@a.example"]:
        add(client, email=value)
    add(client, domain="al.example")
    page = client.get("/api/suppressions", query_string={"q": "AL", "pageSize": 2}).get_json()
    values = [s["value"] for s in page["suppressions"]]
    nxt = client.get("/api/suppressions", query_string={"q": "al", "pageSize": 2, "pageToken": page["nextPageToken"]}).get_json()
    assert values + [s["value"] for s in nxt["suppressions"]] == ["al.example", "alex@b.example", "alice@a.example"]
    assert nxt["nextPageToken"] is None


def test_bad_list_queries_are_400(client):
    for query in [{"pageSize": 0}, {"pageSize": "x"}, {"pageToken": "garbage!!"}, {"q": ""}]:
        assert client.get("/api/suppressions", query_string=query).status_code == 400, query
    token = client.get("/api/suppressions", query_string={"q": "a"}).get_json()["nextPageToken"]
    assert token is None


def test_delete_removes_the_entry_and_clears_the_contact(client, db):
    body = add(client, email="gone@example.com")
    assert client.delete(f"/api/suppressions/{body['id']}").status_code == 200
    assert client.get("/api/suppressions").get_json()["suppressions"] == []
    assert db.collection("contacts").document(body["id"]).get().get("suppressed") is False
    assert client.delete(f"/api/suppressions/{body['id']}").status_code == 404
    assert client.delete("/api/suppressions/..%2F..").status_code in (400, 404)


def test_csv_import_keeps_good_rows_and_reports_bad_ones_by_line(client):
    csv_text = "email\nOne@Example.com\n\nnot an address\ntwo@example.com,extra\nexample.org\none@example.com\n"
    response = client.post("/api/suppressions:import", data=csv_text, content_type="text/csv")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["added"] == 2 and result["already"] == 1
    assert [(r["line"], r["value"]) for r in result["rejected"]] == [(4, "not an address"), (5, "two@example.com,extra")]
    values = sorted(s["value"] for s in client.get("/api/suppressions").get_json()["suppressions"])
    assert values == ["example.org", "one@example.com"]
    again = client.post("/api/suppressions:import", json={"csv": "one@example.com\nthree@example.com", "reason": "list"})
    assert again.get_json()["added"] == 1 and again.get_json()["already"] == 1


def test_csv_import_bad_bodies(client):
    assert client.post("/api/suppressions:import", json={"csv": 3}).status_code == 400
    assert client.post("/api/suppressions:import", json={}).status_code == 400
    assert client.post("/api/suppressions:import", data=b"\xff\xfe", content_type="text/csv").status_code == 415
    assert client.post("/api/suppressions:import", data="a@b.co", content_type="text/plain").status_code == 415


def test_every_list_endpoint_needs_a_token_when_auth_is_on(client, configure):
    configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com")
    assert client.get("/api/suppressions").status_code == 401
    assert client.post("/api/suppressions", json={"email": "a@b.co"}).status_code == 401
    assert client.post("/api/suppressions:import", json={"csv": "a@b.co"}).status_code == 401
    assert client.delete("/api/suppressions/abc").status_code == 401


# --- one-click unsubscribe -------------------------------------------------------------


def token_for(db, address="reader@example.com", run_id="run-1", lead_id="lead-000000"):
    token = gate.new_token()
    batch = db.batch()
    gate.queue_token(db, batch, token, address, {"id": lead_id, "index": 0}, run_id)
    batch.commit()
    return token


def test_get_shows_a_confirmation_page_and_does_not_unsubscribe(client, db):
    token = token_for(db)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert 'name="List-Unsubscribe" value="One-Click"' in text and "r***@example.com" in text
    assert list(db.collection("suppressions").stream()) == []


def test_one_click_post_suppresses_idempotently_without_sign_in(client, db, configure):
    configure(AUTH_MODE="firebase", AUTH_ALLOWED_DOMAINS="example.com")
    token = token_for(db)
    for _ in range(2):
        response = client.post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
    entries = list(db.collection("suppressions").stream())
    assert [e.get("value") for e in entries] == ["reader@example.com"] and entries[0].get("source") == "unsubscribe"
    receipt = db.document("lead_runs/run-1/leads/lead-000000/actions/email-unsubscribe").get()
    assert receipt.get("type") == "email.unsubscribe" and receipt.get("runId") == "run-1"
    assert gate.check(db, "reader@example.com").skip_reason == gate.SUPPRESSED


def test_one_click_multipart_form_is_accepted(client, db):
    token = token_for(db)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert len(list(db.collection("suppressions").stream())) == 1


@pytest.mark.parametrize("path", ["/u/nope", "/u/" + "a" * 40, "/u/..", "/u/%00", "/u/" + "x" * 300])
def test_unknown_or_malformed_token_is_a_404_page(client, path):
    for response in (client.get(path), client.post(path, data="List-Unsubscribe=One-Click",
                                                   content_type="application/x-www-form-urlencoded")):
        assert response.status_code == 404, (path, response.status_code)


def test_post_without_the_one_click_body_changes_nothing(client, db):
    token = token_for(db)
    response = client.post(f"/u/{token}", data="x=y", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert list(db.collection("suppressions").stream()) == []
    assert store.get_token(db, token)["email"] == "reader@example.com"


def test_concurrent_adds_of_one_address_create_it_once(function_client, db):
    import concurrent.futures

    def post(_):
        return function_client("consent").post("/api/suppressions", json={"email": "race@example.com"}).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(post, range(4)))
    assert statuses == [200, 200, 200, 201]
    assert len(list(db.collection("suppressions").stream())) == 1
