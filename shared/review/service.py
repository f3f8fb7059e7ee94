"""Review drafts, then send: list, edit (versioned), send exactly once, discard, and retry
one failed lead (docs/review.md).

The send is one compare-and-set commit on the draft document, as the pipeline's own
sends are: it creates the outbox document (deterministic id: a second send is
impossible), marks the draft sent at the version it read, writes the `email.send`
receipt (with the sent content's SHA-256 and the draft version), the lead's status and
the consent guard (shared/consent/gate.py). An edit that lands first makes it read and
send again, so what leaves is always the current version; a concurrent send finds the
draft already sent. With an external provider (Gmail) the draft is first claimed as
`sending` in such a commit, then sent with drafts.send, then recorded; a claim older
than the pipeline's in-flight bound is settled by searching the mailbox for the message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock, ids, pagination
from shared.consent import gate
from shared.errors import Conflict, InvalidArgument, NotFound, Unavailable, field_error
from shared.outreach.errors import OutreachError
from shared.outreach.providers import OutgoingEmail, Provider
from shared.review.models import BulkSendResult, Draft, DraftLead, DraftList, RetryResult, SendOutcome
from shared.store import review as store
from shared.store import runs
from shared.store.client import commit_args, write_if_unchanged

SEND_ATTEMPTS = 5
STALE = "stale"  # a _Decision: the draft's `sending` claim is past the in-flight bound
MAILBOX_RETRY_SECONDS = 10


def _scope(run_id: str) -> str:
    return f"drafts:{run_id}"


def to_view(run_id: str, lead: dict[str, Any], draft: dict[str, Any]) -> Draft:
    message = draft.get("message") or {}
    return Draft(
        lead_doc_id=lead["id"], run_id=run_id, to=str(draft.get("to", "")), subject=str(message.get("subject", "")),
        text=str(message.get("text", "")), html=str(message.get("html", "")), version=int(draft.get("version") or 1),
        status=draft.get("reviewStatus") or store.PENDING,
        lead=DraftLead(
            index=int(lead.get("index", 0)), email=str(lead.get("email", "")), first_name=str(lead.get("firstName", "")),
            last_name=str(lead.get("lastName", "")), company=str(lead.get("company", "")),
            time_zone=str(lead.get("timeZone", "")),
        ),
        updated_at=clock.rfc3339(draft.get("updatedAt") or draft.get("createdAt")),
        sending_at=clock.rfc3339(draft.get("sendingAt")) if draft.get("reviewStatus") == store.SENDING else None,
    )


def list_drafts(db: Any, run_id: str, page_size: int, page_token: str | None) -> DraftList:
    """The run's drafted leads in index order, each with its draft as the recipient will see it."""
    from shared.store import receipts

    ids.check_id(run_id, "runId")
    if runs.get_run(db, run_id) is None:
        raise NotFound(f"run {run_id} does not exist")
    after = None
    if page_token:
        position = pagination.decode(page_token, _scope(run_id))
        if not isinstance(position.get("index"), int) or not ids.is_valid_id(position.get("id")):
            raise pagination.bad_token()
        after = (position["index"], position["id"])
    leads = receipts.list_leads(db, run_id, page_size + 1, after, "drafted")
    page = leads[:page_size]
    drafts = store.get_drafts(db, run_id, [lead["id"] for lead in page])
    token = None
    if len(leads) > page_size:
        token = pagination.encode(_scope(run_id), {"index": page[-1]["index"], "id": page[-1]["id"]})
    return DraftList(
        drafts=[to_view(run_id, lead, drafts[lead["id"]]) for lead in page if lead["id"] in drafts],
        next_page_token=token,
    )


def expected_version(version: int | None, if_match: str | None) -> int | None:
    if if_match is None:
        return version
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or int(text) < 1:
        raise field_error("If-Match", 'must be a draft version such as "3"')
    if version is not None and version != int(text):
        raise field_error("version", "differs from If-Match")
    return int(text)


def _lead_and_ref(db: Any, run_id: str, lead_id: str) -> tuple[dict[str, Any], Any]:
    ids.check_id(run_id, "runId")
    ids.check_id(lead_id, "leadDocId")
    lead = runs.get_lead(db, run_id, lead_id)
    if lead is None:
        raise NotFound(f"lead {lead_id} of run {run_id} does not exist")
    return lead, store.draft_ref(db, run_id, lead_id)


