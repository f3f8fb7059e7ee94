"""The one Firestore client of an instance, created on first use (cold starts stay short)."""

from __future__ import annotations

import functools
import random
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")

# gRPC's default reconnect backoff (1 s x 1.6^n, up to 120 s) kept an instance answering
# 503 for ~13 s after a 30-60 s outage had ended; capped at 2 s it recovers in ~2 s
# (docs/reliability.md, finding 2). One reconnect attempt per 2 s per instance costs nothing.
RECONNECT_BACKOFF_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


@functools.cache
def get_db() -> "firestore.Client":
    # FIRESTORE_EMULATOR_HOST, when set, is honoured by the client itself and
    # switches it to anonymous credentials.
    from google.cloud import firestore

    shorten_reconnect_backoff()
    client = firestore.Client(project=get_settings().google_cloud_project)
    bound_retries(client, get_settings().firestore_deadline_seconds)
    return client


def shorten_reconnect_backoff() -> None:
    """Adds RECONNECT_BACKOFF_OPTIONS to the channel options every Firestore client uses.

    firestore.Client takes no channel options; it builds its channel (for the emulator
    and for production alike) from these two module lists, so they are extended once,
    before the first client creates its channel.
    """
    from google.cloud.firestore_v1 import base_client

    for options in (base_client._GRPC_MSG_SIZE_OPTIONS, base_client._DEFAULT_CHANNEL_OPTIONS):
        options.extend(option for option in RECONNECT_BACKOFF_OPTIONS if option not in options)


def bound_retries(client: "firestore.Client", deadline: float) -> None:
    """Caps every RPC's retry deadline and timeout.

    The generated client retries an unreachable Firestore for up to 300 s per call
    (batch_get_documents, run_query), so a request would hang until the function's
    own timeout instead of answering 503 + Retry-After. The client offers no public
    default for this, so the bound is applied to its wrapped methods once, here.
    """
    transport = client._firestore_api._transport
    for wrapped in transport._wrapped_methods.values():
        if getattr(wrapped, "_retry", None) is not None:
            wrapped._retry = wrapped._retry.with_timeout(deadline)
        if isinstance(getattr(wrapped, "_timeout", None), (int, float)):
            wrapped._timeout = min(wrapped._timeout, deadline)


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

    Why not a transaction: a transaction's reads lock the document until it commits, and
    a process killed in between leaves the lock for Firestore to expire 60 s later; every
    write to that document waits until then (docs/reliability.md, finding 3). A batch
    holds no lock, so a worker killed mid-write leaves nothing behind.
    """
    from google.api_core import exceptions as gexc

    for attempt in range(attempts):
        snapshot = ref.get()
        batch = db.batch()
        unchanged = db.write_option(last_update_time=snapshot.update_time) if snapshot.exists else None
        result = body(snapshot, batch, unchanged)
        if not len(batch):
            return result
        try:
            batch.commit()
            return result
        except gexc.FailedPrecondition:
            pause_before_retry(attempt)
        except gexc.AlreadyExists:
            if snapshot.exists:
                raise
            pause_before_retry(attempt)
    raise gexc.Aborted(f"{ref.path} kept changing during {attempts} attempts to update it")


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


def pause_before_retry(attempt: int, cap: float = float("inf")) -> None:
    """Sleeps a random 0 to 20 ms x 2^attempt (at most `cap`), so contenders spread apart."""
    time.sleep(random.uniform(0, min(cap, 0.02 * 2**attempt)))


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
