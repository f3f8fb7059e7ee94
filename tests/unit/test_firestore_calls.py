"""Every Firestore call in shared/ and functions/ passes `retry=` and `timeout=` (issue 15).

A call without them takes the library's defaults: a read retries an unreachable Firestore
for up to 300 s, a commit for 60 s, instead of answering 503 within
FIRESTORE_DEADLINE_SECONDS. shared/store/client.read_args()/commit_args() are the bounds;
this scan fails when a new call forgets them.

What the scan counts as a Firestore call (a syntactic heuristic, no types):
- `.commit()`, `.stream()`, `.get_all()`, `.list_documents()`, `.collections()` on anything;
- `.get()` with no positional argument (document, query and aggregation reads;
  `dict.get` always has one); receivers named in NOT_FIRESTORE are skipped;
- `.create/.set/.update/.delete()` on something named like a document reference: a
  name or attribute ending in `ref`, or the result of a `*ref(...)` or `.document(...)`
  call.
Such a call passes with both `retry=` and `timeout=` keywords, or a `**` expansion.
Not seen: a reference held under another kind of name (`doc.set(...)`), or a call through
an alias of the method. A batch's create/set/update/delete send nothing (its commit does).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALWAYS = {"commit", "stream", "get_all", "list_documents", "collections"}
WRITES = {"create", "set", "update", "delete"}
# Zero-argument .get() receivers that are not Firestore: receipts.py's ContextVar.
NOT_FIRESTORE = {"_tallies"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _looks_like_a_reference(receiver: ast.AST) -> bool:
    if isinstance(receiver, ast.Call):
        called = _name(receiver.func)
        return called == "document" or called.lower().endswith("ref")
    return _name(receiver).lower().endswith("ref")


def _is_firestore_call(call: ast.Call) -> bool:
    if not isinstance(call.func, ast.Attribute):
        return False
    method, receiver = call.func.attr, call.func.value
    if method in ALWAYS:
        return True
    if method == "get":
        return not call.args and _name(receiver) not in NOT_FIRESTORE
    return method in WRITES and _looks_like_a_reference(receiver)


def _is_bounded(call: ast.Call) -> bool:
    keywords = {keyword.arg for keyword in call.keywords}
    return None in keywords or {"retry", "timeout"} <= keywords


def unbounded_calls(source: str) -> list[tuple[int, str]]:
    """(line, source text) of each Firestore call in `source` without retry=/timeout=."""
    return [
        (node.lineno, ast.get_source_segment(source, node) or "")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and _is_firestore_call(node) and not _is_bounded(node)
    ]


def test_every_firestore_call_in_shared_and_functions_is_bounded():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text.splitlines()[0]}"
        for folder in ("shared", "functions")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in unbounded_calls(path.read_text())
    ]
    assert not found, "pass **read_args() or **commit_args() (shared/store/client.py):\n" + "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "ref.get()",
    "ref.get(field_paths=['status'])",
    "runs.job_ref(db, run_id).get(retry=retry)",
    "db.get_all(refs)",
    "query.limit(5).stream()",
    "query.count().get()",
    "batch.commit()",
    "batch.commit(timeout=2)",
    "lead_ref(db, 'r', 'l').create({'a': 1})",
    "db.collection('c').document('d').set({'a': 1})",
    "self.receipt_ref.update({'a': 1})",
    "ref.delete()",
    "collection.list_documents()",
])
def test_the_scan_flags_a_call_that_forgot_its_bounds(snippet):
    assert [line for line, _ in unbounded_calls(snippet)] == [1]


@pytest.mark.parametrize("snippet", [
    "ref.get(**read_args())",
    "ref.get(field_paths=['status'], retry=r, timeout=2)",
    "batch.commit(**commit_args())",
    "lead_ref(db, 'r', 'l').create({'a': 1}, **commit_args())",
    "settings.get('key')",
    "updates.update({'a': 1})",
    "batch.set(ref, {'a': 1})",
    "_tallies.get()",
])
def test_the_scan_passes_bounded_calls_and_what_is_not_firestore(snippet):
    assert unbounded_calls(snippet) == []
