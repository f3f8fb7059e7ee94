"""One lead's outreach: render the template, draft or send, write the receipt.

Shared by the background worker and foreground runs. Every effect is idempotent:

- the receipt lives at lead_runs/{runId}/leads/{leadDocId}/actions/{step} (step is
  `email-send` or `email-draft`), so a re-run overwrites rather than duplicates;
- with the mail-collection provider the outbox document (deterministic id, created
  with a precondition), the receipt and the lead's new status are one atomic commit
  (shared/store/job_writes.commit_lead_outcome): a crash leaves either all three or
  none, and a re-run that finds the outbox document already there knows the lead is done;
- with an external provider (Gmail) the receipt is first claimed as `sending` by a
  compare-and-set commit. Another attempt that finds a fresh claim waits for its
  result (two workers can meet on one lead after a lease takeover); one that finds a
  claim older than any send could take cannot know whether the message left, so it
  fails the lead ("outcome unknown") instead of sending twice.

Transient errors (Firestore Aborted/Unavailable/DeadlineExceeded, provider 429/5xx)
are retried with exponential backoff up to `max_attempts`; permanent ones (a missing
template variable, an invalid address, a provider refusal) fail the lead at once.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from typing import Any, Callable

from google.api_core import exceptions as gexc

from shared import clock, logs
from shared.consent import gate
from shared.outreach import render
from shared.outreach.errors import (
    FIRESTORE_UNAVAILABLE,
    OutreachError,
    PermanentError,
    ProviderQuotaError,
    TransientError,
    classify,
)
from shared.outreach.providers import OutgoingEmail, Provider
from shared.store import job_writes, mail
from shared.store import runs as repo
from shared.store.client import commit_args, queue_replace, read_args, write_if_unchanged

logger = logging.getLogger("mission_control.outreach")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# After an external provider accepted a message, writing its receipt is retried this
# many times (never the send itself).
RECORD_ATTEMPTS = 5
# A `sending` claim younger than this may still be waiting for the provider's answer
# (Gmail's timeouts are 5 s + 30 s, recording the result at most ~10 s more): another
# attempt waits for it. An older one was interrupted and its outcome is unknown.
CLAIM_IN_FLIGHT_SECONDS = 90
IN_FLIGHT_POLL_SECONDS = 0.5
IN_FLIGHT = "in_flight"
SKIP_STEP = "email-skip"
# A lead is not failed for the database's trouble until this many times maxAttempts.
FIRESTORE_PATIENCE = 3
LEAD_COLUMNS = ("email", "firstName", "lastName", "company", "timeZone")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


@dataclasses.dataclass
class RunContext:
    """What every lead of a batch shares: loaded once per batch."""

    db: Any
    run_id: str
    template: dict[str, Any]
    draft: bool
    provider: Provider
    max_attempts: int
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    # The run's skipIfContactedWithinDays (shared/consent/gate.py).
    contact_window_days: int | None = None


@dataclasses.dataclass
class Outcome:
    """What happened to one lead.

    status: sent | drafted | failed — the lead's new status; or `retry_later` when a
    transient error left attempts but the time budget ran out.
    `earlier` is True when the work had already been committed by a previous attempt
    (a crashed or concurrent worker); `committed_at` is the server time of the commit
    that set the lead's status, which the worker compares with the job's progressAt.
    """

    lead_id: str
    index: int
    status: str
    attempts: int
    action_id: str
    code: str | None = None
    message: str | None = None
    provider_ids: dict[str, str] = dataclasses.field(default_factory=dict)
    earlier: bool = False
    committed_at: Any = None
    transient_errors: list[str] = dataclasses.field(default_factory=list)


def is_valid_email(address: str) -> bool:
    return 3 <= len(address) <= 254 and _EMAIL.fullmatch(address) is not None


def step_for(draft: bool) -> str:
    return "email-draft" if draft else "email-send"


def lead_values(lead: dict[str, Any]) -> dict[str, Any]:
    """The variables a template may use: the lead's columns and its `fields`, nothing of its bookkeeping."""
    columns = {name: lead.get(name) for name in LEAD_COLUMNS}
    return render.lead_variables({**columns, "fields": lead.get("fields") or {}})


