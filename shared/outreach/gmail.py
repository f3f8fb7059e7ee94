"""The Gmail provider: drafts.create and messages.send over REST with google-auth.

Credentials come from Application Default Credentials with the Gmail scopes; when
GMAIL_SENDER is set and the credentials can impersonate (a service account with
domain-wide delegation), they act as that mailbox. The message carries the
pipeline's idempotency key in an `X-Mission-Control-Key` header so a mailbox search
can reconcile an interrupted send.

Error handling is what the pipeline needs to stay at-most-once: throttling and 5xx
answers are transient (nothing was sent), other 4xx are permanent, and a send whose
answer never came back is *not* retried: it may have gone out.
"""

from __future__ import annotations

import base64
import threading
from email.message import EmailMessage
from typing import Any

import requests

from shared.outreach.errors import OutreachError, PermanentError, TransientError, for_http_status
from shared.outreach.providers import OutgoingEmail

GMAIL_API = "https://gmail.googleapis.com/gmail/v1/users/me"
SCOPES = (
    "https://www.googleapis.com/auth/gmail.send",
    "https://www.googleapis.com/auth/gmail.compose",
)
TIMEOUT = (5, 30)


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = email.to
    if sender:
        message["From"] = sender
    message["Subject"] = email.subject
    message["X-Mission-Control-Key"] = email.idempotency_key
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def raw(email: OutgoingEmail, sender: str) -> str:
    """The RFC 2822 message, base64url-encoded, as Gmail's `raw` field wants it."""
    return base64.urlsafe_b64encode(build_message(email, sender).as_bytes()).decode("ascii")


def request_for(email: OutgoingEmail, sender: str) -> tuple[str, dict[str, Any]]:
    """(url, json body) of the call that drafts or sends `email`."""
    if email.draft:
        return f"{GMAIL_API}/drafts", {"message": {"raw": raw(email, sender)}}
    return f"{GMAIL_API}/messages/send", {"raw": raw(email, sender)}


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
    return for_http_status(response.status_code, f"{message[:300]}" + (f" ({reason})" if reason else ""), reason)


def provider_ids(email: OutgoingEmail, body: dict[str, Any]) -> dict[str, str]:
    if email.draft:
        return {"gmailDraftId": str(body.get("id", "")), "gmailMessageId": str(body.get("message", {}).get("id", ""))}
    ids = {"gmailMessageId": str(body.get("id", ""))}
    if body.get("threadId"):
        ids["gmailThreadId"] = str(body["threadId"])
    return ids


class GmailProvider:
    name = "gmail"
    external = True

    def __init__(self, sender: str = "", session: Any = None):
        self.sender = sender
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
        from google.auth import exceptions as auth_exceptions

        url, body = request_for(email, self.sender)
        try:
            response = self.session().post(url, json=body, timeout=TIMEOUT)
        except auth_exceptions.TransportError as exc:
            raise TransientError(f"could not refresh Gmail credentials: {exc}", "provider_unreachable") from None
        except auth_exceptions.GoogleAuthError as exc:
            raise PermanentError(f"Gmail credentials are not usable: {exc}", "provider_auth") from None
        except requests.ReadTimeout:
            if email.draft:  # a second draft is a nuisance, not a second email to a customer
                raise TransientError("Gmail did not answer in time", "provider_timeout") from None
            raise PermanentError(
                "Gmail did not answer in time: the message may have been sent; check the Sent folder "
                "before using retry", "outcome_unknown",
            ) from None
        except requests.ConnectionError as exc:
            raise TransientError(f"Gmail unreachable: {type(exc).__name__}", "provider_unreachable") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            return provider_ids(email, response.json())
        except ValueError:
            return provider_ids(email, {})

    def send_draft(self, draft_id: str, email: OutgoingEmail) -> dict[str, str]:
        """Review's send: drafts.update puts the reviewed content (and its List-Unsubscribe
        headers) into the stored draft, then drafts.send sends that draft (Gmail API
        reference, users.drafts/update and users.drafts/send: the body is a Draft resource,
        the answer the sent Message)."""
        if not draft_id:
            raise PermanentError("no Gmail draft id was recorded for this lead", "provider_rejected")
        body = {"id": draft_id, "message": {"raw": raw(email, self.sender)}}
        self._call("put", f"{GMAIL_API}/drafts/{draft_id}", body, may_have_sent=False)
        sent = self._call("post", f"{GMAIL_API}/drafts/send", {"id": draft_id}, may_have_sent=True)
        ids = {"gmailMessageId": str(sent.get("id", "")), "gmailDraftId": draft_id}
        if sent.get("threadId"):
            ids["gmailThreadId"] = str(sent["threadId"])
        return ids

    def _call(self, method: str, url: str, body: dict[str, Any], may_have_sent: bool) -> dict[str, Any]:
        from google.auth import exceptions as auth_exceptions

        try:
            response = getattr(self.session(), method)(url, json=body, timeout=TIMEOUT)
        except auth_exceptions.TransportError as exc:
            raise TransientError(f"could not refresh Gmail credentials: {exc}", "provider_unreachable") from None
        except auth_exceptions.GoogleAuthError as exc:
            raise PermanentError(f"Gmail credentials are not usable: {exc}", "provider_auth") from None
        except requests.ReadTimeout:
            if may_have_sent:
                raise PermanentError("Gmail did not answer in time: the draft may have been sent; check the Sent "
                                     "folder", "outcome_unknown") from None
            raise TransientError("Gmail did not answer in time", "provider_timeout") from None
        except requests.ConnectionError as exc:
            raise TransientError(f"Gmail unreachable: {type(exc).__name__}", "provider_unreachable") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError:
            return {}

