"""Email providers: where a rendered message goes.

Two are built in, chosen by EMAIL_PROVIDER:
- `mail_collection` (default) writes Firebase "Trigger Email" documents: `mail/{id}` to
  send, `mail_drafts/{id}` for drafts. The write joins the pipeline's own commit, so
  the message, its receipt and the lead's status land atomically, and the document's
  deterministic id (created with a precondition) makes a second send impossible.
- `gmail` calls the Gmail API (shared/outreach/gmail.py). Its effect is outside
  Firestore, so the pipeline claims the receipt before calling it (see pipeline.py).

A provider has `name`, `external` (True when its effect happens outside the
pipeline's commit) and `deliver(db, batch, email) -> providerIds`.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from shared.outreach.outgoing import OutgoingEmail  # re-exported: the pipeline and tests import it from here
from shared.settings import Settings, get_settings
from shared.store import mail


class Provider(Protocol):
    name: str
    external: bool

    def deliver(self, db: Any, batch: Any, email: OutgoingEmail) -> dict[str, str]: ...


class MailCollectionProvider:
    name = "mail_collection"
    external = False

    def deliver(self, db: Any, batch: Any, email: OutgoingEmail) -> dict[str, str]:
        # create(), not set(): if an earlier attempt committed this message, the whole
        # batch fails with AlreadyExists and the pipeline knows the lead is done.
        batch.create(
            mail.outbox_ref(db, email.message_id, email.draft),
            {
                "to": email.to,
                "message": {"subject": email.subject, "text": email.text, "html": email.html},
                "runId": email.run_id,
                "leadDocId": email.lead_id,
                "idempotencyKey": email.idempotency_key,
                "createdAt": _now(),
                # The Trigger Email extension passes `headers` through to the message.
                **({"headers": dict(email.headers)} if email.headers else {}),
            },
        )
        return {"draftId" if email.draft else "mailId": email.message_id}


def _now():
    from shared import clock

    return clock.now()


def build_provider(settings: Settings) -> Provider:
    if settings.email_provider == "gmail":
        from shared.outreach.gmail import GmailProvider

        return GmailProvider(sender=settings.gmail_sender, base_url=settings.gmail_api_base_url)
    return MailCollectionProvider()


@functools.cache
def _cached(settings: Settings) -> Provider:
    return build_provider(settings)


def get_provider(settings: Settings | None = None) -> Provider:
    """One provider per instance and configuration (the Gmail one holds an HTTP session)."""
    return _cached(settings or get_settings())
