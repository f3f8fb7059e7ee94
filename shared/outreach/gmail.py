"""The Gmail provider: drafts.create and messages.send over REST with google-auth.

Credentials come from Application Default Credentials with the Gmail scopes; when
GMAIL_SENDER is set and the credentials can impersonate (a service account with
domain-wide delegation), they act as that mailbox. GMAIL_API_BASE_URL points it at
another host speaking Gmail's wire format (tools/gmail_server.py in the tests).

At most once, and no lead lost to an unanswered request (docs/reliability.md,
"Ambiguous sends"): every message carries a deterministic `Message-ID` made from the
lead's action id. A failure that certainly happened before the request left (no
connection could be made, credentials could not be refreshed, a 429 or a rate-limit
403) is transient. A failure after the request may have been written (a read timeout,
a connection closed under the request, a 5xx answer) is resolved by searching the
mailbox for that Message-ID (`rfc822msgid:`): found, the earlier send is adopted;
not found, nothing went out and the error stays transient; the mailbox itself
unreachable, a send fails as "outcome unknown" rather than risking a second email
(a draft is merely retried: a second draft reaches no customer).
"""

from __future__ import annotations

import base64
import threading
from email.message import EmailMessage
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from shared.outreach.errors import OutreachError, PermanentError, TransientError, for_http_status
from shared.outreach.outgoing import OutgoingEmail
from shared.retry import Exhausted, Policy

DEFAULT_BASE_URL = "https://gmail.googleapis.com"
MAILBOX = "/gmail/v1/users/me"
SCOPES = (
    "https://www.googleapis.com/auth/gmail.send",
    "https://www.googleapis.com/auth/gmail.compose",
    # messages.list with `q` (the rfc822msgid: search) needs a read scope.
    "https://www.googleapis.com/auth/gmail.readonly",
)
TIMEOUT = (5, 30)
MESSAGE_ID_DOMAIN = "mission-control.local"


class _NotFound(Exception):
    """The mailbox answered: no message with this Message-ID (yet)."""


class _SearchFailed(Exception):
    """The mailbox search itself did not answer."""


# After an ambiguous failure the mailbox is searched up to three times, at once and then after
# random pauses of up to 1 s and 2 s, so a message still being filed when the answer was lost is found.
CONFIRM_SEND = Policy("the mailbox search for a send whose answer was lost", retry_on=(_NotFound, _SearchFailed), initial=1.0, maximum=2.0)
CONFIRM_ATTEMPTS = 3
# A search reads a short answer: 5 s bounds it, so a send with its three searches (35 s +
# 3 x 10 s + 3 s) stays inside the pipeline's CLAIM_IN_FLIGHT_SECONDS (90 s), within
# which another attempt waits for this one instead of calling the claim interrupted.
SEARCH_READ_TIMEOUT = 5.0


def message_id_header(email: OutgoingEmail, sender: str) -> str:
    """`<run.lead.step@domain>`: the same for every attempt at this lead's message.
    Ids are letters, digits, '-' and '_' (shared/ids.py), all valid in a Message-ID."""
    domain = sender.rpartition("@")[2] if "@" in sender else MESSAGE_ID_DOMAIN
    return f"<{email.run_id}.{email.lead_id}.{email.step}@{domain}>"


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = email.to
    if sender:
        message["From"] = sender
    message["Subject"] = email.subject
    message["Message-ID"] = message_id_header(email, sender)
    message["X-Mission-Control-Key"] = email.idempotency_key
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def raw(email: OutgoingEmail, sender: str) -> str:
    """The RFC 2822 message, base64url-encoded, as Gmail's `raw` field wants it."""
    return base64.urlsafe_b64encode(build_message(email, sender).as_bytes()).decode("ascii")


def request_for(email: OutgoingEmail, sender: str, base_url: str = DEFAULT_BASE_URL) -> tuple[str, dict[str, Any]]:
    """(url, json body) of the call that drafts or sends `email`."""
    mailbox = base_url.rstrip("/") + MAILBOX
    if email.draft:
        return f"{mailbox}/drafts", {"message": {"raw": raw(email, sender)}}
    return f"{mailbox}/messages/send", {"raw": raw(email, sender)}