def _check_version(draft: dict[str, Any], expected: int | None) -> int:
    version = int(draft.get("version") or 1)
    if expected is not None and expected != version:
        raise Conflict(f"the draft is at version {version}, not {expected}: reload it",
                       [{"field": "version", "current": version}])
    return version


def html_of(text: str) -> str:
    """The HTML part of an edited body: escaped text, blank lines as paragraphs (as the pipeline renders)."""
    body = html.escape(text).replace("\r\n", "\n")
    return "<p>" + body.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"


def edit(db: Any, run_id: str, lead_id: str, subject: str | None, body: str | None, expected: int | None) -> Draft:
    if expected is None:
        raise InvalidArgument("send If-Match or `version`: the version you edited",
                              [{"field": "version", "message": "required"}])
    lead, ref = _lead_and_ref(db, run_id, lead_id)

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any]:
        draft = _pending(snapshot, lead_id)
        version = _check_version(draft, expected)
        message = dict(draft.get("message") or {})
        if subject is not None:
            message["subject"] = " ".join(subject.split())  # one header line
        if body is not None:
            message.update({"text": body, "html": html_of(body)})
        changed = {"message": message, "version": version + 1, "updatedAt": clock.now()}
        batch.update(ref, changed, option=unchanged)
        return {**draft, **changed}

    return to_view(run_id, lead, write_if_unchanged(db, ref, apply))


def _pending(snapshot: Any, lead_id: str) -> dict[str, Any]:
    if not snapshot.exists:
        raise NotFound(f"lead {lead_id} has no draft")
    draft = snapshot.to_dict()
    status = draft.get("reviewStatus") or store.PENDING
    if status != store.PENDING:
        raise Conflict(f"the draft is {status}", [{"field": "status", "status": status}])
    return draft


def content_sha256(email: OutgoingEmail) -> str:
    """What was sent, canonically: recipient, subject, text and HTML parts."""
    content = {"to": email.to, "subject": email.subject, "text": email.text, "html": email.html}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _outgoing(run_id: str, lead_id: str, draft: dict[str, Any], token: str) -> OutgoingEmail:
    message = draft.get("message") or {}
    return OutgoingEmail(
        to=draft["to"], subject=message.get("subject", ""), text=message.get("text", ""), html=message.get("html", ""),
        run_id=run_id, lead_id=lead_id, step=store.SEND_STEP, draft=False,
        headers=tuple(gate.unsubscribe_headers(token).items()),
    )


def _receipt(run_id: str, lead: dict[str, Any], provider: Provider, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "email.send", "status": status, "at": clock.now(), "attempt": int(lead.get("attempts") or 0) + 1,
        "idempotencyKey": runs.idempotency_key(run_id, lead["id"], store.SEND_STEP), "summary": "", "error": None,
        "providerIds": {}, "provider": provider.name, "runId": run_id, "leadDocId": lead["id"],
        "leadIndex": lead.get("index"), "reviewed": True, **fields,
    }


def _lead_update(status: str, lead: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"status": status, "attempts": int(lead.get("attempts") or 0) + 1, "lastError": None,
            "updatedAt": firestore.SERVER_TIMESTAMP, **extra}


@dataclasses.dataclass
class _Decision:
    outcome: str
    version: int | None = None
    sha: str | None = None
    reason: str | None = None
    email: OutgoingEmail | None = None
    draft: dict[str, Any] | None = None
    seen: Any = None  # STALE: the update time of the draft as the claim was found


def send(db: Any, run_id: str, lead_id: str, expected: int | None, provider: Provider) -> SendOutcome:
    """Sends the draft's current version once; a repeated call answers `already_sent`."""
    lead, ref = _lead_and_ref(db, run_id, lead_id)
    unsent = None  # the update time of a stale claim the mailbox showed never left: the next _decide re-takes it
    for _ in range(SEND_ATTEMPTS):
        try:
            decision = write_if_unchanged(
                db, ref, lambda s, b, u: _decide(db, run_id, lead, ref, s, b, u, expected, provider, unsent))
        except gexc.AlreadyExists:
            continue  # the outbox document (another send won) or a contact record: read again
        if decision.outcome == STALE:
            found = _left_earlier(run_id, lead, decision, provider)
            if found is None:
                unsent = decision.seen
                continue
            adopted = _adopt(db, run_id, lead, ref, decision, provider, found)
            if adopted is None:
                continue  # the claim changed while the mailbox was searched: read again
            decision = adopted
        if decision.outcome == store.SENDING:
            decision = _send_external(db, run_id, lead, ref, decision, provider)
        return SendOutcome(lead_doc_id=lead_id, outcome=decision.outcome, version=decision.version,
                           content_sha256=decision.sha, reason=decision.reason)
    raise Conflict("the draft kept changing while it was being sent; try again")