def compose(template: dict[str, Any], lead: dict[str, Any], run_id: str, draft: bool) -> OutgoingEmail:
    """The message for one lead, or PermanentError naming what is wrong with the lead."""
    address = str(lead.get("email") or "").strip()
    if not is_valid_email(address):
        shown = address[:80] or "(empty)"
        raise PermanentError(f"invalid email address {shown!r}", "invalid_email")
    values = lead_values({**lead, "email": address})
    missing: list[str] = []
    for text in (template["subject"], template["body"]):
        try:
            render.render(text, values)
        except render.MissingVariables as exc:
            missing += [name for name in exc.names if name not in missing]
    if missing:
        raise PermanentError(render.MissingVariables(missing).message, "missing_variables")
    subject = render.render(template["subject"], values)
    text = render.render(template["body"], values)
    body_html = render.render(template["body"], values, escape=True)
    # A header is one line: a value with a newline would inject headers into the message.
    subject = " ".join(subject.split())
    body_html = "<p>" + body_html.replace("\r\n", "\n").replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
    return OutgoingEmail(
        to=address, subject=subject, text=text, html=body_html,
        run_id=run_id, lead_id=lead["id"], step=step_for(draft), draft=draft,
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential with jitter: ~0.5 s, 1 s, 2 s, … capped at 8 s."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def process_lead(ctx: RunContext, lead: dict[str, Any], attempts_before: int, deadline: float) -> Outcome:
    """Drafts or sends one pending lead, retrying transient errors until `deadline` (monotonic)."""
    step = step_for(ctx.draft)
    try:
        email = compose(ctx.template, lead, ctx.run_id, ctx.draft)
    except PermanentError as exc:
        return _record_failure(ctx, lead, step, attempts_before + 1, exc)
    attempt, transient = attempts_before, []
    while True:
        attempt += 1
        try:
            outcome = _deliver(ctx, lead, email, attempt)
            if outcome.code == IN_FLIGHT and ctx.monotonic() + IN_FLIGHT_POLL_SECONDS <= deadline:
                attempt -= 1  # waiting for another attempt's answer costs this lead nothing
                ctx.sleep(IN_FLIGHT_POLL_SECONDS)
                continue
            outcome.transient_errors = transient
            return outcome
        except Exception as exc:  # sorted into transient / permanent / bug below
            error = classify(exc)
            if error is None:
                logs.log(logger, logging.ERROR, f"unexpected error on lead {lead['id']}: {exc!r}", runId=ctx.run_id)
                error = PermanentError(f"internal error: {type(exc).__name__}", "internal")
        if isinstance(error, PermanentError):
            return _record_failure(ctx, lead, step, attempt, error)
        if isinstance(error, ProviderQuotaError):
            raise error  # the sender's quota: the worker pauses it; this lead keeps its attempt
        transient.append(f"attempt {attempt}: {error.message}")
        if attempt >= ctx.max_attempts and error.code == FIRESTORE_UNAVAILABLE and attempt < _patience(ctx):
            # The database, not the lead: the lead stays pending and the worker stops the
            # batch; the next invocation (or resume) tries again, once each, up to a limit.
            error.attempts = attempt
            raise error
        if attempt >= ctx.max_attempts:
            final = PermanentError(f"gave up after {attempt} attempts: {error.message}", error.code)
            outcome = _record_failure(ctx, lead, step, attempt, final)
            outcome.transient_errors = transient
            return outcome
        delay = backoff_seconds(attempt)
        if ctx.monotonic() + delay > deadline:
            return Outcome(
                lead["id"], lead["index"], "retry_later", attempt, step, error.code, error.message,
                transient_errors=transient,
            )
        ctx.sleep(delay)


def _patience(ctx: RunContext) -> int:
    """How many attempts a lead gets while Firestore itself is failing, across invocations."""
    return ctx.max_attempts * FIRESTORE_PATIENCE


def _receipt(ctx: RunContext, lead: dict[str, Any], step: str, status: str, attempt: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "email.draft" if step == "email-draft" else "email.send",
        "status": status,
        "at": clock.now(),
        "attempt": attempt,
        "idempotencyKey": repo.idempotency_key(ctx.run_id, lead["id"], step),
        "summary": fields.pop("summary", ""),
        "error": fields.pop("error", None),
        "providerIds": fields.pop("provider_ids", {}),
        "provider": ctx.provider.name,
        "runId": ctx.run_id,
        "leadDocId": lead["id"],
        "leadIndex": lead["index"],
    }


def _summary(email: OutgoingEmail) -> str:
    verb = "drafted for" if email.draft else "sent to"
    return f"{verb} {email.to}: {email.subject}"[:300]


def _deliver(ctx: RunContext, lead: dict[str, Any], email: OutgoingEmail, attempt: int) -> Outcome:
    """Checks the address's consent, then delivers under a guard that fails the commit if
    a suppression lands in between; then it checks again (shared/consent/gate.py)."""
    for _ in range(gate.ATTEMPTS):
        # An external provider's claim checks inside its own compare-and-set (_claim).
        contact = None if ctx.provider.external else gate.check(ctx.db, email.to, ctx.contact_window_days)
        if contact is not None and contact.skip_reason:
            return _record_skip(ctx, lead, attempt, contact)
        token = None if email.draft else gate.new_token()
        if token:
            email = dataclasses.replace(email, headers=tuple(gate.unsubscribe_headers(token).items()))
        try:
            return _deliver_checked(ctx, lead, email, attempt, contact, token)
        except gate.ContactChanged:
            continue
    raise TransientError("the address's consent record kept changing during the send", "contact_contended")


def _queue_consent(ctx: RunContext, batch: Any, lead: dict[str, Any], email: OutgoingEmail, contact: Any, token: str | None) -> None:
    """The consent guard and the unsubscribe token join the commit that decides the lead."""
    sent = None if email.draft else {"runId": ctx.run_id, "leadDocId": lead["id"]}
    contact.queue_guard(ctx.db, batch, sent)
    if token:
        gate.queue_token(ctx.db, batch, token, email.to, lead, ctx.run_id)


def _deliver_checked(
    ctx: RunContext, lead: dict[str, Any], email: OutgoingEmail, attempt: int, contact: Any, token: str | None
) -> Outcome:
    db = ctx.db
    if ctx.provider.external:
        earlier = _claim(ctx, lead, email, attempt, token)
        if earlier is not None:
            return earlier
    batch = db.batch()
    try:
        ids = ctx.provider.deliver(db, batch, email)
    except TransientError:
        if ctx.provider.external:
            _release_claim(ctx, lead, email, attempt)
        raise
    _queue_success(ctx, batch, lead, email, attempt, ids)
    if ctx.provider.external:  # sent already: recorded whatever changed since the claim
        if not email.draft:
            gate.queue_sent(db, batch, email.to, {"runId": ctx.run_id, "leadDocId": lead["id"]})
        else:
            from shared.review.service import queue_review_copy

            queue_review_copy(db, batch, email, ids)
    else:
        _queue_consent(ctx, batch, lead, email, contact, token)
    try:
        committed_at = job_writes.commit_lead_outcome(
            batch, retries=RECORD_ATTEMPTS if ctx.provider.external else 1, sleep=ctx.sleep, transient=_is_transient,
        )
    except gexc.FailedPrecondition:
        raise gate.ContactChanged() from None
    except job_writes.DoneEarlier:
        if not ctx.provider.external and not mail.outbox_ref(db, email.message_id, email.draft).get(**read_args()).exists:
            raise gate.ContactChanged() from None  # a contact record was created meanwhile, not the message
        return _done_earlier(ctx, lead, email, attempt)
    return Outcome(
        lead["id"], lead["index"], email.done_status, attempt, email.step, provider_ids=ids, committed_at=committed_at,
    )


def _queue_success(
    ctx: RunContext, batch: Any, lead: dict[str, Any], email: OutgoingEmail, attempt: int, ids: dict[str, str]
) -> None:
    """The receipt and the lead's new status, committed together by the caller."""
    receipt = _receipt(ctx, lead, email.step, email.done_status, attempt, summary=_summary(email), provider_ids=ids)
    job_writes.queue_lead_outcome(ctx.db, batch, ctx.run_id, lead["id"], email.step, receipt, attempt)


def _is_transient(exc: Exception) -> bool:
    return isinstance(classify(exc), TransientError)


def _done_earlier(ctx: RunContext, lead: dict[str, Any], email: OutgoingEmail, attempt: int) -> Outcome:
    """The outbox document exists: an earlier attempt (crashed or concurrent) sent this lead."""
    current = repo.get_lead(ctx.db, ctx.run_id, lead["id"]) or {}
    if current.get("status") in ("sent", "drafted"):
        return Outcome(
            lead["id"], lead["index"], current["status"], current.get("attempts") or attempt, email.step,
            earlier=True, committed_at=current.get("updatedAt"),
        )
    # Only possible if something outside this pipeline wrote the outbox document:
    # adopt it rather than sending again.
    ids = {"draftId" if email.draft else "mailId": email.message_id}
    batch = ctx.db.batch()
    _queue_success(ctx, batch, lead, email, attempt, ids)
    committed_at = job_writes.commit_time(batch.commit(**commit_args()))
    return Outcome(
        lead["id"], lead["index"], email.done_status, attempt, email.step, provider_ids=ids, committed_at=committed_at,
    )


def _claim(ctx: RunContext, lead: dict[str, Any], email: OutgoingEmail, attempt: int, token: str | None) -> Outcome | None:
    """Marks the receipt `sending` before an external call; None means go ahead.

    Returns the lead's outcome instead when a previous attempt already finished it; a
    `retry_later` outcome coded `in_flight` when another attempt's claim is fresh; a
    failure when a claim was left without a result (it may have sent: fail rather than
    send twice).
    """
    db = ctx.db
    receipt_ref = repo.action_ref(db, ctx.run_id, lead["id"], email.step)
    lead_ref = repo.lead_ref(db, ctx.run_id, lead["id"])

    # Compare-and-set rather than a transaction (docs/reliability.md, finding 3).
    def claim(snapshot: Any, batch: Any, unchanged: Any) -> dict[str, Any] | None:
        existing = snapshot.to_dict() if snapshot.exists else None
        if existing and existing.get("status") == "sending":
            if _claim_in_flight(existing):
                return {"status": IN_FLIGHT}
            message = (
                "an earlier attempt was interrupted after handing the message to the provider; it may "
                "have been sent. Check the mailbox before using retry, which sends it again"
            )
            # One commit, conditional on the claim: if its owner answers after all, its
            # result wins and this failure is never half-written beside it.
            batch.update(receipt_ref, {"status": "failed", "error": message, "at": clock.now()}, option=unchanged)
            batch.update(lead_ref, job_writes.lead_outcome_fields("failed", attempt, message))
            return {"status": "failed", "message": message}
        if existing and existing.get("status") in ("sent", "drafted"):
            return existing
        # Checked again on every try: a retried claim must not reuse a stale consent read.
        current = gate.check(db, email.to, ctx.contact_window_days)
        if current.skip_reason:
            return {"status": "skipped", "contact": current}
        queue_replace(batch, receipt_ref, existing, _receipt(ctx, lead, email.step, "sending", attempt, summary=_summary(email)), unchanged)
        _queue_consent(ctx, batch, lead, email, current, token)
        return None

    try:
        existing = write_if_unchanged(db, receipt_ref, claim)
    except gexc.AlreadyExists:  # a contact record was created between the check and the claim
        raise gate.ContactChanged() from None
    if existing is None:
        return None
    if existing["status"] == "skipped":
        return _record_skip(ctx, lead, attempt, existing["contact"])
    if existing["status"] == IN_FLIGHT:
        message = "another attempt is sending this lead's message; waiting for its answer"
        return Outcome(lead["id"], lead["index"], "retry_later", attempt - 1, email.step, IN_FLIGHT, message)
    if existing["status"] == "failed":
        return Outcome(lead["id"], lead["index"], "failed", attempt, email.step, "outcome_unknown", existing["message"])
    current = repo.get_lead(db, ctx.run_id, lead["id"]) or {}
    return Outcome(
        lead["id"], lead["index"], existing["status"], existing.get("attempt") or attempt, email.step,
        provider_ids=existing.get("providerIds") or {}, earlier=current.get("status") == existing["status"],
        committed_at=current.get("updatedAt"),
    )


def _claim_in_flight(receipt: dict[str, Any]) -> bool:
    claimed_at = receipt.get("at")
    if claimed_at is None:
        return False
    return (clock.now() - claimed_at).total_seconds() < CLAIM_IN_FLIGHT_SECONDS


def _release_claim(ctx: RunContext, lead: dict[str, Any], email: OutgoingEmail, attempt: int) -> None:
    """The provider said no (transiently) so nothing left: the next attempt may claim again."""
    ref = repo.action_ref(ctx.db, ctx.run_id, lead["id"], email.step)
    ref.set(_receipt(ctx, lead, email.step, "failed", attempt, summary=_summary(email), error="transient provider error; retrying"),
            **commit_args())


def _record_skip(ctx: RunContext, lead: dict[str, Any], attempt: int, contact: Any) -> Outcome:
    """The lead ends `skipped` with an `email.skip` receipt naming the reason; nothing is sent."""
    receipt = _receipt(ctx, lead, SKIP_STEP, "skipped", attempt, summary=f"skipped ({contact.skip_reason}): {contact.detail}"[:300])
    receipt.update({"type": "email.skip", "reason": contact.skip_reason})
    committed_at = job_writes.record_lead_skip(ctx.db, ctx.run_id, lead["id"], SKIP_STEP, receipt, attempt, contact.skip_reason)
    return Outcome(
        lead["id"], lead["index"], "skipped", attempt, SKIP_STEP, contact.skip_reason, contact.detail,
        committed_at=committed_at,
    )


def _record_failure(
    ctx: RunContext, lead: dict[str, Any], step: str, attempt: int, error: OutreachError
) -> Outcome:
    receipt = _receipt(ctx, lead, step, "failed", attempt, summary=f"failed: {error.message}"[:300], error=error.message)
    committed_at = job_writes.record_lead_failure(ctx.db, ctx.run_id, lead["id"], step, receipt, attempt, error.message)
    return Outcome(lead["id"], lead["index"], "failed", attempt, step, error.code, error.message, committed_at=committed_at)
