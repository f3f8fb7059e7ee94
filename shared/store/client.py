"""The one Firestore client of an instance, created on first use (cold starts stay short)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from shared.retry import Exhausted, Policy
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")

# gRPC's default reconnect backoff (1 s x 1.6^n, up to 120 s) kept an instance answering
# 503 for ~13 s after a 30-60 s outage had ended; capped at 2 s it recovers in ~2 s.
# One reconnect attempt per 2 s per instance costs nothing.
RECONNECT_BACKOFF_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
# The firestore_v1 release whose private names tune_library_defaults() relies on, and
# whose default retries read_args()/commit_args() copy; tests/test_store_client.py fails
# loudly when the installed library is another one.
TUNED_FOR = "2.34.1"
# Markers of write_if_unchanged's commits; Firestore's TTL policy on `expireAt` deletes
# them (firestore.indexes.json), a day being far longer than any commit's retries.
WRITE_MARKERS = "write_markers"
MARKER_LIFETIME = dt.timedelta(days=1)


@functools.cache
def get_db() -> "firestore.Client":
    # FIRESTORE_EMULATOR_HOST, when set, is honoured by the client itself and
    # switches it to anonymous credentials.
    from google.cloud import firestore

    tune_library_defaults()
    return firestore.Client(project=get_settings().google_cloud_project)


def read_args() -> Mapping[str, Any]:
    """`retry=` and `timeout=` for every Firestore read: `ref.get(**read_args())`, also
    get_all, stream, an aggregation's get and list_documents."""
    return _bounded("read", get_settings().firestore_deadline_seconds)


def commit_args() -> Mapping[str, Any]:
    """`retry=` and `timeout=` for every commit: `batch.commit(**commit_args())`, also a
    reference's own create/set/update/delete (each is a one-write commit)."""
    return _bounded("commit", get_settings().firestore_deadline_seconds)


@functools.cache
def _bounded(kind: str, deadline: float) -> Mapping[str, Any]:
    """The library's own retry of `kind`, with its total capped at `deadline`.

    Left to its defaults the client retries an unreachable Firestore for up to 300 s per
    read (60 s per commit), so a request would hang until the function's own timeout
    instead of answering 503 + Retry-After. The library takes no client-wide default, so
    every call passes these (tests/unit/test_firestore_calls.py finds one that does not).
    What is retried, and the back-off (0.1 s x 1.3^n, at most 60 s), are the library's
    defaults of google-cloud-firestore's generated transport (TUNED_FOR): its streaming
    reads (BatchGetDocuments, RunQuery, RunAggregationQuery) retry DeadlineExceeded,
    InternalServerError and ServiceUnavailable; Commit retries only ResourceExhausted and
    ServiceUnavailable, never a DeadlineExceeded whose commit may have landed. Commit's
    ServiceUnavailable is kept on purpose: a re-sent commit whose first answer was lost
    is what MarkedBatch detects. `timeout` bounds each attempt by the time left.
    """
    from google.api_core import exceptions as gexc

    retry_on = {
        "read": (gexc.DeadlineExceeded, gexc.InternalServerError, gexc.ServiceUnavailable),
        "commit": (gexc.ResourceExhausted, gexc.ServiceUnavailable),
    }[kind]
    policy = Policy(f"a Firestore {kind}", retry_on=retry_on, initial=0.1, maximum=60.0, multiplier=1.3, timeout=deadline)
    return MappingProxyType({"retry": policy.retry, "timeout": deadline})


def tune_library_defaults() -> None:
    """The one place that reaches into google-cloud-firestore's internals (TUNED_FOR).

    firestore.Client takes neither channel options nor a transport: it builds its
    channel (emulator and production alike) from two module lists, so
    RECONNECT_BACKOFF_OPTIONS are added to them once, before the first client makes its
    channel. Measured (docs/reliability.md, finding 2): after a 30-60 s outage an
    instance answered 503 for ~13 s with gRPC's default reconnect backoff, ~2 s with
    this. The public per-call arguments (read_args, commit_args) cannot reach a channel
    option. The only other private use is read_masked_strings below.
    """
    from google.cloud.firestore_v1 import base_client

    for options in (base_client._GRPC_MSG_SIZE_OPTIONS, base_client._DEFAULT_CHANNEL_OPTIONS):
        options.extend(option for option in RECONNECT_BACKOFF_OPTIONS if option not in options)