def _decide(
    db: Any, run_id: str, lead: dict[str, Any], ref: Any, snapshot: Any, batch: Any, unchanged: Any,
    expected: int | None, provider: Provider, unsent: Any = None,
) -> _Decision:
    if not snapshot.exists:
        raise NotFound(f"lead {lead['id']} has no draft")
    draft = snapshot.to_dict()
    status = draft.get("reviewStatus") or store.PENDING
    if status == store.SENT:
        return _Decision("already_sent", draft.get("sentVersion"), draft.get("sentSha256"))
    retake = status == store.SENDING and unsent is not None and snapshot.update_time == unsent
    if status == store.SENDING and not retake:
        return _stale_claim(snapshot, draft)
    if status not in (store.PENDING, store.SENDING):
        raise Conflict(f"the draft is {status}", [{"field": "status", "status": status}])
    version = _check_version(draft, expected)
    now = clock.now()
    contact = gate.check(db, draft["to"], _contact_window(db, run_id))
    if contact.skip_reason:
        _queue_skip(db, batch, run_id, lead, ref, unchanged, contact, provider)
        return _Decision("skipped", version, reason=contact.skip_reason)
    # A re-taken claim keeps its token: its document was created with the claim.
    token = draft.get("unsubscribeToken") if retake else None
    if not token:
        token = gate.new_token()
        gate.queue_token(db, batch, token, draft["to"], lead, run_id)
    email = _outgoing(run_id, lead["id"], draft, token)
    sha = content_sha256(email)
    if provider.external:
        contact.queue_guard(db, batch, None)
        # What the claim records rebuilds the very message it sends (_left_earlier).
        claim = {"reviewStatus": store.SENDING, "sendingVersion": version, "sendingAt": now, "unsubscribeToken": token}
        batch.update(ref, {**claim, "updatedAt": now}, option=unchanged)
        return _Decision(store.SENDING, version, sha, email=email, draft=draft)
    contact.queue_guard(db, batch, {"runId": run_id, "leadDocId": lead["id"]})
    provider_ids = provider.deliver(db, batch, email)
    _queue_sent(db, batch, run_id, lead, ref, unchanged, provider, version, sha, email, provider_ids)
    return _Decision("sent", version, sha)


def _stale_claim(snapshot: Any, draft: dict[str, Any]) -> _Decision:
    """A `sending` claim: younger than the pipeline's in-flight bound, a send is waiting for
    Gmail's answer (409); older, that send was interrupted or its answer never came (STALE)."""
    from shared.outreach.pipeline import CLAIM_IN_FLIGHT_SECONDS

    since = draft.get("sendingAt")
    if since is not None and (clock.now() - since).total_seconds() < CLAIM_IN_FLIGHT_SECONDS:
        raise Conflict(f"the draft is being sent right now (since {clock.rfc3339(since)}); try again in a minute",
                       [{"field": "status", "status": store.SENDING, "sendingAt": clock.rfc3339(since)}])
    version = int(draft.get("sendingVersion") or draft.get("version") or 1)
    return _Decision(STALE, version, draft=draft, seen=snapshot.update_time)


def _left_earlier(run_id: str, lead: dict[str, Any], stale: _Decision, provider: Provider) -> dict[str, str] | None:
    """The provider ids of the stale claim's message if the mailbox holds it as sent, else None.
    The search cannot answer: Unavailable (503), and the draft stays `sending`."""
    find_sent = getattr(provider, "find_sent", None)
    if find_sent is None:
        raise Conflict("the draft was claimed by a send through a provider this service cannot search: "
                       "check the Sent folder", [{"field": "status", "status": store.SENDING}])
    draft = stale.draft or {}
    try:
        return find_sent(_outgoing(run_id, lead["id"], draft, draft.get("unsubscribeToken") or ""))
    except OutreachError as exc:
        raise Unavailable(f"an earlier send of this draft was interrupted and {exc.message}; it stays sending: "
                          "try again", MAILBOX_RETRY_SECONDS) from None


