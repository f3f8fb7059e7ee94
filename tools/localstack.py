"""The local stack: Firestore emulator, every function, and a Hosting-like router.

`make dev` runs it from the command line (tools/dev.py); the test harness uses the
same pieces, so the end-to-end tests exercise exactly what a developer runs.
The router reads firebase.json's `hosting.rewrites`: there is no second routing
table, and the path reaches each function unchanged, as Hosting passes it.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = (
    "The Firestore emulator is needed: install the Google Cloud CLI with its Firestore "
    "emulator and a Java runtime (Debian/Ubuntu: apt-get install google-cloud-cli "
    "google-cloud-cli-firestore-emulator openjdk-17-jre-headless; elsewhere: "
    "'gcloud components install cloud-firestore-emulator'), then run this again."
)
# Firebase Hosting ends a request to a rewritten function after 60 s with a 504
# (Firebase docs, "Pair Cloud Functions with Firebase Hosting"); the local stack alone
# reads ROUTER_TIMEOUT_SECONDS, so a test can lower it.
HOSTING_TIMEOUT_SECONDS = 60.0
INIT_JSON_PATH = "/__/firebase/init.json"
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length", "content-encoding", "host",
}


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"process for {url} exited with code {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise StackError(f"{url} did not answer within {timeout:.0f}s")


def _spawn(args: list[str], env: dict[str, str], log_path: Path | None, cwd: Path | None = None) -> subprocess.Popen:
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    # A session of its own, so stopping it takes its children (java, gunicorn workers) too.
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)


def stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- Firestore emulator -------------------------------------------------------


def check_emulator_installed() -> str:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError("gcloud is not on PATH. " + INSTALL_HINT)
    if shutil.which("java") is None:
        raise StackError("java is not on PATH. " + INSTALL_HINT)
    sdk_root = Path(os.path.realpath(gcloud)).parent.parent
    candidates = [sdk_root / "platform" / "cloud-firestore-emulator", Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator")]
    if not any(p.exists() for p in candidates):
        raise StackError("the cloud-firestore-emulator component is missing. " + INSTALL_HINT)
    return gcloud


@dataclass
class Emulator:
    host: str
    project: str
    process: subprocess.Popen | None = None

    def reset(self) -> None:
        """Deletes every document of the project (the emulator's REST reset endpoint)."""
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        requests.delete(url, timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def start_emulator(port: int, project: str, log_path: Path | None = None, timeout: float = 60) -> Emulator:
    gcloud = check_emulator_installed()
    host = f"127.0.0.1:{port}"
    process = _spawn(
        [gcloud, "emulators", "firestore", "start", f"--host-port={host}", "--quiet"],
        {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        log_path,
    )
    try:
        wait_for_http(f"http://{host}/", timeout, process)
    except StackError:
        stop(process)
        raise StackError(f"the Firestore emulator did not start on {host}. " + INSTALL_HINT) from None
    return Emulator(host=host, project=project, process=process)


def emulator_from_env_or_start(project: str, log_path: Path | None = None) -> Emulator:
    """The emulator FIRESTORE_EMULATOR_HOST names, or a new one on a free port.

    Either way this process's environment then points the Firestore client at it.
    `stop()` on the result stops only an emulator started here (its `process` is set).
    """
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if host:
        emulator = Emulator(host=host, project=os.environ.get("GOOGLE_CLOUD_PROJECT", project))
    else:
        emulator = start_emulator(free_port(), project, log_path)
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", emulator.project)
    return emulator


# --- Firebase Auth emulator (firebase-tools, pinned in package.json) -------------

FIREBASE_CLI = ROOT / "node_modules" / ".bin" / "firebase"
AUTH_INSTALL_HINT = (
    "The Firebase Auth emulator comes from the firebase-tools npm package pinned in "
    "package.json: install Node.js 20+ and run `npm ci` in the repository (make dev AUTH=emulator "
    "and make browser-deps do it), then run this again."
)


@dataclass
class AuthEmulator:
    host: str
    project: str
    process: subprocess.Popen | None = None
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def reset(self) -> None:
        """Deletes every account (the emulator's REST endpoint for it)."""
        requests.delete(f"{self.url}/emulator/v1/projects/{self.project}/accounts", timeout=10).raise_for_status()

    def create_user(self, email: str, password: str, verified: bool = True) -> str:
        """An account made through the emulator's Identity Toolkit API, as an admin ("Bearer owner")."""
        response = requests.post(
            f"{self.url}/identitytoolkit.googleapis.com/v1/projects/{self.project}/accounts",
            json={"email": email, "password": password, "emailVerified": verified},
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["localId"]

    def sign_in(self, email: str, password: str) -> str:
        """An ID token, from the same endpoint the page signs in with."""
        response = requests.post(
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=local-dev-api-key",
            json={"email": email, "password": password, "returnSecureToken": True},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["idToken"]

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_auth_emulator(port: int, project: str, log_path: Path | None = None, timeout: float = 120) -> AuthEmulator:
    """`firebase emulators:start --only auth` with a config of its own (free hub and logging
    ports), so it runs beside other emulators and never reads the project's firebase.json."""
    if not FIREBASE_CLI.exists():
        raise StackError(f"{FIREBASE_CLI} is missing. " + AUTH_INSTALL_HINT)
    for tool in ("node", "java"):  # firebase-tools' emulator launcher checks for Java too
        if shutil.which(tool) is None:
            raise StackError(f"{tool} is not on PATH. " + AUTH_INSTALL_HINT)
    workdir = Path(tempfile.mkdtemp(prefix="mc-auth-emulator-"))
    config = {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
        }
    }
    (workdir / "firebase.json").write_text(json.dumps(config))
    host = f"127.0.0.1:{port}"
    process = _spawn(
        [str(FIREBASE_CLI), "emulators:start", "--only", "auth", "--project", project, "--config", str(workdir / "firebase.json")],
        {**os.environ, "CI": "1"},  # no interactive prompts, no update check
        log_path,
        cwd=workdir,
    )
    try:
        wait_for_http(f"http://{host}/", timeout, process)
    except StackError:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        raise StackError(f"the Firebase Auth emulator did not start on {host} (its log: {log_path}). " + AUTH_INSTALL_HINT) from None
    return AuthEmulator(host=host, project=project, process=process, workdir=workdir)


# --- Functions ----------------------------------------------------------------


def function_names(config_path: Path = ROOT / "firebase.json") -> list[str]:
    rewrites = json.loads(config_path.read_text())["hosting"]["rewrites"]
    return sorted({r["function"]["functionId"] for r in rewrites if "function" in r})


@dataclass
class Function:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_function(name: str, port: int, env: dict[str, str], log_dir: Path | None = None) -> Function:
    args = [
        sys.executable, "-m", "functions_framework",
        "--target", name, "--source", str(ROOT / "functions" / name / "main.py"),
        "--host", "127.0.0.1", "--port", str(port),
    ]
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    log_path = log_dir / f"{name}.log" if log_dir else None
    return Function(name, port, _spawn(args, full_env, log_path))


# --- Hosting router -------------------------------------------------------------


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Hosting's glob: '**' spans segments, '*' stays in one, '@(a|b)' picks one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern.startswith("@(", i):
            end = pattern.index(")", i)
            options = pattern[i + 2 : end].split("|")
            out, i = out + "(?:" + "|".join(re.escape(o) for o in options) + ")", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@dataclass
class HostingConfig:
    public: Path
    rewrites: list[tuple[re.Pattern[str], str]]
    headers: list[tuple[re.Pattern[str], dict[str, str]]] = field(default_factory=list)
    clean_urls: bool = False

    @classmethod
    def load(cls, path: Path = ROOT / "firebase.json") -> "HostingConfig":
        hosting = json.loads(path.read_text())["hosting"]
        rewrites = [(glob_to_regex(r["source"]), r["function"]["functionId"]) for r in hosting["rewrites"] if "function" in r]
        headers = [
            (glob_to_regex(h["source"]), {kv["key"]: kv["value"] for kv in h["headers"]})
            for h in hosting.get("headers", [])
        ]
        return cls(path.parent / hosting["public"], rewrites, headers, bool(hosting.get("cleanUrls")))

    def function_for(self, path: str) -> str | None:
        """The first rewrite that matches wins, as on Hosting."""
        return next((name for pattern, name in self.rewrites if pattern.fullmatch(path)), None)


def router_timeout_seconds(env: dict[str, str] | None = None) -> float:
    return float((env or {}).get("ROUTER_TIMEOUT_SECONDS") or os.environ.get("ROUTER_TIMEOUT_SECONDS") or HOSTING_TIMEOUT_SECONDS)


def init_json(env: dict[str, str]) -> dict[str, str]:
    """What Hosting serves at /__/firebase/init.json, for the local project.

    `authMode` and `authEmulatorHost` are ours, not Firebase's: Hosting never serves them,
    so a deployed page always signs in.
    """
    project = env.get("GOOGLE_CLOUD_PROJECT", "demo-mission-control")
    body = {
        "projectId": project,
        "apiKey": "local-dev-api-key",  # the Auth emulator accepts any key
        "authDomain": f"{project}.firebaseapp.com",
        "storageBucket": f"{project}.appspot.com",
    }
    if env.get("AUTH_MODE", "firebase").strip().lower() == "off":
        body["authMode"] = "off"
    if env.get("FIREBASE_AUTH_EMULATOR_HOST"):
        body["authEmulatorHost"] = env["FIREBASE_AUTH_EMULATOR_HOST"]
    return body


class Router:
    """A WSGI app that does what Firebase Hosting does for this project."""

    def __init__(
        self,
        config: HostingConfig,
        function_urls: dict[str, str],
        init: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ):
        self.config = config
        self.function_urls = function_urls
        self.init = init if init is not None else init_json({})
        self.timeout_seconds = timeout_seconds if timeout_seconds is not None else router_timeout_seconds()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(self, environ, start_response):
        request = Request(environ)
        # Hosting's order: its reserved /__/ URLs, an existing static file, the first matching rewrite.
        reserved = request.path == INIT_JSON_PATH
        static = None if reserved else self._static_file(request.path)
        name = None if static or reserved else self.config.function_for(request.path)
        if reserved:
            response = Response(json.dumps(self.init), 200, mimetype="application/json")
        elif static:
            response = Response(static.read_bytes(), 200, mimetype=mimetypes.guess_type(static.name)[0] or "application/octet-stream")
        elif name:
            response = self._proxy(request, name)
        else:
            response = self._not_found()
        for pattern, headers in self.config.headers:
            if pattern.fullmatch(request.path):
                for key, value in headers.items():
                    response.headers.setdefault(key, value)
        return response(environ, start_response)

    def _proxy(self, request: Request, name: str) -> Response:
        base = self.function_urls.get(name)
        if base is None:
            return Response(json.dumps({"error": {"code": "unavailable", "message": f"{name} is not running", "details": []}}), 503, mimetype="application/json")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        forwarded = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {request.remote_addr}" if forwarded else (request.remote_addr or "")
        url = base + request.full_path.rstrip("?") if request.query_string else base + request.path
        try:
            upstream = self._session().request(
                request.method, url, headers=headers, data=request.get_data(),
                timeout=(5, self.timeout_seconds), allow_redirects=False,
            )
        except requests.ReadTimeout:
            # What Hosting answers when the function takes longer than its 60 s; the
            # function itself goes on running, as it does behind Hosting.
            self._local.__dict__.pop("session", None)
            body = {"error": {"code": "deadline_exceeded", "message": f"{name} did not answer within {self.timeout_seconds:g}s", "details": []}}
            return Response(json.dumps(body), 504, mimetype="application/json")
        except requests.RequestException as exc:
            body = {"error": {"code": "unavailable", "message": f"{name} did not answer: {type(exc).__name__}", "details": []}}
            return Response(json.dumps(body), 503, mimetype="application/json", headers={"Retry-After": "2"})
        out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
        return Response(upstream.content, upstream.status_code, headers=out_headers)

    def _static_file(self, url_path: str) -> Path | None:
        public = self.config.public.resolve()
        relative = url_path.lstrip("/")
        if not relative or relative.endswith("/"):
            candidates = [relative + "index.html"]
        else:
            candidates = [relative, relative + "/index.html"] + ([relative + ".html"] if self.config.clean_urls else [])
        for candidate in candidates:
            path = (public / candidate).resolve()
            if path.is_relative_to(public) and path.is_file():
                return path
        return None

    def _not_found(self) -> Response:
        page = self.config.public / "404.html"
        return Response(page.read_bytes() if page.is_file() else b"Not Found", 404, mimetype="text/html")


class Sweeper:
    """What Cloud Scheduler does in production: POST {router}/api/jobs/sweep every interval.

    No body and no token (the sweeper function checks Scheduler's OIDC token only when
    deployed). Any answer, a 404 included (the endpoint not built yet) or a refused
    connection, is left for the next tick: the timer never stops on it.
    """

    def __init__(self, url: str, interval_seconds: float):
        self.url = url
        self.interval_seconds = interval_seconds
        self.answers: list[int | str] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> "Sweeper":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_seconds):
            try:
                status: int | str = requests.post(self.url, timeout=max(self.interval_seconds, 30)).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            self.answers = (self.answers + [status])[-100:]

    def stop(self) -> None:
        self._stopped.set()


def sweep_interval_seconds(env: dict[str, str] | None = None) -> float:
    """SWEEP_INTERVAL_SECONDS from the stack's env, else the process's; 60 as Scheduler runs it; 0 = off."""
    return float((env or {}).get("SWEEP_INTERVAL_SECONDS") or os.environ.get("SWEEP_INTERVAL_SECONDS") or 60)


@dataclass
class Stack:
    url: str
    emulator: Emulator
    functions: dict[str, Function]
    _server: object = None
    _thread: threading.Thread | None = None
    sweeper: Sweeper | None = None

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for function in self.functions.values():
            stop(function.process)


def function_env(emulator: Emulator, hosting_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "FIRESTORE_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": emulator.project,
        "AUTH_MODE": "off",
        "ALLOWED_ORIGINS": f"{hosting_url},{hosting_url.replace('127.0.0.1', 'localhost')}",
        # The developer's WORKER_URL wins (e.g. the worker's own port, as deployed).
        "WORKER_URL": os.environ.get("WORKER_URL") or hosting_url,
        "PUBLIC_BASE_URL": hosting_url,
    }
    env.update(extra or {})
    return env


def start_stack(
    emulator: Emulator,
    port: int,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    names: list[str] | None = None,
    sweep_interval: float | None = None,
) -> Stack:
    """Every function on a free port, and the router on `port`; returns once all answer.

    The router's port is taken first, so a busy port fails before anything starts; any
    failure stops every function started so far (the caller stops the emulator it started).
    """
    hosting_url = f"http://127.0.0.1:{port}"
    merged_env = function_env(emulator, hosting_url, env)
    router = Router(HostingConfig.load(), {}, init_json(merged_env), router_timeout_seconds(env))
    # Bound here, not by werkzeug, which answers a busy port with sys.exit.
    with socket.socket() as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
        except OSError as exc:
            raise StackError(f"the router cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        server = make_server("127.0.0.1", port, router, threaded=True, fd=sock.fileno())
    functions: dict[str, Function] = {}
    try:
        for name in names or function_names():
            functions[name] = start_function(name, free_port(), merged_env, log_dir)
        for function in functions.values():
            wait_for_http(function.url + "/", 60, function.process)
    except BaseException:
        server.server_close()
        for function in functions.values():
            stop(function.process)
        raise
    router.function_urls.update({n: f.url for n, f in functions.items()})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    interval = sweep_interval_seconds(env) if sweep_interval is None else sweep_interval
    sweeper = Sweeper(f"{hosting_url}/api/jobs/sweep", interval).start() if interval > 0 else None
    return Stack(hosting_url, emulator, functions, server, thread, sweeper)


@contextlib.contextmanager
def running_stack(**kwargs) -> Iterator[Stack]:
    stack = start_stack(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()
