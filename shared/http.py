"""The request pipeline every function shares.

An entry point declares its routes on a `Router` and hands each request to
`Router.dispatch`. The router owns everything that is the same for every
endpoint: routing (404/405 + Allow), CORS and preflight, authentication, JSON
parsing with size and media-type checks, pydantic validation with field-level
details, the error envelope, `Cache-Control: no-store`, and turning an
unexpected exception into a 500 that carries a request id but no stack.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from typing import Any, Callable, Literal, TypeVar

import flask
from google.api_core import exceptions as gexc
from pydantic import BaseModel, ValidationError
from werkzeug import exceptions as wz
from werkzeug.routing import BaseConverter, Map, Rule

from shared import auth, errors, logs
from shared.models import validate_model
from shared.settings import Settings, get_settings

logger = logging.getLogger("mission_control.http")

M = TypeVar("M", bound=BaseModel)
AuthPolicy = Literal["user", "public", "optional"]

STATUS = {
    errors.InvalidArgument: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}
# Google API errors that mean "down, slow, contended or out of quota": trying again
# shortly is the cure, so each is a 503 with Retry-After, never a 500. Aborted is
# contention that outlasted every retry.
BACKEND_UNAVAILABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.RetryError,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.InternalServerError,
)
_CORS_HEADERS = "Authorization, Content-Type, If-Match, X-Request-Id"


@dataclasses.dataclass
class Reply:
    """A handler's answer when 200 + JSON is not enough."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Call:
    """What a handler receives: the request, its path parameters and its caller."""

    request: flask.Request
    params: dict[str, str]
    user: auth.User | None
    request_id: str

    def json(self, model: type[M], max_bytes: int | None = None, lone_surrogates: bool = False) -> M:
        return validate_model(model, read_json(self.request, max_bytes, lone_surrogates))

    def query(self, model: type[M]) -> M:
        return validate_model(model, self.request.args.to_dict())

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