def read_masked_strings(db: "firestore.Client", ref: Any, field_paths: tuple[str, ...]) -> dict[str, str | None] | None:
    """The string fields `field_paths` (dotted) of `ref`, None for one it lacks; None when
    `ref` does not exist. One unary GetDocument with a field mask: the second and last use
    of the library's internals (TUNED_FOR).

    The worker's pause check (runs.read_job_control) makes this read for every round of
    leads. The public DocumentReference.get(field_paths=...) is a streaming
    BatchGetDocuments that costs the client ~0.3-0.6 ms more CPU a read: at 5 ms each way
    the chain ran 1,000 leads at a median of 119.5 leads/s with it against 142.1 with
    this, slower in 8 of 10 back-to-back pairs (docs/jobs.md, "Issue 15, the pause
    check"). Falls back to that public read if the generated API is not where this
    expects it; tests/test_store_client.py fails loudly first.
    """
    api = getattr(db, "_firestore_api", None)
    if api is None or not hasattr(api, "get_document"):
        snapshot = ref.get(field_paths=list(field_paths), **read_args())
        return {path: _dig(snapshot.to_dict(), path) for path in field_paths} if snapshot.exists else None
    from google.api_core import exceptions as gexc

    try:
        document = api.get_document(
            request={"name": ref._document_path, "mask": {"field_paths": list(field_paths)}},
            metadata=getattr(db, "_rpc_metadata", ()),
            **read_args(),
        )
    except gexc.NotFound:
        return None
    found: dict[str, str | None] = {}
    for path in field_paths:
        *parents, leaf = path.split(".")
        fields = document.fields
        for parent in parents:
            fields = fields[parent].map_value.fields if parent in fields else {}
        found[path] = fields[leaf].string_value if leaf in fields else None
    return found


