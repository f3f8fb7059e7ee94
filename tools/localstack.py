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


def _spawn(args: list[str], env: dict[str, str], log_path: Path | None) -> subprocess.Popen:
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    # A session of its own, so stopping it takes its children (java, gunicorn workers) too.
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


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


class Router:
    """A WSGI app that does what Firebase Hosting does for this project."""

    def __init__(self, config: HostingConfig, function_urls: dict[str, str]):
        self.config = config
        self.function_urls = function_urls
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(self, environ, start_response):
        request = Request(environ)
        # Hosting's order: an existing static file wins, then the first matching rewrite.
        static = self._static_file(request.path)
        name = None if static else self.config.function_for(request.path)
        if static:
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
                request.method, url, headers=headers, data=request.get_data(), timeout=(5, 600), allow_redirects=False
            )
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


@dataclass
class Stack:
    url: str
    emulator: Emulator
    functions: dict[str, Function]
    _server: object = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        for function in self.functions.values():
            stop(function.process)


def function_env(emulator: Emulator, hosting_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "FIRESTORE_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": emulator.project,
        "AUTH_MODE": "off",
        "ALLOWED_ORIGINS": f"{hosting_url},{hosting_url.replace('127.0.0.1', 'localhost')}",
        "WORKER_URL": hosting_url,
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
) -> Stack:
    """Every function on a free port, and the router on `port`; returns once all answer."""
    hosting_url = f"http://127.0.0.1:{port}"
    merged_env = function_env(emulator, hosting_url, env)
    functions = {}
    try:
        for name in names or function_names():
            functions[name] = start_function(name, free_port(), merged_env, log_dir)
        for function in functions.values():
            wait_for_http(function.url + "/", 60, function.process)
    except StackError:
        for function in functions.values():
            stop(function.process)
        raise
    router = Router(HostingConfig.load(), {n: f.url for n, f in functions.items()})
    server = make_server("127.0.0.1", port, router, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Stack(hosting_url, emulator, functions, server, thread)


@contextlib.contextmanager
def running_stack(**kwargs) -> Iterator[Stack]:
    stack = start_stack(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()
