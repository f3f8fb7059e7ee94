"""A local Gmail-shaped HTTP server: the Gmail API's wire format, with fault knobs.

    server = GmailServer()                  # listens on a free loopback port
    server.base_url                         # "http://127.0.0.1:<port>": GMAIL_API_BASE_URL
    server.fail("messages.send", after_accept=True, drop=True)   # stored, then the line drops
    server.sent()                           # messages in the mailbox with the SENT label
    server.calls["messages.send"]           # requests per operation
    server.close()

Run by hand: `python tools/gmail_server.py [--port 8025]`; the same knobs are then
reachable over HTTP (see "Control endpoints").

What it speaks (https://developers.google.com/gmail/api/reference/rest, v1, under
/gmail/v1/users/{userId}/, any userId, "me" included):
- messages.send      POST messages/send {"raw": base64url RFC 2822} -> Message {id, threadId, labelIds: [SENT]}
- messages.list      GET  messages?q=rfc822msgid:<id>&includeSpamTrash=true -> {messages: [{id, threadId}],
                     resultSizeEstimate}; `q` supports `rfc822msgid:` (with or without <>) and nothing
                     else (400 badRequest); messages in TRASH or SPAM only with includeSpamTrash
- messages.get       GET  messages/{id}?format=full|metadata|minimal|raw -> Message
- drafts.create      POST drafts {"message": {"raw"}} -> Draft {id, message: {id, threadId, labelIds: [DRAFT]}}
- drafts.get         GET  drafts/{id}?format=... -> Draft with the full message
- drafts.update      PUT  drafts/{id} {"message": {"raw"}} -> Draft (its message replaced)
- drafts.send        POST drafts/send {"id": draftId[, "message": {"raw"}]} -> Message labelled SENT; the draft is gone
- drafts.list        GET  drafts?q=rfc822msgid:<id>&includeSpamTrash=true -> {drafts: [{id, message: {id, threadId}}],
                     resultSizeEstimate}
- drafts.delete      DELETE drafts/{id} -> 204, empty body
- errors in Google's JSON envelope (https://developers.google.com/gmail/api/guides/handle-errors):
  {"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}; an unknown id is
  404 notFound, a bad body 400 invalidArgument. A Message-ID header the message carries is kept (the
  mailbox search finds it); one without gets one made up, as Gmail does.

Fault knobs: `fail(operation, ...)` queues a fault for the next request(s) of `operation`
(one of the names above, or "*" for any). A fault either answers instead of the server, or,
with after_accept=True, lets the server do the operation (the message is stored and sent,
the draft created) and then spoils the answer, the case that makes a client unsure:
- status=..., reason=..., message=..., retry_after=...: an error answer in Google's envelope,
  with a Retry-After header when retry_after is given (seconds);
- drop=True: the connection closes without any answer;
- delay=seconds: the answer comes that late (longer than the client's read timeout: a timeout);
- text="<html>...": with status, that body as text/html (a front end's page, not Gmail's JSON);
- times=n: how many requests it spoils (default 1).
Presets, for the documented errors (https://developers.google.com/gmail/api/guides/handle-errors,
https://developers.google.com/gmail/api/reference/quota):
- rate_limited(op, retry_after)        429 rateLimitExceeded "Too many concurrent requests for user"
- user_rate_limited(op)                403 userRateLimitExceeded "User-rate limit exceeded"
- project_rate_limited(op)             403 rateLimitExceeded "Rate Limit Exceeded"
- daily_limit(op)                      403 dailyLimitExceeded "Daily user sending quota exceeded"
- auth_error(op)                       401 authError "Invalid Credentials"
- accepted_then_dropped(op) / accepted_then_500(op) / accepted_then_late(op, seconds)
`require_token="..."` makes every request without `Authorization: Bearer <that>` a 401 authError.

Control endpoints (for a server in another process): POST /_control/fail with the keyword
arguments of fail() as JSON; POST /_control/reset empties the mailbox and the faults;
GET /_control/state -> {"messages": [...], "drafts": [...], "calls": {...}}.
Loopback only; everything is kept in memory.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import email
import itertools
import json
import threading
import time
import urllib.parse
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
PREFIX = "/gmail/v1/users/"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
OPERATIONS = (
    "messages.send", "messages.list", "messages.get",
    "drafts.create", "drafts.get", "drafts.update", "drafts.send", "drafts.list", "drafts.delete",
)


@dataclasses.dataclass
class Fault:
    operation: str = "*"
    after_accept: bool = False
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    domain: str = "global"
    retry_after: int | None = None
    drop: bool = False
    delay: float = 0.0
    text: str | None = None  # with status: this body as text/html instead of the JSON envelope
    times: int = 1


@dataclasses.dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: list[str]
    message_id: str

    def resource(self, fmt: str = "full") -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "threadId": self.thread_id, "labelIds": list(self.labels)}
        if fmt == "minimal":
            return body
        if fmt == "raw":
            return {**body, "raw": base64.urlsafe_b64encode(self.raw).decode("ascii")}
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        headers = [{"name": name, "value": str(value)} for name, value in parsed.items()]
        return {**body, "sizeEstimate": len(self.raw), "payload": {"mimeType": parsed.get_content_type(), "headers": headers}}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, domain: str = "global"):
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain


class GmailServer:
    def __init__(self, port: int = 0, require_token: str | None = None):
        self.require_token = require_token
        self._lock = threading.Lock()
        self._ids = itertools.count(0x18C0000000000001)
        self.messages: dict[str, StoredMessage] = {}
        self.drafts: dict[str, str] = {}  # draft id -> message id
        self.faults: list[Fault] = []
        self.calls: collections.Counter[str] = collections.Counter()
        handler = type("Handler", (_Handler,), {"gmail": self})
        self._server = ThreadingHTTPServer((LOOPBACK, port), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gmail-server", daemon=True)
        self._thread.start()

    # --- knobs -------------------------------------------------------------------

    def fail(self, operation: str = "*", **spec: Any) -> Fault:
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}: one of {', '.join(OPERATIONS)} or '*'")
        fault = Fault(operation=operation, **spec)
        with self._lock:
            self.faults.append(fault)
        return fault

    def rate_limited(self, operation: str = "*", retry_after: int = 1, **spec: Any) -> Fault:
        return self.fail(operation, status=429, reason="rateLimitExceeded", domain="usageLimits",
                         message="Too many concurrent requests for user", retry_after=retry_after, **spec)

    def user_rate_limited(self, operation: str = "*", **spec: Any) -> Fault:
        return self.fail(operation, status=403, reason="userRateLimitExceeded", domain="usageLimits",
                         message="User-rate limit exceeded", **spec)

    def project_rate_limited(self, operation: str = "*", **spec: Any) -> Fault:
        return self.fail(operation, status=403, reason="rateLimitExceeded", domain="usageLimits",
                         message="Rate Limit Exceeded", **spec)

    def daily_limit(self, operation: str = "messages.send", **spec: Any) -> Fault:
        return self.fail(operation, status=403, reason="dailyLimitExceeded", domain="usageLimits",
                         message="Daily user sending quota exceeded", **spec)

    def auth_error(self, operation: str = "*", **spec: Any) -> Fault:
        return self.fail(operation, status=401, reason="authError", message="Invalid Credentials", **spec)

    def accepted_then_dropped(self, operation: str = "messages.send", **spec: Any) -> Fault:
        return self.fail(operation, after_accept=True, drop=True, **spec)

    def accepted_then_500(self, operation: str = "messages.send", **spec: Any) -> Fault:
        return self.fail(operation, after_accept=True, status=500, reason="backendError", message="Backend Error", **spec)

    def accepted_then_late(self, operation: str = "messages.send", seconds: float = 5.0, **spec: Any) -> Fault:
        return self.fail(operation, after_accept=True, delay=seconds, **spec)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.drafts.clear()
            self.faults.clear()
            self.calls.clear()

    # --- what the mailbox holds ----------------------------------------------------

    def sent(self) -> list[StoredMessage]:
        with self._lock:
            return [m for m in self.messages.values() if "SENT" in m.labels]

    def draft_messages(self) -> list[StoredMessage]:
        with self._lock:
            return [self.messages[m] for m in self.drafts.values()]

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "messages": [m.resource("full") for m in self.messages.values()],
                "drafts": [{"id": d, "message": {"id": m}} for d, m in self.drafts.items()],
                "calls": dict(self.calls),
            }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "GmailServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the API -------------------------------------------------------------------

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            self.calls[operation] += 1
            for fault in self.faults:
                if fault.operation in ("*", operation):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def _new_id(self) -> str:
        return format(next(self._ids), "x")

    def _store(self, raw_b64: Any, labels: list[str], thread_id: str | None = None) -> StoredMessage:
        if not isinstance(raw_b64, str) or not raw_b64:
            raise ApiError(400, "invalidArgument", "'raw' RFC822 payload message string or uploading message via /upload/* URL required")
        try:
            raw = base64.urlsafe_b64decode(raw_b64 + "=" * (-len(raw_b64) % 4))
        except (ValueError, TypeError):
            raise ApiError(400, "invalidArgument", "Invalid value for ByteString") from None
        parsed = email.message_from_bytes(raw, policy=policy.default)
        if "SENT" in labels and not parsed.get("To"):
            raise ApiError(400, "invalidArgument", "Recipient address required")
        message_id = str(parsed.get("Message-ID") or "").strip()
        new_id = self._new_id()
        if not message_id:
            message_id = f"<{new_id}@mail.gmail.com>"
        stored = StoredMessage(new_id, thread_id or new_id, raw, labels, message_id)
        with self._lock:
            self.messages[new_id] = stored
        return stored

    def _message(self, message_id: str) -> StoredMessage:
        with self._lock:
            found = self.messages.get(message_id)
        if found is None:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return found

    def _draft(self, draft_id: str) -> tuple[str, StoredMessage]:
        with self._lock:
            message_id = self.drafts.get(draft_id)
        if message_id is None:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return draft_id, self._message(message_id)

    def _matching(self, query: dict[str, list[str]]) -> list[StoredMessage]:
        wanted = None
        for term in (query.get("q") or [""])[0].split():
            if not term.startswith("rfc822msgid:"):
                raise ApiError(400, "badRequest", f"this local server supports only rfc822msgid: searches, not {term!r}")
            wanted = term[len("rfc822msgid:"):].strip("<>")
        spam_trash = (query.get("includeSpamTrash") or ["false"])[0] == "true"
        with self._lock:
            found = list(self.messages.values())
        if not spam_trash:
            found = [m for m in found if not {"SPAM", "TRASH"} & set(m.labels)]
        if wanted is not None:
            found = [m for m in found if m.message_id.strip("<>") == wanted]
        return found

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[str, int, Any]:
        """(operation, status, answer) of one API request; ApiError for Google's error answers."""
        parts = path[len(PREFIX):].split("/")[1:]  # after {userId}
        fmt = (query.get("format") or ["full"])[0]
        if parts == ["messages", "send"] and method == "POST":
            return "messages.send", 200, self._store(_field(body, "raw"), ["SENT"], _field(body, "threadId")).resource("minimal")
        if parts == ["messages"] and method == "GET":
            found = self._matching(query)
            answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
            if found:
                answer["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in found]
            return "messages.list", 200, answer
        if len(parts) == 2 and parts[0] == "messages" and method == "GET":
            return "messages.get", 200, self._message(parts[1]).resource(fmt)
        if parts == ["drafts"] and method == "POST":
            stored = self._store(_field(_field(body, "message"), "raw"), ["DRAFT"])
            draft_id = f"r{self._new_id()}"
            with self._lock:
                self.drafts[draft_id] = stored.id
            return "drafts.create", 200, {"id": draft_id, "message": stored.resource("minimal")}
        if parts == ["drafts"] and method == "GET":
            ids = {m.id for m in self._matching(query)}
            with self._lock:
                drafts = [(d, self.messages[m]) for d, m in self.drafts.items() if m in ids]
            answer = {"resultSizeEstimate": len(drafts)}
            if drafts:
                answer["drafts"] = [{"id": d, "message": {"id": m.id, "threadId": m.thread_id}} for d, m in drafts]
            return "drafts.list", 200, answer
        if parts == ["drafts", "send"] and method == "POST":
            draft_id, message = self._draft(str(_field(body, "id") or ""))
            new_raw = _field(body.get("message") or {}, "raw") if isinstance(body.get("message"), dict) else None
            if new_raw:
                message = self._store(new_raw, ["DRAFT"], message.thread_id)
            if not email.message_from_bytes(message.raw, policy=policy.default).get("To"):
                raise ApiError(400, "invalidArgument", "Recipient address required")
            with self._lock:
                self.drafts.pop(draft_id, None)
                message.labels = ["SENT"]
            return "drafts.send", 200, message.resource("minimal")
        if len(parts) == 2 and parts[0] == "drafts":
            draft_id, message = self._draft(parts[1])
            if method == "GET":
                return "drafts.get", 200, {"id": draft_id, "message": message.resource(fmt)}
            if method == "PUT":
                replaced = self._store(_field(_field(body, "message"), "raw"), ["DRAFT"], message.thread_id)
                with self._lock:
                    self.drafts[draft_id] = replaced.id
                    self.messages.pop(message.id, None)
                return "drafts.update", 200, {"id": draft_id, "message": replaced.resource("minimal")}
            if method == "DELETE":
                with self._lock:
                    self.drafts.pop(draft_id, None)
                    self.messages.pop(message.id, None)
                return "drafts.delete", 204, None
        raise ApiError(404, "notFound", f"no Gmail method {method} {path} in this local server")

    def operation_of(self, method: str, path: str) -> str:
        """The operation a request names, before it is carried out (for faults)."""
        parts = path[len(PREFIX):].split("/")[1:]
        if parts[:1] == ["messages"]:
            return "messages.send" if parts == ["messages", "send"] else ("messages.list" if len(parts) == 1 else "messages.get")
        if parts == ["drafts", "send"]:
            return "drafts.send"
        if parts == ["drafts"]:
            return "drafts.create" if method == "POST" else "drafts.list"
        return {"GET": "drafts.get", "PUT": "drafts.update", "DELETE": "drafts.delete"}.get(method, "unknown")


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict):
        raise ApiError(400, "invalidArgument", "Invalid JSON payload received.")
    return body.get(name)


