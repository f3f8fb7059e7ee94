"""Senders screen and the waiting state in a real browser: the 24 h use against the
cap, a pause, saving a sender, and a background run started with a sender and a closed
window that shows `waiting`, its reason and its next send."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from playwright.sync_api import expect

from shared.store import senders as senders_repo

pytestmark = pytest.mark.usefixtures("jobs_api")


def test_senders_panel_and_a_waiting_run(page, stack, db, screenshot):
    assert requests.put(f"{stack.url}/api/senders/box-1", json={
        "email": "ops@example.com", "maxPerDay": 6, "minGapSeconds": 60}, timeout=10).status_code == 200
    now = dt.datetime.now(dt.timezone.utc)
    assert senders_repo.reserve(db, "box-1", "run-x/lead-1", now).granted
    senders_repo.pause(db, "box-1", now + dt.timedelta(hours=2), "provider rate limit (429)", now)
    template = requests.post(f"{stack.url}/api/templates", timeout=10, json={
        "name": "Intro", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}}"}).json()

    page.reload()
    page.get_by_role("tab", name="Senders").click()
    row = page.locator('#senders-body tr[data-sender="box-1"]')
    expect(row).to_contain_text("1 / 6")
    expect(row.locator(".sender-pause")).to_contain_text("provider rate limit (429)")

    page.get_by_label("Sender ID").fill("box-2")
    page.get_by_label("Mailbox").fill("sales@example.com")
    page.get_by_label("Per day").fill("500")
    page.get_by_role("button", name="Save sender").click()
    expect(page.locator("#sender-status")).to_contain_text("Saved sender box-2")
    expect(page.locator('#senders-body tr[data-sender="box-2"]')).to_contain_text("0 / 500")
    assert senders_repo.get(db, "box-2")["maxPerDay"] == 500
    screenshot(page, "senders")

    # A background run whose window (UTC, for leads without a zone) opens in two hours.
    opens = now + dt.timedelta(hours=2)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#start-template").select_option(template["id"])
    page.locator("#start-leads").fill("email,firstName\nada@example.com,Ada\n")
    page.get_by_label("Background").check()
    page.locator("#start-form details summary").click()
    page.locator("#start-sender").select_option("box-2")
    page.locator("#start-window-start").fill(f"{opens:%H}:00")
    page.locator("#start-window-end").fill(f"{(opens + dt.timedelta(hours=1)):%H}:00")
    page.locator("#start-window-zone").fill("UTC")
    for box in page.locator('#start-window-days input[type="checkbox"]').all():
        box.check()
    page.get_by_role("button", name="Start run").click()

    expect(page.locator("#run-status")).to_contain_text("waiting", timeout=60000)  # a real worker on a busy machine
    waiting = page.locator("#run-waiting")
    expect(waiting).to_contain_text("outside its sending window")
    expect(waiting).to_contain_text("next send")
    expect(page.locator("#job-pause")).to_be_enabled()
    expect(page.locator("#job-cancel")).to_be_enabled()
    screenshot(page, "runs-waiting")
    assert db.collection("mail").get() == []