def error_from_response(response: requests.Response) -> OutreachError:
    """Google's error envelope: {"error": {"code", "message", "status", "errors": [{"reason"}]}}."""
    message, reason = response.reason or "error", None
    try:
        error = response.json().get("error", {})
        message = error.get("message") or message
        reasons = [e.get("reason") for e in error.get("errors", []) if isinstance(e, dict)]
        reason = next((r for r in reasons if r), None)
    except (ValueError, AttributeError):
        pass
    return for_http_status(
        response.status_code, f"{message[:300]}" + (f" ({reason})" if reason else ""), reason,
        retry_after=response.headers.get("Retry-After"),
    )


def provider_ids(email: OutgoingEmail, body: dict[str, Any]) -> dict[str, str]:
    if email.draft:
        return {"gmailDraftId": str(body.get("id", "")), "gmailMessageId": str(body.get("message", {}).get("id", ""))}
    ids = {"gmailMessageId": str(body.get("id", ""))}
    if body.get("threadId"):
        ids["gmailThreadId"] = str(body["threadId"])
    return ids


def _by_message_id(email: OutgoingEmail, sender: str) -> dict[str, str]:
    return {"q": f"rfc822msgid:{message_id_header(email, sender)}", "includeSpamTrash": "true"}


def certainly_unsent(exc: requests.RequestException) -> bool:
    """True when the request never left: no connection was made (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError) or isinstance(exc.args[0] if exc.args else None, NewConnectionError)


class GmailProvider:
    name = "gmail"
    external = True

    def __init__(
        self,
        sender: str = "",
        session: Any = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = TIMEOUT,
        confirm: Policy = CONFIRM_SEND,
    ):
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.confirm = confirm
        self._session = session
        self._lock = threading.Lock()

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(scopes=list(SCOPES))
                if self.sender and hasattr(credentials, "with_subject"):
                    credentials = credentials.with_subject(self.sender)
                self._session = AuthorizedSession(credentials)
            return self._session

    def deliver(self, db: Any, batch: Any, email: OutgoingEmail) -> dict[str, str]:
        url, body = request_for(email, self.sender, self.base_url)
        try:
            response = self._request("POST", url, json=body)
        except _Ambiguous as unsure:
            return self._resolve(email, unsure.error)
        if response.status_code >= 500:
            return self._resolve(email, error_from_response(response))
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            return provider_ids(email, response.json())
        except ValueError:
            return provider_ids(email, {})

    def find(self, email: OutgoingEmail) -> dict[str, str] | None:
        """The provider ids of this lead's message if the mailbox holds it (drafts.list for a
        draft, messages.list for a send, spam and trash included), else None."""
        kind = "drafts" if email.draft else "messages"
        found = (self._get(kind, _by_message_id(email, self.sender)).get(kind) or [])[:1]
        return provider_ids(email, found[0]) if found else None

    def find_sent(self, email: OutgoingEmail) -> dict[str, str] | None:
        """Review's check of an interrupted send: the ids of this lead's message if the mailbox
        holds it as sent, else None; TransientError when the mailbox cannot be searched.

        drafts.update puts the reviewed message, with the send's Message-ID, into a draft
        before drafts.send sends it, and messages.list lists drafts' messages too: a hit
        counts only once Gmail labels it SENT and no longer DRAFT (messages.get, minimal)."""
        try:
            for hit in self._get("messages", _by_message_id(email, self.sender)).get("messages") or []:
                labels = set(self._get(f"messages/{hit.get('id', '')}", {"format": "minimal"}).get("labelIds") or [])
                if "SENT" in labels and "DRAFT" not in labels:
                    return provider_ids(email, hit)
        except _SearchFailed as exc:
            raise TransientError(f"the mailbox could not be searched: {exc}", "provider_unreachable") from None
        return None

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """A read of the mailbox (a search or one resource); _SearchFailed when nothing is known."""
        try:
            timeout = (self.timeout[0], min(self.timeout[1], SEARCH_READ_TIMEOUT))
            response = self._request("GET", f"{self.base_url}{MAILBOX}/{path}", params=params, timeout=timeout)
        except (_Ambiguous, OutreachError) as exc:
            raise _SearchFailed(str(exc)) from None
        if response.status_code >= 400:  # throttled, down, or a scope missing: nothing is known
            raise _SearchFailed(error_from_response(response).message)
        try:
            return response.json()
        except ValueError:
            raise _SearchFailed("the mailbox answered something other than JSON") from None

    def _resolve(self, email: OutgoingEmail, error: OutreachError) -> dict[str, str]:
        """After a failure that may have sent: adopt the earlier send, or say nothing went out."""

        def look() -> dict[str, str]:
            ids = self.find(email)
            if ids is None:
                raise _NotFound()
            return ids

        try:
            return self.confirm.call(look, attempts=CONFIRM_ATTEMPTS)
        except Exhausted as gave_up:
            if isinstance(gave_up.last, _NotFound):
                raise error from None  # the mailbox says it never arrived: as transient as it was
        if email.draft:
            raise TransientError(f"{error.message}; the mailbox could not be searched either", "provider_timeout")
        raise PermanentError(
            f"{error.message}; the message may have been sent and the mailbox could not be searched: check the "
            "Sent folder before using retry", "outcome_unknown",
        )

    def send_draft(self, draft_id: str, email: OutgoingEmail) -> dict[str, str]:
        """Review's send: drafts.update puts the reviewed content (and its List-Unsubscribe
        headers) into the stored draft, then drafts.send sends that draft (Gmail API
        reference, users.drafts/update and users.drafts/send: the body is a Draft resource,
        the answer the sent Message)."""
        if not draft_id:
            raise PermanentError("no Gmail draft id was recorded for this lead", "provider_rejected")
        mailbox = self.base_url + MAILBOX
        body = {"id": draft_id, "message": {"raw": raw(email, self.sender)}}
        self._call("PUT", f"{mailbox}/drafts/{draft_id}", body, may_have_sent=False)
        sent = self._call("POST", f"{mailbox}/drafts/send", {"id": draft_id}, may_have_sent=True)
        ids = {"gmailMessageId": str(sent.get("id", "")), "gmailDraftId": draft_id}
        if sent.get("threadId"):
            ids["gmailThreadId"] = str(sent["threadId"])
        return ids

    def _call(self, method: str, url: str, body: dict[str, Any], may_have_sent: bool) -> dict[str, Any]:
        try:
            response = self._request(method, url, json=body)
        except _Ambiguous as lost:
            if may_have_sent:
                raise PermanentError(f"{lost.error.message}: the draft may have been sent; check the Sent folder",
                                     "outcome_unknown") from None
            raise lost.error from None
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError:
            return {}

    def _request(self, method: str, url: str, timeout: Any = None, **kwargs: Any) -> requests.Response:
        """The HTTP call; _Ambiguous when it may have reached Gmail and no answer came back."""
        from google.auth import exceptions as auth_exceptions

        try:
            return self.session().request(method, url, timeout=timeout or self.timeout, **kwargs)
        except auth_exceptions.TransportError as exc:  # the token refresh, before any Gmail request
            raise TransientError(f"could not refresh Gmail credentials: {exc}", "provider_unreachable") from None
        except auth_exceptions.GoogleAuthError as exc:
            raise PermanentError(f"Gmail credentials are not usable: {exc}", "provider_auth") from None
        except requests.ConnectionError as exc:
            if certainly_unsent(exc):
                raise TransientError(f"Gmail unreachable: {type(exc).__name__}", "provider_unreachable") from None
            raise _Ambiguous(TransientError(f"Gmail's answer was lost: {type(exc).__name__}", "provider_unreachable")) from None
        except requests.Timeout:  # a read timeout: the request was sent
            raise _Ambiguous(TransientError("Gmail did not answer in time", "provider_timeout")) from None


class _Ambiguous(Exception):
    """The request may have reached Gmail; `error` is what to report if it did not."""

    def __init__(self, error: OutreachError):
        super().__init__(error.message)
        self.error = error

