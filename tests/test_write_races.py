"""The races of the jobs API and the template edits, forced rather than hoped for.

Each write is a compare-and-set commit (store/client.write_if_unchanged): a plain read,
checks, then a commit that lands only if the document is unchanged. Here a competing
write lands exactly between one request's read and its commit — the interleaving two
Cloud Functions instances produce now and then — and the request must see it: re-read,
check again, and answer as if it had come second. Without the update-time precondition
the edit, delete, pause and resume tests fail (the second write overwrites the first);
the competing start is held by create()'s own "must not exist" precondition.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from shared import auth
from shared.errors import Conflict
from shared.jobs import bodies
from shared.jobs import service as jobs
from shared.store import client as store_client
from shared.store import job_writes
from shared.store import runs as repo
from shared.templates import service as templates
from shared.templates.models import TemplateCreate, TemplatePatch
from tests.jobs_helpers import Captured, make_leads, make_template, start_request

RUN = "run-race"


@pytest.fixture
def between_read_and_commit(monkeypatch):
    """Arms `competitor` to run once, after the next compare-and-set's first read and
    checks and before its commit; the module under test calls write_if_unchanged by name
    (the jobs API's writes live in shared/store/job_writes.py)."""
    armed: list[Callable[[], Any]] = []
    real = store_client.write_if_unchanged

    def racing(db, ref, body, attempts=8):
        def body_then_compete(snapshot, batch, unchanged):
            result = body(snapshot, batch, unchanged)
            if armed:
                armed.pop()()
            return result

        return real(db, ref, body_then_compete, attempts)

    for module in (job_writes, templates):
        monkeypatch.setattr(module, "write_if_unchanged", racing)
    return armed.append


def new_template(db) -> str:
    fields = TemplateCreate(name="Intro", subject="Hi {{firstName}}", body="Hello {{firstName}}")
    return templates.create(db, fields).id


def control(db, action, run_id=RUN):
    return jobs.post(db, run_id, bodies.parse_request({"action": action}), dispatcher=Captured())


def test_a_template_edit_that_loses_the_race_is_409_and_keeps_the_winner(db, between_read_and_commit):
    template_id = new_template(db)
    between_read_and_commit(lambda: templates.update(db, template_id, TemplatePatch(name="First"), 1, replace=False))
    with pytest.raises(Conflict) as caught:
        templates.update(db, template_id, TemplatePatch(name="Second"), 1, replace=False)
    assert caught.value.details == [{"field": "version", "expected": 1, "current": 2}]
    stored = db.collection("templates").document(template_id).get().to_dict()
    assert stored["name"] == "First" and stored["version"] == 2


def test_a_delete_of_the_version_just_edited_away_is_409_and_deletes_nothing(db, between_read_and_commit):
    template_id = new_template(db)
    between_read_and_commit(lambda: templates.update(db, template_id, TemplatePatch(name="Edited"), 1, replace=False))
    with pytest.raises(Conflict):
        templates.delete(db, template_id, 1)
    assert db.collection("templates").document(template_id).get().to_dict()["name"] == "Edited"


def test_a_pause_that_meets_a_cancel_is_409_and_the_job_stays_cancelled(db, between_read_and_commit):
    make_template(db)
    jobs.post(db, RUN, bodies.parse_request(start_request(make_leads(3))), dispatcher=Captured())
    between_read_and_commit(lambda: control(db, "cancel"))
    with pytest.raises(Conflict) as caught:
        control(db, "pause")
    assert "cancelled" in str(caught.value)
    job = repo.get_job(db, RUN)
    assert job["status"] == "cancelled" and job["workerTokenHash"] is None
    assert repo.get_run(db, RUN)["status"] == "cancelled"


def test_two_resumes_at_once_leave_one_token_and_one_lease(db, between_read_and_commit):
    make_template(db)
    jobs.post(db, RUN, bodies.parse_request(start_request(make_leads(3))), dispatcher=Captured())
    control(db, "pause")
    first = Captured()
    between_read_and_commit(lambda: jobs.post(db, RUN, bodies.parse_request({"action": "resume"}), dispatcher=first))
    second = Captured()
    with pytest.raises(Conflict, match="running"):  # it re-read a job the first resume set running
        jobs.post(db, RUN, bodies.parse_request({"action": "resume"}), dispatcher=second)
    job = repo.get_job(db, RUN)
    assert [(auth.worker_token_hash(token), owner) for _, token, owner in first.calls] == [
        (job["workerTokenHash"], job["lease"]["owner"])
    ]
    assert second.calls == []


def test_a_different_start_that_loses_the_claim_is_409_and_writes_no_lead(db, between_read_and_commit):
    make_template(db)
    winner = start_request(make_leads(2), batchSize=7)
    between_read_and_commit(
        lambda: jobs.post(db, RUN, bodies.parse_request(winner), dispatcher=Captured())
    )
    with pytest.raises(Conflict):
        jobs.post(db, RUN, bodies.parse_request(start_request(make_leads(5))), dispatcher=Captured())
    assert repo.get_job(db, RUN)["config"]["batchSize"] == 7
    assert repo.get_run(db, RUN)["totalLeads"] == 2
    assert len(list(repo.leads(db, RUN).stream())) == 2
