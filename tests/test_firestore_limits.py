"""shared/firestore_limits.py agrees with the Firestore emulator: what it refuses, the
emulator refuses too, what it accepts is stored, and its document size is exact."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import firestore_limits as limits
from shared.telemetry.limits import bound_context


def nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


REFUSED = [
    {"f": 2**63},
    {"f": -(2**63) - 1},
    {"f": {"__x__": 1}},
    {"__name__": 1},
    {"f": nested(21)},
    {"f": [[1]]},
    {"f": [{"a": [[1]]}]},
    {"x" * 1501: 1},
    {"f": {"x" * 1499: 1}},  # the field path f.xxx… is 1,501 bytes
    {"f": "x" * (limits.MAX_VALUE_BYTES + 1)},
    {"a": "x" * 600_000, "b": "y" * 600_000},
]
ACCEPTED = [
    {"f": 2**63 - 1, "g": -(2**63)},
    {"f": {"_x_": 1, "__x": 2, "x__": 3, "___": 4}},
    {"f": nested(20)},
    {"f": [{"a": [1]}]},
    {"x" * 1500: 1},
    {"f": {"x" * 1498: 1}},
    {"f": "é" * 5_000},  # longer than an indexed string's 1,500 bytes: kept, not refused
]


def refused_by_emulator(db, data: dict) -> bool:
    try:
        db.collection("limits").document("probe").set(data)
    except (gexc.InvalidArgument, ValueError):
        return True
    return False


def refused_by_rules(path: str, data: dict) -> bool:
    return any(limits.problems(data)) or limits.document_size(path, data) > limits.MAX_DOCUMENT_BYTES


@pytest.mark.parametrize("data", REFUSED, ids=range(len(REFUSED)))
def test_what_the_rules_refuse_the_emulator_refuses(db, data):
    assert refused_by_rules("limits/probe", data)
    assert refused_by_emulator(db, data)


@pytest.mark.parametrize("data", ACCEPTED, ids=range(len(ACCEPTED)))
def test_what_the_rules_accept_the_emulator_stores(db, data):
    assert not refused_by_rules("limits/probe", data)
    assert not refused_by_emulator(db, data)


@pytest.mark.parametrize("inner", [False, True])
def test_document_size_follows_the_documented_calculation_to_the_byte(db, inner):
    """The largest document the emulator takes is exactly 1 MiB by the documented rules."""
    path = "limits/probe"

    def doc(pad: int) -> dict:
        tail = "y" * pad
        return {"a": "x" * 600_000, "b": {"c": tail, "d": 1} if inner else tail}

    base = limits.document_size(path, doc(0))
    largest = doc(limits.MAX_DOCUMENT_BYTES - base)
    assert limits.document_size(path, largest) == limits.MAX_DOCUMENT_BYTES
    assert not refused_by_emulator(db, largest)
    too_big = doc(limits.MAX_DOCUMENT_BYTES - base + 1)
    assert limits.document_size(path, too_big) == limits.MAX_DOCUMENT_BYTES + 1
    assert refused_by_emulator(db, too_big)


def test_problems_name_the_path_of_each_bad_value():
    found = [(p.dotted, p.message) for p in limits.problems({"a": {"__x__": 1, "ok": [1, 2**64]}}, ("fields",))]
    assert [path for path, _ in found] == ["fields.a.__x__", "fields.a.ok.1"]
    assert "reserved" in found[0][1] and "64-bit" in found[1][1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_telemetry_repairs_any_context_into_one_firestore_stores(context):
    # Telemetry keeps a crashing page's report, so it repairs rather than refuses,
    # by the same rules every other free-form map is refused by.
    bounded, _ = bound_context(context)
    assert list(limits.problems(bounded, ("context",))) == []


def test_the_free_form_maps_are_exempt_from_indexing():
    """So no index-entry limit (1,500 bytes an indexed string) applies to what they hold."""
    import json

    from tests.conftest import ROOT

    overrides = json.loads((ROOT / "firestore.indexes.json").read_text())["fieldOverrides"]
    exempt = {(o["collectionGroup"], o["fieldPath"]) for o in overrides if o["indexes"] == []}
    assert {("leads", "fields"), ("events", "context")} <= exempt


def test_the_largest_lead_the_model_accepts_fits_in_one_document():
    """The start's per-field limits keep every lead document under 1 MiB (its whole size,
    by the documented calculation), so no start can fail half-way on a document's size."""
    from shared.jobs import bodies, service

    widest = "\U0001F600"  # four UTF-8 bytes a character
    lead = bodies.LeadIn.model_validate({
        "email": widest * 320, "firstName": widest * 200, "lastName": widest * 200, "company": widest * 200,
        "timeZone": widest * 64,
        "fields": {f"f{i:02d}" + "x" * 60: widest * bodies.MAX_FIELD_CHARS for i in range(bodies.MAX_FIELDS)},
    })
    [(doc_id, document)] = service.lead_documents([lead])
    size = limits.document_size(f"lead_runs/{'r' * 128}/leads/{doc_id}", document)
    assert 400_000 < size < limits.MAX_DOCUMENT_BYTES
