"""The one Firestore client of an instance, created on first use (cold starts stay short)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")


@functools.cache
def get_db() -> "firestore.Client":
    # FIRESTORE_EMULATOR_HOST, when set, is honoured by the client itself and
    # switches it to anonymous credentials.
    from google.cloud import firestore

    client = firestore.Client(project=get_settings().google_cloud_project)
    bound_retries(client, get_settings().firestore_deadline_seconds)
    return client


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


def run_transaction(db: "firestore.Client", body: Callable[[Any], T]) -> T:
    """firestore.transactional(body) in a new transaction, retried on contention.

    When Firestore is unreachable the transaction cannot even begin, and the library's
    rollback of it raises "ValueError: The transaction has no transaction ID", hiding the
    real error. Here the Firestore error itself is raised instead, so shared/http.py
    sees an outage (503 + Retry-After), not a bug (500).
    """
    from google.api_core import exceptions as gexc
    from google.cloud import firestore

    try:
        return firestore.transactional(body)(db.transaction())
    except ValueError as exc:
        cause = exc.__context__
        if isinstance(cause, (gexc.GoogleAPICallError, gexc.RetryError)):
            raise cause from None
        raise
