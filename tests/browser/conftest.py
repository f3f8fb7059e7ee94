"""Browser fixtures: Debian's Chromium driven by Playwright against the session's stack.

The page talks to the real functions behind the firebase.json router, on the real
Firestore emulator (the `stack` fixture). Nothing is mocked: sign-in tests run their
own stack with the real Firebase Auth emulator (test_browser_auth.py).

`make browser-deps` installs /usr/bin/chromium from Debian when it is missing
(Playwright's own browser download needs internet access this project does not assume).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import pytest

from tools.localstack import ROOT

CHROMIUM = os.environ.get("MC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test in this folder drives a browser: mark it so `-m "not browser"` skips it.
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (a chromium is on PATH at {found}; set MC_CHROMIUM={found})" if found else ""
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}{hint}. The browser tests need Debian's chromium "
            "package: run `make browser-deps` as root (it runs `apt-get install -y chromium`), "
            "or skip these tests with `make test-fast` / `pytest -m 'not browser'`.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:
        playwright.stop()
        pytest.fail(f"Chromium at {chromium_path} did not start under Playwright: {exc}", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()


class PageWatch:
    """What a page did that a test should know about: requests off the stack, page errors."""

    def __init__(self, origin: str, also_allowed: tuple[str, ...] = ()):
        self.origins = {origin, *also_allowed}
        self.allow_page_errors = False
        self.external: list[str] = []
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []

    def on_request(self, request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob", "about"):
            return
        if f"{parsed.scheme}://{parsed.netloc}" not in self.origins:
            self.external.append(request.url)


@pytest.fixture
def open_page(browser, stack) -> Iterator[Callable[..., object]]:
    """open_page(path="/", viewport=DESKTOP) → a Playwright page on the stack, ready.

    After the test: no request left the stack's origin (the page must work offline),
    apart from `also_allowed` origins (the sign-in service in the auth test), and no
    uncaught error happened in the page unless the test throws some on purpose.
    """
    contexts = []
    watches: list[PageWatch] = []

    def make(
        path: str = "/",
        viewport: dict | None = None,
        wait_ready: bool = True,
        base_url: str | None = None,
        also_allowed: tuple[str, ...] = (),
        allow_page_errors: bool = False,
    ):
        origin = base_url or stack.url
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=origin)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watch = PageWatch(origin, also_allowed)
        watch.allow_page_errors = allow_page_errors
        watches.append(watch)
        page.on("request", watch.on_request)
        page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
        page.on("console", lambda msg: watch.console_errors.append(msg.text) if msg.type == "error" else None)
        page.watch = watch  # type: ignore[attr-defined]
        page.goto(path)
        if wait_ready:
            page.wait_for_selector("body[data-ready='true']", state="attached")
        return page

    yield make
    for context in contexts:
        context.close()
    for watch in watches:
        assert not watch.external, f"the page made requests off the local stack: {watch.external}"
        if not watch.allow_page_errors:
            assert not watch.page_errors, f"uncaught errors in the page: {watch.page_errors}"


@pytest.fixture
def page(open_page):
    return open_page()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """screenshot(page, "runs-background") saves artifacts/screenshots/runs-background.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def require_api(stack, method: str, path: str, issue: str, **kwargs) -> None:
    """Fails fast, with a clear reason, when an endpoint the page needs answers 501."""
    import requests

    response = requests.request(method, f"{stack.url}{path}", timeout=10, **kwargs)
    if response.status_code == 501:
        pytest.fail(f"{method} {path} answers 501: {issue} is not deployed in this stack")


@pytest.fixture
def telemetry_api(stack) -> None:
    require_api(stack, "POST", "/api/telemetry/error", "the telemetry API (issue 6)", json={})


@pytest.fixture
def receipts_api(stack) -> None:
    require_api(stack, "GET", "/api/lead-runs", "the receipts API (issue 4)")
    require_api(stack, "GET", "/api/lead-runs/probe-run/receipts", "the receipts API (issue 4)")


@pytest.fixture
def jobs_api(stack, receipts_api) -> None:
    require_api(stack, "GET", "/api/lead-runs/probe-run/jobs", "the jobs API (issue 3)")
    require_api(stack, "POST", "/api/lead-runs/probe-run/jobs/worker", "the jobs worker (issue 3)", json={})
