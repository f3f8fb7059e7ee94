"""The message the pipeline hands a provider: its own module, so that providers.py
(which picks a provider) and gmail.py (one provider) both import it and not each other."""

from __future__ import annotations

import dataclasses

from shared.store import runs


@dataclasses.dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    run_id: str
    lead_id: str
    step: str  # "email-send" or "email-draft": also the receipt's action id
    draft: bool
    # Extra message headers, e.g. RFC 8058's List-Unsubscribe pair on a send (shared/consent/gate.py).
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def idempotency_key(self) -> str:
        return runs.idempotency_key(self.run_id, self.lead_id, self.step)

    @property
    def done_status(self) -> str:
        """The lead's status once this message is delivered."""
        return "drafted" if self.draft else "sent"

    @property
    def message_id(self) -> str:
        """The mail/mail_drafts document id: one per (run, lead, step), never two."""
        return f"{self.run_id}-{self.lead_id}-{self.step}"