def _adopt(db: Any, run_id: str, lead: dict[str, Any], ref: Any, stale: _Decision, provider: Provider,
           provider_ids: dict[str, str]) -> _Decision | None:
    """Records the stale claim's message, found in the mailbox, as a send records it: one commit,
    only if the claim is still the one searched for (None when it changed)."""

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> _Decision | None:
        if not snapshot.exists or snapshot.update_time != stale.seen:
            return None
        draft = snapshot.to_dict()
        email = _outgoing(run_id, lead["id"], draft, draft.get("unsubscribeToken") or "")
        version, sha = stale.version or 1, content_sha256(email)
        ids = {**provider_ids, "gmailDraftId": str(draft.get("gmailDraftId") or "")}
        # adoptedFromMailbox: this receipt was written after a search found the message, not from Gmail's answer.
        _queue_sent(db, batch, run_id, lead, ref, unchanged, provider, version, sha, email, ids, adoptedFromMailbox=True)
        gate.queue_sent(db, batch, email.to, {"runId": run_id, "leadDocId": lead["id"]})
        return _Decision("already_sent", version, sha, reason="an earlier send was interrupted; the mailbox shows it left")

    return write_if_unchanged(db, ref, apply)


def _contact_window(db: Any, run_id: str) -> int | None:
    """The run's skipIfContactedWithinDays: a reviewed send honours it as the run's own sends do."""
    job = runs.get_job(db, run_id) or {}
    return (job.get("config") or {}).get("skipIfContactedWithinDays")


def _queue_sent(
    db: Any, batch: Any, run_id: str, lead: dict[str, Any], ref: Any, option: Any, provider: Provider,
    version: int, sha: str, email: OutgoingEmail, provider_ids: dict[str, str], **receipt: Any,
) -> None:
    now = clock.now()
    draft_update = {"reviewStatus": store.SENT, "sentVersion": version, "sentSha256": sha, "sentAt": now, "updatedAt": now}
    if option is not None:
        batch.update(ref, draft_update, option=option)
    else:
        batch.update(ref, draft_update)
    batch.set(runs.action_ref(db, run_id, lead["id"], store.SEND_STEP), _receipt(
        run_id, lead, provider, "sent", summary=f"sent to {email.to} after review: {email.subject}"[:300],
        providerIds=provider_ids, contentSha256=sha, draftVersion=version, **receipt,
    ))
    batch.update(runs.lead_ref(db, run_id, lead["id"]), _lead_update("sent", lead))
    store.queue_counts(db, batch, run_id, "drafted", "sent")


def _queue_skip(db: Any, batch: Any, run_id: str, lead: dict[str, Any], ref: Any, option: Any, contact: Any,
                provider: Provider) -> None:
    from shared.outreach.pipeline import SKIP_STEP

    batch.update(ref, {"reviewStatus": store.SKIPPED, "updatedAt": clock.now()}, option=option)
    receipt = _receipt(run_id, lead, provider, "skipped", summary=f"skipped ({contact.skip_reason}): {contact.detail}"[:300],
                       reason=contact.skip_reason)
    receipt["type"] = "email.skip"
    batch.set(runs.action_ref(db, run_id, lead["id"], SKIP_STEP), receipt)
    batch.update(runs.lead_ref(db, run_id, lead["id"]), _lead_update("skipped", lead, skipReason=contact.skip_reason))
    store.queue_counts(db, batch, run_id, "drafted", "skipped")


def _send_external(db: Any, run_id: str, lead: dict[str, Any], ref: Any, decision: _Decision, provider: Provider) -> _Decision:
    """The draft is claimed `sending`: hand it to the provider once, then record the result."""
    email, draft = decision.email, decision.draft or {}
    assert email is not None
    try:
        provider_ids = provider.send_draft(draft.get("gmailDraftId") or "", email)  # type: ignore[attr-defined]
    except OutreachError as exc:
        # A refusal sent nothing: the draft is pending again and may be sent later. An answer
        # that never came (outcome_unknown) may have sent it: it stays `sending`, so no second
        # send can follow, and says why, until a later Send finds the claim stale and searches
        # the mailbox (_stale_claim).
        status = store.SENDING if exc.code == "outcome_unknown" else store.PENDING
        ref.update({"reviewStatus": status, "lastError": exc.message, "updatedAt": clock.now()}, **commit_args())
        return _Decision("failed", decision.version, reason=exc.message)
    batch = db.batch()
    _queue_sent(db, batch, run_id, lead, ref, None, provider, decision.version or 1, decision.sha or "", email, provider_ids)
    gate.queue_sent(db, batch, email.to, {"runId": run_id, "leadDocId": lead["id"]})
    batch.commit(**commit_args())
    return _Decision("sent", decision.version, decision.sha)


