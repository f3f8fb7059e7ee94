"""Helpers shared by the jobs tests: templates, leads and what the emulator holds."""

from __future__ import annotations

from typing import Any

from shared.jobs import bodies, service
from shared.store import runs as repo

SUBJECT = "Hi {{firstName}}"
BODY = "Hello {{firstName}} at {{company}}"


def make_template(db, template_id: str = "tpl-1", draft_first: bool = False, **fields: Any) -> str:
    db.collection("templates").document(template_id).set({
        "name": "Intro", "channel": "email", "subject": SUBJECT, "body": BODY,
        "draftFirst": draft_first, "version": 1, **fields,
    })
    return template_id


def make_leads(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [{"email": f"lead{i}@example.com", "firstName": f"Lead{i}", "company": "Acme", **overrides} for i in range(count)]


def start_request(leads=None, mode="background", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"action": "start", "mode": mode, "config": {"templateId": "tpl-1", **config}}
    if leads is not None:
        body["leads"] = leads
    return body


class Captured:
    """A dispatcher that records hand-offs instead of making HTTP calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, run_id: str, token: str, lease: str) -> bool:
        self.calls.append((run_id, token, lease))
        return True


def start_background(db, run_id: str, leads, **config: Any) -> Captured:
    captured = Captured()
    service.post(db, run_id, bodies.parse_request(start_request(leads, **config)), dispatcher=captured)
    return captured


def docs(db, collection: str) -> list[dict[str, Any]]:
    return [{"id": s.id, **s.to_dict()} for s in db.collection(collection).stream()]


def job(db, run_id: str) -> dict[str, Any]:
    return repo.get_job(db, run_id)


def all_leads(db, run_id: str) -> list[dict[str, Any]]:
    return sorted(({"id": s.id, **s.to_dict()} for s in repo.leads(db, run_id).stream()), key=lambda d: d["index"])


def everything(db) -> list[str]:
    """Every document path in the emulator, for 'nothing was written' checks."""
    paths = []

    def walk(collection):
        for snapshot in collection.stream():
            paths.append(snapshot.reference.path)
            for child in snapshot.reference.collections():
                walk(child)

    for collection in db.collections():
        walk(collection)
    return sorted(paths)


def assert_error(response, status: int, field: str | None = None) -> dict:
    """The error envelope of a Flask test-client `response` with `status`, naming `field` if given."""
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    if field is not None:
        assert field in [d.get("field") for d in error["details"]], error
    return error
