"""The check every send and every draft passes, and the guard that stops it racing.

`check` reads the contact records (store/suppressions.py) of the address and of its
domain in one round trip and says whether the lead must be skipped: `suppressed`
(either is on the list) or `recently_contacted` (the address was sent to within the
run's skipIfContactedWithinDays). `Contact.queue_guard` then adds to the lead's own
outcome commit a guard on both records: the address's record is written conditional on
it being exactly as read (`last_update_time`, or create when it did not exist); the
domain's record exists only while the domain is suppressed, so its guard is a delete
conditional on the record still not existing, a precondition that writes nothing. Many
leads of one company at once therefore never contend on their domain's record (a
write to it per send would make every concurrent lead of that domain retry, and cap the
domain at about one send a second). A suppression that lands in between writes a
record, the commit fails as a whole (FailedPrecondition or AlreadyExists: nothing of it
is written) and the caller checks again: a suppression that lands before the lead's
commit stops it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from shared import clock, ids
from shared.consent import keys
from shared.settings import get_settings
from shared.store import suppressions as repo

SUPPRESSED = "suppressed"
RECENTLY_CONTACTED = "recently_contacted"
# A lead's commit that keeps losing to changes of its contact records gives up after this.
ATTEMPTS = 5
ONE_CLICK = "List-Unsubscribe=One-Click"


class ContactChanged(Exception):
    """A contact record changed between the check and the commit: check again."""


@dataclasses.dataclass
class Contact:
    address: str
    snapshots: list[Any]  # the address's record, then its domain's
    skip_reason: str | None = None
    detail: str = ""

    def queue_guard(self, db: Any, batch: Any, sent: dict[str, Any] | None) -> None:
        """Both records, written only if unchanged since `check`. `sent` (runId, leadDocId)
        also records this send on the address's record, for skipIfContactedWithinDays."""
        now = clock.now()
        address, domain = self.snapshots
        fields: dict[str, Any] = {"checkedAt": now, **(sent_fields(sent, now) if sent is not None else {})}
        ref = repo.contact_ref(db, address.id)
        if address.exists:
            batch.update(ref, fields, option=db.write_option(last_update_time=address.update_time))
        else:
            batch.create(ref, {"kind": keys.EMAIL, "suppressed": False, **fields})
        domain_ref = repo.contact_ref(db, domain.id)
        if domain.exists:  # a record left from before domain records were deleted on removal
            batch.update(domain_ref, {"checkedAt": now}, option=db.write_option(last_update_time=domain.update_time))
        else:
            batch.delete(domain_ref, option=db.write_option(exists=False))


def sent_fields(sent: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"lastSentAt": now, "lastRunId": sent.get("runId"), "lastLeadDocId": sent.get("leadDocId")}


def queue_sent(db: Any, batch: Any, address: str, sent: dict[str, Any]) -> None:
    """Records a send that already happened (an external provider's): unconditional."""
    batch.set(repo.contact_ref(db, keys.email_id(address.strip().lower())), sent_fields(sent, clock.now()), merge=True)


def check(db: Any, address: str, within_days: int | None = None) -> Contact:
    address = address.strip().lower()
    email_id, domain_id = keys.email_id(address), keys.domain_id(keys.domain_of(address))
    found = repo.get_contacts(db, [email_id, domain_id])
    contact = Contact(address, [found[email_id], found[domain_id]])
    record, domain = (s.to_dict() if s.exists else {} for s in contact.snapshots)
    if record.get("suppressed"):
        contact.skip_reason, contact.detail = SUPPRESSED, "the address is on the suppression list"
    elif domain.get("suppressed"):
        contact.skip_reason, contact.detail = SUPPRESSED, "the address's domain is on the suppression list"
    elif within_days and isinstance(record.get("lastSentAt"), dt.datetime):
        if record["lastSentAt"] > clock.now() - dt.timedelta(days=within_days):
            contact.skip_reason = RECENTLY_CONTACTED
            contact.detail = (
                f"the address was sent to on {clock.rfc3339(record['lastSentAt'])[:10]}, "
                f"within the run's {within_days} days"
            )
    return contact


# --- one-click unsubscribe (RFC 8058) ---------------------------------------------------


def new_token() -> str:
    """~238 random bits in letters and digits: a valid document id, unguessable."""
    return ids.new_id() + ids.new_id()


def unsubscribe_url(token: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/u/{token}"


def unsubscribe_headers(token: str) -> dict[str, str]:
    """RFC 8058 section 3.1: one HTTPS URI in List-Unsubscribe, and List-Unsubscribe-Post
    holding exactly `List-Unsubscribe=One-Click`."""
    return {"List-Unsubscribe": f"<{unsubscribe_url(token)}>", "List-Unsubscribe-Post": ONE_CLICK}


def queue_token(db: Any, batch: Any, token: str, address: str, lead: dict[str, Any], run_id: str) -> None:
    """The token's document joins the send's commit: a token exists exactly for a sent message."""
    batch.create(repo.token_ref(db, token), {
        "email": address.strip().lower(), "runId": run_id, "leadDocId": lead["id"], "leadIndex": lead.get("index"),
        "createdAt": clock.now(),
    })
