"""The local stack over real HTTP: router → functions-framework servers → emulator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from tools import localstack

pytestmark = pytest.mark.e2e


def test_templates_round_trip_through_the_router(stack):
    created = requests.post(
        f"{stack.url}/api/templates",
        json={"name": "E2E", "subject": "Hi {{firstName}}", "body": "Body", "draftFirst": True},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    template = created.json()
    fetched = requests.get(f"{stack.url}/api/templates/{template['id']}", timeout=10)
    assert fetched.status_code == 200 and fetched.json() == template
    assert fetched.headers["Cache-Control"] == "no-store"
    patched = requests.patch(
        f"{stack.url}/api/templates/{template['id']}", json={"draftFirst": False}, headers={"If-Match": '"1"'}, timeout=10
    )
    assert patched.json()["draftFirst"] is False and patched.json()["version"] == 2


def test_bad_input_over_http_is_a_4xx_envelope(stack):
    response = requests.post(f"{stack.url}/api/templates", data="{nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"


def test_the_page_is_served_at_root(stack):
    response = requests.get(f"{stack.url}/", timeout=10)
    assert response.status_code == 200 and "text/html" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_api_path_is_404_from_hosting(stack):
    assert requests.get(f"{stack.url}/api/unknown", timeout=10).status_code == 404


def test_path_reaches_the_function_unchanged(stack):
    response = requests.get(f"{stack.url}/api/templates/does-not-exist?x=1", timeout=10)
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["error"]["message"]


# --- Hosting's limits and reserved URLs, the sweep timer, and `make dev` itself ----------


class RecordingServer:
    """Answers every request with `status` after `delay` seconds, and records what it got."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({
                    "method": self.command, "path": self.path, "body": self.rfile.read(length),
                    "authorization": self.headers.get("Authorization"),
                })
                time.sleep(delay)
                body = json.dumps({"ok": True}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def serve(router) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, router, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def test_the_router_cuts_a_slow_function_with_a_504_as_hosting_does():
    slow = RecordingServer(delay=3)
    router = localstack.Router(localstack.HostingConfig.load(), {"templates": slow.url}, timeout_seconds=1)
    url, server = serve(router)
    try:
        started = time.monotonic()
        response = requests.get(f"{url}/api/templates", timeout=10)
        elapsed = time.monotonic() - started
        fast = requests.get(f"{url}/index.html", timeout=10)
    finally:
        server.shutdown()
        slow.close()
    assert response.status_code == 504 and elapsed < 2.5
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert fast.status_code == 200


def test_the_router_limit_is_hostings_60_s_unless_the_local_stack_lowers_it(monkeypatch):
    monkeypatch.delenv("ROUTER_TIMEOUT_SECONDS", raising=False)
    assert localstack.Router(localstack.HostingConfig.load(), {}).timeout_seconds == 60
    monkeypatch.setenv("ROUTER_TIMEOUT_SECONDS", "0.5")
    assert localstack.Router(localstack.HostingConfig.load(), {}).timeout_seconds == 0.5


def test_init_json_says_auth_is_off_only_for_an_auth_off_stack(stack):
    response = requests.get(f"{stack.url}/__/firebase/init.json", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["projectId"] == stack.emulator.project and body["apiKey"] and body["authMode"] == "off"
    secured = localstack.init_json({"GOOGLE_CLOUD_PROJECT": "demo-x", "AUTH_MODE": "firebase"})
    assert "authMode" not in secured and "authEmulatorHost" not in secured
    emulated = localstack.init_json({"AUTH_MODE": "firebase", "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"})
    assert emulated["authEmulatorHost"] == "127.0.0.1:9099" and "authMode" not in emulated


def test_the_sweep_timer_posts_without_body_or_token_and_survives_a_404():
    target = RecordingServer(status=404)
    sweeper = localstack.Sweeper(f"{target.url}/api/jobs/sweep", 0.1).start()
    try:
        deadline = time.monotonic() + 10
        while len(target.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
        target.close()
    assert len(target.requests) >= 3
    assert all(r["method"] == "POST" and r["path"] == "/api/jobs/sweep" for r in target.requests)
    assert all(r["body"] == b"" and r["authorization"] is None for r in target.requests)
    assert set(sweeper.answers) == {404}


def test_the_sweep_timer_survives_nothing_listening():
    sweeper = localstack.Sweeper(f"http://127.0.0.1:{localstack.free_port()}/api/jobs/sweep", 0.05).start()
    time.sleep(0.5)
    sweeper.stop()
    assert len(sweeper.answers) >= 2 and all(isinstance(a, str) for a in sweeper.answers)


def test_the_local_stack_honours_worker_url_from_the_environment(monkeypatch, emulator):
    monkeypatch.setenv("WORKER_URL", "http://127.0.0.1:5999")
    assert localstack.function_env(emulator, "http://127.0.0.1:5000")["WORKER_URL"] == "http://127.0.0.1:5999"
    monkeypatch.delenv("WORKER_URL")
    assert localstack.function_env(emulator, "http://127.0.0.1:5000")["WORKER_URL"] == "http://127.0.0.1:5000"


def _processes_marked(marker: str) -> list[int]:
    """Processes whose environment carries `marker`: everything `make dev` started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _dev_env(marker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FIRESTORE_EMULATOR_HOST", "AUTH_MODE", "LOG_FORMAT")}
    env.update({"MC_DEV_MARKER": marker, "PYTHONUNBUFFERED": "1", **extra})
    return env


def _wait_gone(marker: str, seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _processes_marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_make_dev_that_cannot_take_its_port_stops_what_it_started(tmp_path):
    marker = f"dev-{uuid.uuid4().hex}"
    with socket_taken() as port:
        result = subprocess.run(
            [sys.executable, str(localstack.ROOT / "tools" / "dev.py"), "--port", str(port),
             "--firestore-port", str(localstack.free_port()), "--project", "demo-dev-port-taken"],
            env=_dev_env(marker), capture_output=True, text=True, timeout=180,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot listen" in result.stderr and "Firestore emulator on" in result.stdout
    assert _wait_gone(marker) == []


def test_make_dev_uses_a_running_emulator_logs_one_line_per_request_and_stops_cleanly(emulator):
    marker = f"dev-{uuid.uuid4().hex}"
    port = localstack.free_port()
    process = subprocess.Popen(
        [sys.executable, str(localstack.ROOT / "tools" / "dev.py"), "--port", str(port)],
        env=_dev_env(marker, FIRESTORE_EMULATOR_HOST=emulator.host, GOOGLE_CLOUD_PROJECT=emulator.project,
                     SWEEP_INTERVAL_SECONDS="0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("Operations page and API" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert any(f"using the running one at {emulator.host}" in line for line in lines), "".join(lines)
        # Every process make dev started is a function: none is a second emulator.
        marked = _processes_marked(marker)
        assert not any(b"java" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in marked if Path(f"/proc/{pid}").exists())
        response = requests.get(f"http://127.0.0.1:{port}/api/lead-runs/run-xyz/jobs", timeout=10)
        assert response.status_code in (200, 404)
        deadline = time.monotonic() + 15
        wanted = f"GET /api/lead-runs/run-xyz/jobs {response.status_code} "
        while not any(wanted in line and "run=run-xyz" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(wanted in line and "ms run=run-xyz" in line for line in lines), "".join(lines[-30:])
        assert not any(line.lstrip().startswith("jobs") and '{"' in line for line in lines), "JSON logs in make dev"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert _wait_gone(marker) == []
    assert requests.get(f"http://{emulator.host}/", timeout=5).ok  # the running emulator is left running


@contextlib.contextmanager
def socket_taken():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_sweep_interval_comes_from_the_stack_env_then_the_process(monkeypatch):
    monkeypatch.delenv("SWEEP_INTERVAL_SECONDS", raising=False)
    assert localstack.sweep_interval_seconds() == 60
    monkeypatch.setenv("SWEEP_INTERVAL_SECONDS", "0")
    assert localstack.sweep_interval_seconds() == 0
    assert localstack.sweep_interval_seconds({"SWEEP_INTERVAL_SECONDS": "0.5"}) == 0.5


def test_a_stack_started_with_a_lower_router_limit_cuts_at_it(emulator):
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), env={"ROUTER_TIMEOUT_SECONDS": "0.001"},
        names=["templates"], sweep_interval=0,
    ) as short:
        response = requests.get(f"{short.url}/api/templates", timeout=10)
    assert response.status_code == 504 and response.json()["error"]["code"] == "deadline_exceeded"


def test_a_function_that_fails_to_start_stops_the_ones_already_started(emulator):
    marker = f"stack-{uuid.uuid4().hex}"
    port = localstack.free_port()
    with pytest.raises(localstack.StackError):
        localstack.start_stack(
            emulator=emulator, port=port, env={"MC_DEV_MARKER": marker}, names=["templates", "no-such-function"],
            sweep_interval=0,
        )
    assert _wait_gone(marker) == []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the router's port was released too
