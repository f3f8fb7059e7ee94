"""One-click unsubscribe (RFC 8058): what the public /u/{token} URL does.

GET shows a confirmation page and changes nothing (mail scanners fetch links); POST
with `List-Unsubscribe=One-Click` suppresses the token's address, idempotently, and
records an `email.unsubscribe` receipt on the lead whose message carried the token.
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc

from shared import clock, ids
from shared.consent import gate, service
from shared.errors import InvalidArgument, NotFound
from shared.store import runs
from shared.store import suppressions as repo
from shared.store.client import commit_args

ACTION_ID = "email-unsubscribe"


def resolve(db: Any, token: str) -> dict[str, Any]:
    """The token's record, or NotFound for an unknown or malformed token (never a 500)."""
    if not ids.is_valid_id(token):
        raise NotFound("this unsubscribe link is not valid")
    record = repo.get_token(db, token)
    if record is None or not record.get("email"):
        raise NotFound("this unsubscribe link is not valid")
    return record


def masked(address: str) -> str:
    """a***@example.com: enough for the recipient to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def one_click(db: Any, token: str, form_value: str | None) -> dict[str, Any]:
    """Suppresses the token's address. Repeating it changes nothing and answers the same."""
    record = resolve(db, token)
    if form_value != "One-Click":
        raise InvalidArgument(f"the body must be {gate.ONE_CLICK}")
    service.suppress_address(db, record["email"], "one-click unsubscribe", "unsubscribe")
    _receipt(db, record)
    return record


def _receipt(db: Any, record: dict[str, Any]) -> None:
    run_id, lead_id = record.get("runId"), record.get("leadDocId")
    if not (ids.is_valid_id(run_id) and ids.is_valid_id(lead_id)):
        return
    try:
        runs.action_ref(db, run_id, lead_id, ACTION_ID).create({
            "type": "email.unsubscribe",
            "status": "done",
            "at": clock.now(),
            "attempt": None,
            "idempotencyKey": runs.idempotency_key(run_id, lead_id, ACTION_ID),
            "summary": f"{masked(record['email'])} unsubscribed (one-click); the address is suppressed",
            "error": None,
            "providerIds": {},
            "provider": None,
            "runId": run_id,
            "leadDocId": lead_id,
            "leadIndex": record.get("leadIndex"),
        }, **commit_args())
    except gexc.AlreadyExists:  # a repeated POST: the first one's receipt stands
        pass
