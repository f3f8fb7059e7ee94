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

    return firestore.Client(project=get_settings().google_cloud_project)
