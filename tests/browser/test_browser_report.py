"""Error reporting from the page: the manual form, and automatic reports of uncaught
errors (de-duplicated and capped), found afterwards in Firestore."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tools import localstack


def stored_events(db) -> list[dict]:
    events = []
    for group in db.collection("telemetry_errors").stream():
        for event in group.reference.collection("events").stream():
            events.append({"fingerprint": group.id, "reportId": event.id, **event.to_dict()})
    return events


def wait_for_events(db, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = stored_events(db)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_file_a_report_and_find_it_in_firestore(page, db, telemetry_api, screenshot):
    # An API failure first: the report carries it without the operator copying anything.
    page.get_by_label("Run ID", exact=True).fill("no-such-run")
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#run-error, #load-error, #receipts-error").filter(has_text="no-such-run").first).to_be_visible()

    page.get_by_role("tab", name="Report an issue").click()
    expect(page.locator("#report-attached-run")).to_have_text("no-such-run")
    expect(page.locator("#report-attached-error")).to_contain_text("/api/lead-runs/no-such-run")
    page.get_by_label("What happened?").fill("The run I started this morning is missing.\nIt had 40 leads.")
    page.get_by_label("Severity").select_option("warning")
    page.get_by_role("button", name="Send report").click()

    result = page.locator("#report-result")
    expect(result).to_contain_text("Report ID")
    report_id = page.locator("#report-id").inner_text()
    fingerprint = page.locator("#report-fingerprint").inner_text()
    assert report_id and fingerprint
    screenshot(page, "report")

    event = db.collection("telemetry_errors").document(fingerprint).collection("events").document(report_id).get()
    assert event.exists, f"telemetry_errors/{fingerprint}/events/{report_id} is not in Firestore"
    stored = event.to_dict()
    flat = repr(stored)
    assert "The run I started this morning is missing." in flat
    assert "no-such-run" in flat  # the run and the last API error went along
    assert "manual" in flat and "warning" in flat


def test_uncaught_errors_are_reported_once_each_and_capped(open_page, db, telemetry_api):
    page = open_page(allow_page_errors=True)
    # The same error three times (timers, so they are uncaught) and one rejection.
    page.evaluate(
        """() => {
            for (let i = 0; i < 3; i++) setTimeout(() => { throw new Error("gauge overflow in test"); }, 0);
            setTimeout(() => Promise.reject(new Error("lost promise in test")), 0);
        }"""
    )
    expect(page.locator("#page-error")).to_contain_text("reported automatically")
    events = wait_for_events(db, 2)
    time.sleep(0.5)
    events = stored_events(db)
    messages = sorted(repr(e) for e in events)
    assert sum("gauge overflow in test" in m for m in messages) == 1, messages
    assert sum("lost promise in test" in m for m in messages) == 1, messages
    assert all("auto" in m for m in messages)

    # Ten more distinct errors: only the per-page cap (5 in all) is sent.
    page.evaluate(
        """() => { for (let i = 0; i < 10; i++) setTimeout(() => { throw new Error("distinct error " + i); }, 0); }"""
    )
    time.sleep(1.5)
    assert len(stored_events(db)) == 5


@pytest.fixture(scope="module")
def strict_stack(emulator):
    """A stack whose telemetry takes one report per client per window: the next ones are 429s
    (senders too: the start form lists them when the page loads)."""
    env = {"TELEMETRY_RATE_LIMIT": "1", "TELEMETRY_RATE_WINDOW_SECONDS": "600"}
    with localstack.running_stack(
        emulator=emulator, port=localstack.free_port(), env=env, names=["receipts", "templates", "telemetry", "senders"]
    ) as running:
        yield running


def test_a_refused_report_is_not_reported_again(open_page, strict_stack, db, telemetry_api):
    page = open_page(base_url=strict_stack.url, allow_page_errors=True)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.url.endswith("/api/telemetry/error") else None)
    page.evaluate(
        """() => { for (let i = 0; i < 3; i++) setTimeout(() => { throw new Error("refused report " + i); }, 0); }"""
    )
    expect(page.locator("#page-error")).to_contain_text("refused report 0")
    deadline = time.monotonic() + 15
    while len(posts) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.wait_for_timeout(1500)  # time for a (wrong) report about the refusals to go out
    # One stored, two refused with 429, and no report about the refusals.
    assert len(posts) == 3, posts
    events = stored_events(db)
    assert len(events) == 1 and "refused report 0" in events[0]["message"]
    # The refusals do not become "the last API error" a manual report would carry.
    page.get_by_role("tab", name="Report an issue").click()
    expect(page.locator("#report-attached-error")).to_have_text("none")