def queue_review_copy(db: Any, batch: Any, email: OutgoingEmail, provider_ids: dict[str, str]) -> None:
    """An external provider's draft lives in its mailbox: review keeps the content it reads and
    edits in the draft document the mail collection would have written, with the draft's id."""
    from shared.store import mail

    batch.set(mail.draft_ref(db, email.message_id), {
        "to": email.to, "message": {"subject": email.subject, "text": email.text, "html": email.html},
        "runId": email.run_id, "leadDocId": email.lead_id, "idempotencyKey": email.idempotency_key,
        "createdAt": clock.now(), "gmailDraftId": provider_ids.get("gmailDraftId", ""), "external": True,
    })


def discard(db: Any, run_id: str, lead_id: str, expected: int | None, provider: Provider | None = None) -> Draft:
    """The draft will not be sent: the lead ends `skipped` (reason `discarded`). A stale
    `sending` claim is settled first: a message the mailbox shows sent is recorded `sent`
    and cannot be discarded (409); one that never left is discarded."""
    lead, ref = _lead_and_ref(db, run_id, lead_id)
    unsent = None  # the update time of a stale claim the mailbox showed never left

    def apply(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any] | _Decision:
        current = snapshot.to_dict() if snapshot.exists else {}
        settled = unsent is not None and snapshot.update_time == unsent
        if current.get("reviewStatus") == store.SENDING and not settled:
            return _stale_claim(snapshot, current)
        draft = current if settled else _pending(snapshot, lead_id)
        _check_version(draft, expected)
        changed = {"reviewStatus": store.DISCARDED, "updatedAt": clock.now()}
        batch.update(ref, changed, option=unchanged)
        batch.update(runs.lead_ref(db, run_id, lead_id), _lead_update("skipped", lead, skipReason="discarded"))
        store.queue_counts(db, batch, run_id, "drafted", "skipped")
        return {**draft, **changed}

    for _ in range(SEND_ATTEMPTS):
        result = write_if_unchanged(db, ref, apply)
        if not isinstance(result, _Decision):
            return to_view(run_id, lead, result)
        found = _left_earlier(run_id, lead, result, provider)
        if found is None:
            unsent = result.seen
        elif _adopt(db, run_id, lead, ref, result, provider, found) is not None:
            raise Conflict("the message had already left (the mailbox holds it): it is now recorded sent and cannot "
                           "be discarded", [{"field": "status", "status": store.SENT}])
    raise Conflict("the draft kept changing while it was being discarded; try again")


def send_many(db: Any, run_id: str, lead_ids: list[str], provider: Provider) -> BulkSendResult:
    """Each lead exactly once (a repeated id answers already_sent), each with its own outcome."""
    results = []
    for lead_id in dict.fromkeys(lead_ids):
        try:
            results.append(send(db, run_id, lead_id, None, provider))
        except NotFound as exc:
            results.append(SendOutcome(lead_doc_id=lead_id, outcome="not_found", reason=exc.message))
        except Conflict as exc:
            results.append(SendOutcome(lead_doc_id=lead_id, outcome="conflict", reason=exc.message))
        except Unavailable as exc:  # a stale claim's mailbox search: this lead stays `sending`
            results.append(SendOutcome(lead_doc_id=lead_id, outcome="failed", reason=exc.message))
    return BulkSendResult(results=results)


def retry_lead(db: Any, run_id: str, lead_id: str, settings: Any = None, dispatcher: Any = None) -> RetryResult:
    """Re-queues one failed lead through the jobs service's retry (which restarts an ended job)."""
    from shared.jobs import service as jobs
    from shared.jobs.dispatch import default_dispatcher
    from shared.settings import get_settings

    lead, _ = _lead_and_ref(db, run_id, lead_id)
    if lead.get("status") != "failed":
        raise Conflict(f"lead {lead_id} is {lead.get('status')}: only a failed lead can be retried",
                       [{"field": "leadDocId", "status": lead.get("status")}])
    settings = settings or get_settings()
    reply = jobs.control(db, run_id, "retry", settings, dispatcher or default_dispatcher(settings), only={lead_id})
    return RetryResult(lead_doc_id=lead_id, status="pending", job_status=reply.response.job.status)