def _dig(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


class MarkedBatch:
    """A WriteBatch that proves whether it landed: it also creates write_markers/{id}.

    Firestore's client re-sends a commit whose answer was lost (UNAVAILABLE or
    RESOURCE_EXHAUSTED: commit_args(), the library's retry of Commit). When the first send had
    landed, the re-sent one fails its own preconditions, FailedPrecondition or
    AlreadyExists, exactly as if another writer had come first. The marker tells the two
    apart: a commit is atomic, so the marker exists if and only if every write of the
    batch landed. It is read only after such a failure (docs/reliability.md, "Lost
    commit answers").
    """

    def __init__(self, db: "firestore.Client"):
        self._batch = db.batch()
        self.marker = db.collection(WRITE_MARKERS).document(uuid.uuid4().hex)

    def create(self, reference: Any, document_data: dict[str, Any]) -> None:
        self._batch.create(reference, document_data)

    def set(self, reference: Any, document_data: dict[str, Any], merge: Any = False) -> None:
        self._batch.set(reference, document_data, merge=merge)

    def update(self, reference: Any, field_updates: dict[str, Any], option: Any = None) -> None:
        self._batch.update(reference, field_updates, option=option)

    def delete(self, reference: Any, option: Any = None) -> None:
        self._batch.delete(reference, option=option)

    def __len__(self) -> int:
        return len(self._batch)

    def commit(self, *, retry: Any, timeout: float) -> list[Any]:
        """Commits the writes and the marker; FailedPrecondition/AlreadyExists as the batch would.

        `retry`/`timeout` are required, as at every commit: `commit(**commit_args())`.
        """
        from shared import clock

        self._batch.create(self.marker, {"expireAt": clock.now() + MARKER_LIFETIME})
        return self._batch.commit(retry=retry, timeout=timeout)

    def landed(self) -> bool:
        """After a failed commit: did an earlier send of this very commit land?"""
        return self.marker.get(**read_args()).exists


class _Raced(Exception):
    """Another writer changed `ref` between write_if_unchanged's read and its commit."""


# Contenders that collided spread apart: 20 ms, 40 ms, ... of random pause.
CONFLICTING_WRITES = Policy("a compare-and-set write that met another writer", retry_on=(_Raced,), initial=0.02, maximum=60.0)


def write_if_unchanged(
    db: "firestore.Client", ref: Any, body: Callable[[Any, Any, Any], T], attempts: int = 8
) -> T:
    """A lock-free read-modify-write of `ref`.

    A plain read, then `body(snapshot, batch, unchanged)` queues writes on `batch`; they
    commit together only if `ref` is still as it was read: `unchanged` is the precondition
    for the batch's writes of `ref` (None when it did not exist: `body` creates it). Another
    writer first means FailedPrecondition, or AlreadyExists when `ref` did not exist, and it
    is read and done again, as a transaction would retry. AlreadyExists while `ref` existed
    comes from another document `body` creates, and is the caller's to handle.
    A commit that landed but whose answer was lost (the client re-sent it, and the copy
    failed on the first one's effects) is this call's success, not a competitor's:
    MarkedBatch tells them apart.

    Why not a transaction: a transaction's reads lock the document until it commits, and
    a process killed in between leaves the lock for Firestore to expire 60 s later; every
    write to that document waits until then (docs/reliability.md, finding 3). A batch
    holds no lock, so a worker killed mid-write leaves nothing behind.
    """
    from google.api_core import exceptions as gexc

    def once() -> T:
        snapshot = ref.get(**read_args())
        batch = MarkedBatch(db)
        unchanged = db.write_option(last_update_time=snapshot.update_time) if snapshot.exists else None
        result = body(snapshot, batch, unchanged)
        if not len(batch):
            return result
        try:
            batch.commit(**commit_args())
        except (gexc.FailedPrecondition, gexc.AlreadyExists) as exc:
            if batch.landed():
                return result
            if isinstance(exc, gexc.AlreadyExists) and snapshot.exists:
                raise
            raise _Raced() from exc
        return result

    try:
        return CONFLICTING_WRITES.call(once, attempts=attempts)
    except Exhausted:
        raise gexc.Aborted(f"{ref.path} kept changing during {attempts} attempts to update it") from None


def as_dict(snapshot: Any) -> dict[str, Any] | None:
    """A snapshot as {"id", **fields}, or None when the document does not exist."""
    return {"id": snapshot.id, **snapshot.to_dict()} if snapshot.exists else None


def queue_replace(batch: Any, ref: Any, existing: dict[str, Any] | None, document: dict[str, Any], unchanged: Any) -> None:
    """What `batch.set(ref, document)` does, under write_if_unchanged's precondition.

    set() takes no precondition, so: create when there was nothing (a concurrent creator
    makes write_if_unchanged read and redo), else update every field and delete those
    `document` drops.
    `existing` is the snapshot's own fields (`snapshot.to_dict()`).
    """
    from google.cloud import firestore

    if existing is None:
        batch.create(ref, document)
        return
    dropped = {key: firestore.DELETE_FIELD for key in existing if key not in document}
    batch.update(ref, {**dropped, **document}, option=unchanged)


def newest_first(collection: Any, after: "tuple[Any, str] | None") -> Any:
    """`collection` by createdAt, newest first, starting after the (createdAt, id) `after`.

    The document id breaks ties, so a page boundary between two documents created in the
    same instant never drops or repeats one.
    """
    from google.cloud.firestore_v1.base_query import BaseQuery

    query = collection.order_by("createdAt", direction=BaseQuery.DESCENDING).order_by(
        "__name__", direction=BaseQuery.DESCENDING
    )
    if after is not None:
        query = query.start_after({"createdAt": after[0], "__name__": collection.document(after[1])})
    return query
