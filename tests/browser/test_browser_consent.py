"""Review, Suppressions and schedule-from-lead in a real browser, on the real stack."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_browser_runs import make_template, start_via_api

pytestmark = pytest.mark.usefixtures("jobs_api")


def mails(db):
    return [s.to_dict() for s in db.collection("mail").stream()]


def test_review_edit_approve_discard_and_approve_many(open_page, stack, db, screenshot):
    template = make_template(stack, draft_first=True, name="Drafts")
    start_via_api(stack, "browser-review", template["id"], 4)
    page = open_page("/?run=browser-review#review")
    drafts = page.locator("#drafts article")
    expect(drafts).to_have_count(4)
    expect(page.locator("#review-counts")).to_contain_text("4 awaiting review")
    expect(page.locator("#review-run-counts")).to_have_text("drafted 4 · sent 0 · skipped 0 · failed 0")
    first = drafts.nth(0)
    expect(first.locator(".subject")).to_have_text("Hi Lead0")
    expect(first.frame_locator("iframe").locator("body")).to_contain_text("Hello Lead0 at Acme")

    first.get_by_role("button", name="Edit").click()
    first.get_by_label("Subject").fill("A better subject")
    first.get_by_label("Body").fill("Edited by the operator")
    first.get_by_role("button", name="Save draft").click()
    expect(first.locator(".subject")).to_have_text("A better subject")
    expect(first).to_have_attribute("data-version", "2")
    first.get_by_role("button", name="Approve and send").click()
    expect(drafts.nth(0)).to_have_attribute("data-status", "sent")
    (mail,) = mails(db)
    assert mail["message"]["subject"] == "A better subject" and mail["message"]["text"] == "Edited by the operator"

    drafts.nth(1).get_by_role("button", name="Discard").click()
    expect(drafts.nth(1)).to_have_attribute("data-status", "discarded")
    page.get_by_label("Select all awaiting review").check()
    page.get_by_role("button", name="Approve 2 selected").click()
    expect(page.locator("#review-status")).to_contain_text("Sent 2 of 2")
    expect(page.locator("#review-counts")).to_contain_text("0 awaiting review")
    expect(page.locator("#review-run-counts")).to_have_text("drafted 0 · sent 3 · skipped 1 · failed 0")
    screenshot(page, "review")
    assert sorted(m["to"] for m in mails(db)) == ["lead0@example.com", "lead2@example.com", "lead3@example.com"]
    assert not page.watch.console_errors, page.watch.console_errors


def test_review_shows_a_draft_in_flight_and_refuses_to_send_it_twice(open_page, stack, db):
    from shared import clock
    from shared.store import review as store

    template = make_template(stack, draft_first=True, name="In flight")
    start_via_api(stack, "browser-inflight", template["id"], 1)
    # A Gmail send's claim, seconds old (the stack's provider is the mail collection; the screen is the same).
    store.draft_ref(db, "browser-inflight", "lead-000000").update({"reviewStatus": "sending", "sendingAt": clock.now()})
    page = open_page("/?run=browser-inflight#review")
    card = page.locator("#drafts article")
    expect(card).to_have_attribute("data-status", "sending")
    expect(card.locator(".sending-at")).to_contain_text("in flight since")
    card.get_by_role("button", name="Finish sending").click()
    expect(card.get_by_role("alert")).to_contain_text("being sent right now")
    assert mails(db) == []


def test_suppressions_add_search_remove_and_import(page, stack, db, screenshot):
    page.get_by_role("tab", name="Suppressions").click()
    expect(page.locator("#suppress-empty")).to_be_visible()
    page.get_by_label("Email address or domain").fill("Ada@Example.com")
    page.get_by_label("Reason", exact=True).fill("asked on the phone")
    page.get_by_role("button", name="Suppress").click()
    rows = page.locator("#suppress-body tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ada@example.com")

    page.get_by_label("Or paste it").fill("email\ngrace@example.com\nnot valid\nspam.example\n")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#suppress-import-result")).to_contain_text("Added 2")
    expect(page.locator("#suppress-rejected")).to_contain_text("line 3: not valid")
    expect(rows).to_have_count(3)

    page.get_by_label("Search").fill("gr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("grace@example.com")
    page.get_by_role("button", name="Remove grace@example.com").click()
    expect(rows).to_have_count(0)
    page.get_by_label("Search").fill("")
    expect(rows).to_have_count(2)
    screenshot(page, "suppressions")
    values = sorted(s.get("value") for s in db.collection("suppressions").stream())
    assert values == ["ada@example.com", "spam.example"]
    assert requests.get(f"{stack.url}/api/suppressions", timeout=10).json()["suppressions"][0]["value"] in values


def test_schedule_a_meeting_and_retry_from_a_lead_row(open_page, stack, db):
    template = make_template(stack)
    body = {"action": "start", "mode": "foreground", "config": {"templateId": template["id"]}, "leads": [
        {"email": "ada@example.com", "firstName": "Ada", "timeZone": "Europe/London"},
        {"email": "broken", "firstName": "Bad"},
    ]}
    assert requests.post(f"{stack.url}/api/lead-runs/browser-lead/jobs", json=body, timeout=60).status_code == 200
    page = open_page("/?run=browser-lead")
    rows = page.locator("#receipts-body tr")
    expect(rows).to_have_count(2)

    failed_at = page.locator("#receipts-body tr").nth(1).locator("[data-type='email.send'] time")
    first_try = failed_at.get_attribute("datetime")
    rows.nth(1).get_by_role("button", name="Retry lead 2").click()
    # Tried again by the restarted job (and failed again: the address is invalid).
    expect(failed_at).not_to_have_attribute("datetime", first_try, timeout=30_000)
    expect(page.locator("#run-status")).to_have_text("completed with errors", timeout=30_000)
    lead = db.document("lead_runs/browser-lead/leads/lead-000001").get().to_dict()
    assert lead["status"] == "failed" and lead["attempts"] == 1

    rows.nth(0).get_by_role("button", name="Schedule a meeting with ada@example.com").click()
    expect(page.locator("#panel-schedule")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/London")
    expect(page.get_by_label("Attendee email")).to_have_value("ada@example.com")
    page.get_by_label("From date").fill("2030-06-03")
    page.get_by_label("Days").fill("1")
    page.get_by_role("button", name="Find slots").click()
    page.locator("#slots li").first.get_by_role("button").click()
    expect(page.locator("#booking")).to_contain_text("Booked")
    receipts = requests.get(f"{stack.url}/api/lead-runs/browser-lead/receipts", timeout=10).json()
    ada = next(lead for lead in receipts["leads"] if lead["email"] == "ada@example.com")
    assert "calendar.book" in [a["type"] for a in ada["actions"]]


def test_schedule_defaults_to_the_operators_zone(browser, stack):
    context = browser.new_context(timezone_id="Asia/Tokyo", base_url=stack.url)
    try:
        page = context.new_page()
        page.goto("/#schedule")
        page.wait_for_selector("body[data-ready='true']", state="attached")
        expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
    finally:
        context.close()


def test_starting_a_foreground_run_logs_no_failed_request(page, stack):
    template = make_template(stack, name="Quiet")
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    failed = []
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}") if response.status >= 400 else None)
    page.locator("#start-template").select_option(template["id"])
    page.get_by_label("Leads (CSV with a header row, or JSON)").fill("email,firstName\nada@example.com,Ada\ngrace@example.com,Grace\n")
    page.get_by_label("Foreground").check()
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#start-status")).to_contain_text("finished")
    expect(page.locator("#receipts-body tr")).to_have_count(2)
    assert failed == [] and not page.watch.console_errors, (failed, page.watch.console_errors)
