"""The one Firestore client of an instance, created on first use (cold starts stay short)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud import firestore


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
