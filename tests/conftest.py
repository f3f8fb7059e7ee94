"""Test harness: one real Firestore emulator per session, emptied before every test.

Nothing here fakes Firestore. The emulator starts on a free port (or the one
named by MC_TEST_FIRESTORE_HOST, to reuse a running emulator), its address goes
into FIRESTORE_EMULATOR_HOST before any client exists, and its REST reset
endpoint clears the data between tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from tools import localstack

if TYPE_CHECKING:
    from tools.gmail_server import GmailServer

TEST_PROJECT = "demo-mission-control-test"
ROOT = localstack.ROOT
LOG_DIR = ROOT / "build" / "test-logs"

_emulator: localstack.Emulator | None = None

# Settings every in-process test starts from; a test that needs others uses `configure`.
BASE_ENV = {
    "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
    "AUTH_MODE": "off",
    "ALLOWED_ORIGINS": "http://127.0.0.1:5000",
}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _emulator
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    existing = os.environ.get("MC_TEST_FIRESTORE_HOST")
    if existing:
        _emulator = localstack.Emulator(host=existing, project=TEST_PROJECT)
    else:
        try:
            _emulator = localstack.start_emulator(localstack.free_port(), TEST_PROJECT, LOG_DIR / "firestore.log")
        except localstack.StackError as exc:
            pytest.exit(f"cannot run the tests: {exc}", returncode=3)
    os.environ["FIRESTORE_EMULATOR_HOST"] = _emulator.host
    os.environ.update(BASE_ENV)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _emulator is not None:
        _emulator.stop()


def _clear_caches() -> None:
    from shared.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(scope="session")
def emulator() -> localstack.Emulator:
    assert _emulator is not None
    return _emulator


@pytest.fixture(autouse=True)
def clean_firestore(emulator: localstack.Emulator) -> Iterator[None]:
    emulator.reset()
    yield


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """configure(AUTH_MODE="firebase", ...) sets environment settings for this test only."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _clear_caches()

    yield apply
    _clear_caches()


@pytest.fixture
def db():
    from shared.store.client import get_db

    return get_db()


@pytest.fixture
def function_client() -> Callable[[str], object]:
    """function_client("templates") is a Flask test client of that function's real app."""
    import functions_framework

    def make(name: str):
        source = ROOT / "functions" / name / "main.py"
        return functions_framework.create_app(target=name, source=str(source)).test_client()

    return make


@pytest.fixture(scope="session")
def stack(emulator: localstack.Emulator) -> Iterator[localstack.Stack]:
    """Every function as a real HTTP server behind the firebase.json router."""
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), log_dir=LOG_DIR, env=_stack_env()
    ) as running:
        yield running


def _stack_env() -> dict[str, str]:
    # Short worker budgets make the self-invocation chain take many hops in a test-sized run.
    # One lead at a time, so the pause tests can hold the worker to "within one lead"; the
    # crash and self-healing stacks run with the default concurrency.
    return {"WORKER_TIME_BUDGET_SECONDS": "2", "WORKER_LEASE_SECONDS": "15", "WORKER_LEAD_CONCURRENCY": "1"}


def read_logs(name: str) -> str:
    path = LOG_DIR / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)


@pytest.fixture(scope="session")
def gmail_running() -> Iterator["GmailServer"]:
    """One local Gmail-shaped server (tools/gmail_server.py) for the session."""
    from tools.gmail_server import GmailServer

    with GmailServer() as server:
        yield server


@pytest.fixture
def gmail_server(gmail_running: "GmailServer") -> "GmailServer":
    """The Gmail server, emptied and without faults."""
    gmail_running.reset()
    return gmail_running