def error_body(status: int, reason: str, message: str, domain: str = "global") -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}],
                      "status": STATUS_NAMES.get(status, "UNKNOWN")}}


class _Handler(BaseHTTPRequestHandler):
    gmail: GmailServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the counters instead
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if url.path.startswith("/_control/"):
            return self._control(method, url.path, data)
        if not url.path.startswith(PREFIX):
            return self._answer(404, error_body(404, "notFound", "Not Found"))
        gmail = self.gmail
        if gmail.require_token is not None and self.headers.get("Authorization") != f"Bearer {gmail.require_token}":
            return self._answer(401, error_body(401, "authError", "Invalid Credentials"))
        fault = gmail._take_fault(gmail.operation_of(method, url.path))
        if fault is not None and not fault.after_accept:
            return self._spoil(fault, None)
        try:
            body = json.loads(data) if data else {}
            operation, status, answer = gmail.handle(method, url.path, query, body)
        except json.JSONDecodeError:
            return self._answer(400, error_body(400, "parseError", "Invalid JSON payload received."))
        except ApiError as exc:
            return self._answer(exc.status, error_body(exc.status, exc.reason, exc.message, exc.domain))
        if fault is not None:
            return self._spoil(fault, (status, answer))
        self._answer(status, answer)

    def _spoil(self, fault: Fault, done: tuple[int, Any] | None) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            self.close_connection = True
            return  # no status line at all: the client sees the connection close
        if fault.status is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.text is not None:
                return self._answer(fault.status, fault.text, {**headers, "Content-Type": "text/html"})
            reason = fault.reason or "backendError"
            return self._answer(fault.status, error_body(fault.status, reason, fault.message or reason, fault.domain), headers)
        if done is not None:
            return self._answer(*done)
        self._answer(500, error_body(500, "backendError", "Backend Error"))

    def _control(self, method: str, path: str, data: bytes) -> None:
        gmail = self.gmail
        try:
            if path == "/_control/fail" and method == "POST":
                spec = json.loads(data or b"{}")
                gmail.fail(spec.pop("operation", "*"), **spec)
                return self._answer(200, {"faults": len(gmail.faults)})
            if path == "/_control/reset" and method == "POST":
                gmail.reset()
                return self._answer(200, {})
            if path == "/_control/state" and method == "GET":
                return self._answer(200, gmail.state())
        except (TypeError, ValueError) as exc:
            return self._answer(400, error_body(400, "invalidArgument", str(exc)))
        self._answer(404, error_body(404, "notFound", "Not Found"))

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a `delay` fault)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--require-token", default=None)
    args = parser.parse_args()
    server = GmailServer(args.port, args.require_token)
    print(f"Gmail-shaped API at {server.base_url} (GMAIL_API_BASE_URL); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