def read_json(request: flask.Request, max_bytes: int | None = None, lone_surrogates: bool = False) -> Any:
    """The body as JSON. A lone UTF-16 surrogate ("\\ud800" is legal JSON) cannot be
    stored or logged, so it is a 400 unless the endpoint cleans such text itself."""
    limit = max_bytes or get_settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge(f"the request body is larger than {limit} bytes")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise errors.TooLarge(f"the request body is larger than {limit} bytes")
    if not raw.strip():
        raise errors.InvalidArgument("a JSON request body is required", [{"field": "(body)", "message": "empty"}])
    if request.mimetype != "application/json":
        raise errors.UnsupportedMediaType("send the body as JSON with 'Content-Type: application/json'")
    try:
        data = json.loads(raw)
        if not lone_surrogates:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        return data
    except UnicodeEncodeError:
        raise errors.InvalidArgument(
            "the request body holds an unpaired UTF-16 surrogate", [{"field": "(body)", "message": "invalid unicode"}]
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidArgument(
            "the request body is not valid JSON", [{"field": "(body)", "message": str(exc)}]
        ) from None
    except RecursionError:  # "[[[[…" exhausts the parser's stack well inside the size cap
        raise errors.InvalidArgument(
            "the request body is nested too deeply", [{"field": "(body)", "message": "nested too deeply"}]
        ) from None


def error_body(code: str, message: str, details: list | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


Handler = Callable[[Call], Any]


@dataclasses.dataclass(frozen=True)
class Operation:
    """What a route says about itself; tools/openapi.py builds the API document from these."""

    rule: str
    methods: tuple[str, ...]
    handler: Handler
    auth: AuthPolicy
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()


class IdConverter(BaseConverter):
    """`<id:name>`: a resource id (shared/ids.py) and nothing else, so `/drafts/<id:lead>`
    never swallows `/drafts/lead-1:send` (a custom method of the same resource)."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}"


class Router:
    def __init__(self, name: str):
        self.name = name
        self._map = Map(strict_slashes=False, merge_slashes=False, converters={"id": IdConverter})
        self._routes: dict[str, tuple[Handler, AuthPolicy]] = {}
        self.operations: list[Operation] = []

    def route(
        self,
        rule: str,
        methods: list[str],
        auth: AuthPolicy = "user",
        *,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Registers a handler. body/query/response/status/errors only document the route."""

        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{len(self._routes)}"
            self._map.add(Rule(rule, endpoint=endpoint, methods=methods))
            self._routes[endpoint] = (handler, auth)
            self.operations.append(
                Operation(rule, tuple(methods), handler, auth, body, query, response, status, tuple(errors))
            )
            return handler

        return register

    def dispatch(self, request: flask.Request) -> flask.Response:
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        try:
            logs.configure()  # reads the settings: a configuration error is answered below
            response = self._handle(request, request_id)
        except Exception as exc:  # the edge: whatever escaped becomes an honest error
            response = _error_response(exc, request_id)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Request-Id"] = request_id
        _add_cors(request, response)
        logs.log_request(request.method, request.path, response.status_code, started)
        return response

    def _handle(self, request: flask.Request, request_id: str) -> flask.Response:
        auth.refuse_unsafe_auth_off()
        adapter = self._map.bind("localhost", path_info=request.path)
        if request.method == "OPTIONS":
            return _preflight(adapter, request.path)
        try:
            endpoint, params = adapter.match(method=request.method)
        except wz.MethodNotAllowed as exc:
            allowed = sorted(set(exc.valid_methods or []) | {"OPTIONS"})
            response = _json(error_body("method_not_allowed", f"{request.method} is not allowed here"), 405)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        except wz.NotFound:
            return _json(error_body("not_found", f"no endpoint at {request.path}"), 404)
        handler, policy = self._routes[endpoint]
        user = None
        if policy == "user":
            user = auth.require_user(request.headers)
        elif policy == "optional":
            user = auth.optional_user(request.headers)
        result = handler(Call(request=request, params=params, user=user, request_id=request_id))
        return _to_response(result)


def _preflight(adapter: Any, path: str) -> flask.Response:
    try:
        methods = adapter.allowed_methods()
    except wz.HTTPException:
        methods = []
    if not methods:
        return _json(error_body("not_found", f"no endpoint at {path}"), 404)
    response = flask.Response(status=204)
    response.headers["Allow"] = ", ".join(sorted(set(methods) | {"OPTIONS"}))
    response.headers["Access-Control-Allow-Methods"] = response.headers["Allow"]
    response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = "3600"
    return response


def _add_cors(request: flask.Request, response: flask.Response) -> None:
    origin = request.headers.get("Origin")
    response.headers.add("Vary", "Origin")
    try:
        allowed = get_settings().allowed_origins
    except ValidationError:  # a configuration error, already answered with its 500
        allowed = ()
    if origin and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After, X-Request-Id"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    payload = "" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    response = flask.Response(payload, status=status, mimetype="application/json", headers=headers)
    return response


def _to_response(result: Any) -> flask.Response:
    if isinstance(result, flask.Response):
        return result
    if isinstance(result, Reply):
        return _json(_plain(result.body), result.status, result.headers)
    return _json(_plain(result))


def _plain(body: Any) -> Any:
    if isinstance(body, BaseModel):
        return body.model_dump(by_alias=True, mode="json")
    return body


def _error_response(exc: Exception, request_id: str) -> flask.Response:
    if isinstance(exc, errors.DomainError):
        status = STATUS.get(type(exc)) or next(
            (code for cls, code in STATUS.items() if isinstance(exc, cls)), 400
        )
        headers = {}
        if isinstance(exc, (errors.RateLimited, errors.Unavailable)):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        if status >= 500:
            logs.log(logger, logging.WARNING, exc.message, requestId=request_id, code=exc.code)
        return _json(error_body(exc.code, exc.message, exc.details), status, headers)
    if _is_configuration_error(exc):
        # Which variable is wrong is for the operator's log, not for every caller.
        logger.critical("the function's configuration is invalid: %s (requestId %s)", exc, request_id)
        return _json(error_body("internal", f"the service is misconfigured; quote request id {request_id}"), 500)
    if isinstance(exc, BACKEND_UNAVAILABLE):
        logs.log(logger, logging.WARNING, f"Firestore unavailable: {type(exc).__name__}", requestId=request_id)
        return _json(
            error_body("unavailable", "the database is unreachable; try again shortly", [{"requestId": request_id}]),
            503,
            {"Retry-After": "5"},
        )
    logs.log_unexpected(logger, request_id, exc)
    return _json(
        error_body("internal", f"internal error; quote request id {request_id}", [{"requestId": request_id}]),
        500,
    )


def _is_configuration_error(exc: Exception) -> bool:
    """get_settings() refusing an environment variable (shared/settings.py)."""
    return isinstance(exc, ValidationError) and exc.title == Settings.__name__
