"""The receipts read model's pure parts: views of stored documents, staleness, page planning."""

from __future__ import annotations

import datetime as dt

import pytest

from shared import pagination
from shared.errors import InvalidArgument
from shared.jobs import state
from shared.receipts import service
from shared.receipts.models import ReceiptsQuery, RunsQuery

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
TOKEN = "wt-never-copied"


def test_job_view_copies_only_named_fields():
    doc = {
        "status": "running", "nextIndex": 7, "totalLeads": 10, "workerToken": TOKEN,
        "attemptsByLead": {"lead-000001": 2}, "lease": {"owner": TOKEN, "expiresAt": NOW},
        "config": {"templateId": "t", "batchSize": 5, "apiKey": TOKEN}, "somethingNew": TOKEN,
        "diagnostics": [{"at": NOW, "code": "x", "message": "m", "leadIndex": 1, "leadDocId": "lead-000001", "extra": TOKEN}],
    }
    dumped = service.job_view(doc, NOW, 120).model_dump_json(by_alias=True)
    assert TOKEN not in dumped
    assert '"leaseExpiresAt":"2026-03-01T12:00:00.000000Z"' in dumped


def test_views_tolerate_missing_and_mistyped_fields():
    run = service.run_view({"id": "r1", "totalLeads": "many", "counts": {"sent": 2, "failed": True}, "createdAt": "nope"})
    assert run.name == "r1" and run.status == "idle" and run.total_leads == 0
    assert run.counts.sent == 2 and run.counts.failed == 0 and run.created_at is None
    job = service.job_view({"diagnostics": ["not a map", {"code": 3}], "config": "x"}, NOW, 120)
    assert job.status == "queued" and len(job.diagnostics) == 1 and job.diagnostics[0].code is None
    lead = service.lead_view({"id": "lead-000000", "index": 0, "fields": {"when": NOW, "n": [1, {"x": NOW}]}}, [])
    assert lead.fields == {"when": "2026-03-01T12:00:00.000000Z", "n": [1, {"x": "2026-03-01T12:00:00.000000Z"}]}
    assert lead.status == "pending" and lead.email == "" and lead.last_error is None


def test_timestamps_are_rfc3339_utc():
    paris = dt.timezone(dt.timedelta(hours=1))
    run = service.run_view({"id": "r", "createdAt": dt.datetime(2026, 3, 1, 13, 0, tzinfo=paris),
                            "updatedAt": "2026-03-01T13:00:00+01:00"})
    assert run.created_at == run.updated_at == "2026-03-01T12:00:00.000000Z"


@pytest.mark.parametrize("job, stalled", [
    ({"status": "running", "lease": {"expiresAt": NOW - dt.timedelta(seconds=31)}}, True),   # grace: 120 / 4
    ({"status": "running", "lease": {"expiresAt": NOW - dt.timedelta(seconds=29)}}, False),
    ({"status": "running", "lease": {"expiresAt": NOW + dt.timedelta(minutes=1)}}, False),
    ({"status": "queued", "lease": {"expiresAt": NOW - dt.timedelta(minutes=1)}}, True),
    ({"status": "running", "lease": None, "updatedAt": NOW - dt.timedelta(seconds=151)}, True),
    ({"status": "running", "lease": None, "updatedAt": NOW - dt.timedelta(seconds=149)}, False),
    ({"status": "running"}, True),
    ({"status": "paused", "lease": {"expiresAt": NOW - dt.timedelta(hours=1)}}, False),
    ({"status": "completed"}, False),
])
def test_stalled_means_active_with_nobody_making_progress(job, stalled):
    assert state.is_stalled(job, NOW, lease_seconds=120) is stalled


def test_actions_newest_first_undated_last():
    docs = [{"id": "a", "at": NOW}, {"id": "b"}, {"id": "c", "at": NOW + dt.timedelta(seconds=1)}, {"id": "d", "at": NOW}]
    assert [d["id"] for d in service.newest_first(docs)] == ["c", "d", "a", "b"]


@pytest.mark.parametrize("indexes, keep, plan", [
    ([0], 1, {"first": 0, "last": 0}),
    (list(range(100, 200)), 100, {"first": 100, "last": 199}),
    ([0, 2, 4, 6], 4, {"first": 0, "last": 6}),              # half dense: a range reads at most twice
    ([0, 500], 2, {"indexes": [0, 500]}),
    (list(range(0, 1000, 10)), 30, {"indexes": list(range(0, 300, 10))}),
])
def test_plan_reads_a_range_when_dense_and_at_most_30_named_leads_when_scattered(indexes, keep, plan):
    assert service.plan_actions_read(indexes) == (keep, plan)


def test_receipts_tokens_are_scoped_to_run_and_filter():
    assert len({service.receipts_scope("a", None), service.receipts_scope("b", None),
                service.receipts_scope("a", "failed"), service.RUNS_SCOPE}) == 4
    token = pagination.encode(service.receipts_scope("a", "failed"), {"index": 1, "id": "lead-000001"})
    with pytest.raises(InvalidArgument):
        pagination.decode(token, service.receipts_scope("a", None))


def test_query_defaults_and_synonyms():
    assert RunsQuery.model_validate({}).size == 20
    assert RunsQuery.model_validate({"limit": "7"}).size == 7
    assert RunsQuery.model_validate({"pageSize": "8"}).size == 8
    assert ReceiptsQuery.model_validate({}).size == 50
    assert ReceiptsQuery.model_validate({"pageSize": "", "status": ""}).status is None
