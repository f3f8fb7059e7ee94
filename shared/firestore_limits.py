"""What Firestore refuses to store, checked before anything is written.

A value Firestore refuses fails the write that carries it; if that write comes
after others (a start claims its job before it writes its leads), the request
ends half-done. So every free-form value the API stores is checked here, at
the edge, and refused with a 400 that names its path.

The rules and numbers come from two pages of Google's documentation, and each
was confirmed against the Firestore emulator (tests/unit/test_firestore_limits.py):
- "Quotas and limits", Collections, documents, and fields
  (https://cloud.google.com/firestore/quotas): integers are signed 64-bit; field
  names may not be empty or match `__.*__`; a field name and a field path are at
  most 1,500 bytes; a field value at most 1 MiB - 89 bytes; maps and arrays nest
  at most 20 deep; a document is at most 1 MiB.
- "Storage size calculations" (https://cloud.google.com/firestore/docs/storage-size):
  a string is its UTF-8 bytes + 1; a number, timestamp 8; a boolean, null 1; a map
  the sum of its field names and values; an array the sum of its values; a
  document its name + its fields + 32.
An array directly inside an array is refused too ("Cannot convert an array value
in an array value"). Indexed strings longer than 1,500 bytes are not refused
(the index keeps their first 1,500 bytes); the free-form maps are exempt from
indexing anyway (firestore.indexes.json), so no index-entry limit applies to them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Iterator, NamedTuple

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DOCUMENT_BYTES = 1_048_576
MAX_VALUE_BYTES = 1_048_487
MAX_FIELD_NAME_BYTES = 1_500
MAX_FIELD_PATH_BYTES = 1_500
MAX_DEPTH = 20
DOCUMENT_OVERHEAD = 32
NAME_OVERHEAD = 16


class Problem(NamedTuple):
    path: tuple[str | int, ...]
    message: str

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)


def is_reserved(name: str) -> bool:
    return len(name) >= 4 and name.startswith("__") and name.endswith("__")


def string_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1


def value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, dt.datetime)):
        return 8
    if isinstance(value, str):
        return string_size(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(string_size(str(key)) + value_size(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return sum(value_size(item) for item in value)
    return 8  # transforms such as SERVER_TIMESTAMP or Increment store a timestamp or a number


def document_size(path: str, data: dict[str, Any]) -> int:
    """`path` is the document's path ("runs/r1/leads/abc"), as the size of its name counts."""
    name = sum(string_size(part) for part in path.split("/")) + NAME_OVERHEAD
    return name + value_size(data) + DOCUMENT_OVERHEAD


def problems(value: Any, path: tuple[str | int, ...] = (), depth: int = -1) -> Iterator[Problem]:
    """Everything in `value` Firestore would refuse. `path` is where `value` sits in its
    document (its field path so far) and `depth` how many maps and arrays hold it there
    (the default, -1, is the document itself)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield Problem(path, "is outside Firestore's signed 64-bit integer range")
        return
    if isinstance(value, str):
        if string_size(value) - 1 > MAX_VALUE_BYTES:
            yield Problem(path, f"is longer than Firestore's {MAX_VALUE_BYTES} bytes for one value")
        return
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            yield Problem(path, f"nests maps and arrays more than {MAX_DEPTH} deep")
            return
        if value_size(value) > MAX_VALUE_BYTES:
            yield Problem(path, f"is larger than Firestore's {MAX_VALUE_BYTES} bytes for one value")
            return
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            where = (*path, key)
            if not key:
                yield Problem(where, "an empty field name cannot be stored")
            elif is_reserved(key):
                yield Problem(where, "field names of the form __name__ are reserved by Firestore")
            elif string_size(key) - 1 > MAX_FIELD_NAME_BYTES:
                yield Problem(where, f"the field name is longer than {MAX_FIELD_NAME_BYTES} bytes")
            elif _path_bytes(where) > MAX_FIELD_PATH_BYTES:
                yield Problem(where, f"the field path is longer than {MAX_FIELD_PATH_BYTES} bytes")
            else:
                yield from problems(item, where, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, (list, tuple)):
                yield Problem((*path, index), "an array cannot directly hold an array in Firestore")
            else:
                yield from problems(item, (*path, index), depth + 1)


def _path_bytes(path: tuple[str | int, ...]) -> int:
    # Array positions are not part of a field path; map keys are, joined by dots.
    names = [part for part in path if isinstance(part, str)]
    return sum(string_size(name) - 1 for name in names) + max(0, len(names) - 1)


def storable(stored_as: str) -> Any:
    """Annotated[..., storable("fields")]: the value is stored as the top-level field
    `stored_as` of its document; a value Firestore would refuse is a validation error
    whose context carries its `subpath`, which the error details append to the field's
    location ("leads.3.fields.__x__")."""

    def check(value: Any) -> Any:
        for problem in problems(value, (stored_as,), depth=0):
            raise PydanticCustomError(
                "firestore_value", "{reason}", {"reason": problem.message, "subpath": list(problem.path[1:])}
            )
        return value

    return AfterValidator(check)


StorableText = Annotated[str, storable("text")]
