"""firestore.indexes.json lists an index for every composite query the receipts read model makes.

The emulator serves any query without an index; production refuses one whose
composite index is missing (FAILED_PRECONDITION). So each query is built here
exactly as shared/store/receipts.py builds it, the index it needs is derived from
the query Firestore would receive, and that index must be in the file.
"""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.types import StructuredQuery

from shared.store import receipts as store
from tools.localstack import ROOT

EQUALITY = {StructuredQuery.FieldFilter.Operator.EQUAL, StructuredQuery.FieldFilter.Operator.IN,
            StructuredQuery.FieldFilter.Operator.ARRAY_CONTAINS}


def _db() -> firestore.Client:
    return firestore.Client(project="demo-index-check", credentials=AnonymousCredentials())


def queries():
    db = _db()
    return {
        "runs, first page": store.runs_query(db, 21, None),
        "leads, first page": store.leads_query(db, "r", 51, None, None),
        "leads, next page": store.leads_query(db, "r", 51, (49, "lead-000049"), None),
        "leads of one status": store.leads_query(db, "r", 51, (49, "lead-000049"), "failed"),
        "actions of a range of leads": store.actions_query(db, "r", first=0, last=49),
        "actions of scattered leads": store.actions_query(db, "r", indexes=[3, 90, 400]),
    }


def _field_filters(where) -> list:
    if where._pb.HasField("composite_filter"):
        return [f for sub in where.composite_filter.filters for f in _field_filters(sub)]
    if where._pb.HasField("field_filter"):
        return [where.field_filter]
    return []


def required_index(query) -> dict | None:
    """(collection, scope, equality fields, then ordered fields) or None when single-field indexes serve it."""
    proto = query._to_protobuf()
    filters = _field_filters(proto.where) if proto._pb.HasField("where") else []
    equality = {f.field.field_path for f in filters if f.op in EQUALITY}
    ordered = [(o.field.field_path, "DESCENDING" if o.direction == StructuredQuery.Direction.DESCENDING else "ASCENDING")
               for o in proto.order_by if o.field.field_path != "__name__"]
    for f in filters:  # an inequality orders by its field first when no order_by names it
        if f.op not in EQUALITY and f.field.field_path not in [name for name, _ in ordered]:
            ordered.insert(0, (f.field.field_path, "ASCENDING"))
    scope = "COLLECTION_GROUP" if proto.from_[0].all_descendants else "COLLECTION"
    fields = equality | {name for name, _ in ordered}
    if len(fields) <= 1 and scope == "COLLECTION":
        return None
    return {"collectionGroup": proto.from_[0].collection_id, "queryScope": scope,
            "equality": equality, "ordered": ordered}


def serves(index: dict, need: dict) -> bool:
    if (index["collectionGroup"], index["queryScope"]) != (need["collectionGroup"], need["queryScope"]):
        return False
    fields = [(f["fieldPath"], f.get("order")) for f in index["fields"]]
    head, tail = fields[: len(need["equality"])], fields[len(need["equality"]):]
    return {name for name, _ in head} == need["equality"] and tail == need["ordered"]


def test_firebase_json_deploys_the_index_file():
    assert json.loads((ROOT / "firebase.json").read_text())["firestore"]["indexes"] == "firestore.indexes.json"


@pytest.mark.parametrize("name", list(queries()))
def test_every_composite_query_has_its_index(name):
    need = required_index(queries()[name])
    if need is None:
        return  # Firestore's automatic single-field indexes serve it
    declared = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    assert any(serves(index, need) for index in declared), f"{name} needs {need}: add it to firestore.indexes.json"


def test_the_check_itself_sees_the_composite_queries():
    needs = {name: required_index(q) for name, q in queries().items()}
    assert needs["runs, first page"] is None and needs["leads, next page"] is None
    assert needs["leads of one status"] == {
        "collectionGroup": "leads", "queryScope": "COLLECTION", "equality": {"status"}, "ordered": [("index", "ASCENDING")]}
    assert needs["actions of a range of leads"]["ordered"] == [("leadIndex", "ASCENDING")]
    assert needs["actions of scattered leads"]["equality"] == {"runId", "leadIndex"}
