"""Runs screen in a real browser: foreground and background runs, pause/resume,
reload by URL, the recent list, and draft-first receipts. Real worker, real emulator."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import requests
from playwright.sync_api import expect

pytestmark = pytest.mark.usefixtures("jobs_api")

LEADS_CSV = """email,First Name,last_name,company,timeZone,Job Title
ada@example.com,Ada,Lovelace,Analytical Engines,Europe/London,CTO
grace@example.com,Grace,Hopper,Navy,America/New_York,Rear Admiral
not-an-email,Bad,Row,Nowhere,UTC,None
alan@example.com,Alan,Turing,Bletchley,Europe/London,Cryptanalyst
"""


def make_template(stack, draft_first: bool = False, name: str = "Intro") -> dict:
    body = {"name": name, "subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}", "draftFirst": draft_first}
    response = requests.post(f"{stack.url}/api/templates", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def start_via_api(stack, run_id: str, template_id: str, count: int, name: str | None = None) -> dict:
    leads = [{"email": f"lead{i}@example.com", "firstName": f"Lead{i}", "company": "Acme"} for i in range(count)]
    body = {"action": "start", "mode": "foreground", "config": {"templateId": template_id}, "leads": leads}
    if name:
        body["name"] = name
    response = requests.post(f"{stack.url}/api/lead-runs/{run_id}/jobs", json=body, timeout=60)
    assert response.status_code in (200, 201), response.text
    return response.json()


def start_background_via_api(stack, run_id: str, template_id: str, count: int, letter: str, batch_size: int = 1) -> None:
    """A background run, by default one lead per worker invocation: slow enough that it is
    still going when the page acts on it, on any machine (batches of 5 ran ~40% of a run
    before the page's first poll; batches of 1, ~10%)."""
    leads = [{"email": f"{letter}{i}@example.com", "firstName": f"{letter.upper()}{i}", "company": "Acme"}
             for i in range(count)]
    body = {"action": "start", "mode": "background", "config": {"templateId": template_id, "batchSize": batch_size}, "leads": leads}
    response = requests.post(f"{stack.url}/api/lead-runs/{run_id}/jobs", json=body, timeout=30)
    assert response.status_code in (200, 201, 202), response.text


def processed_count(page) -> int:
    match = re.match(r"(\d+) / (\d+)", page.locator("#run-progress-label").inner_text())
    assert match, page.locator("#run-progress-label").inner_text()
    return int(match.group(1))


def run_id_in_url(page) -> str:
    match = re.search(r"[?&]run=([^&#]+)", page.url)
    assert match, page.url
    return match.group(1)


def test_foreground_run_shows_its_receipts_and_comes_back_after_a_reload(page, stack, db, screenshot):
    template = make_template(stack, name="Webinar")
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    page.locator("#start-template").select_option(template["id"])
    expect(page.locator("#start-template-info")).to_contain_text("sends")
    page.get_by_label("Run name").fill("Webinar follow-up")
    page.get_by_label("Leads (CSV with a header row, or JSON)").fill(LEADS_CSV)
    expect(page.locator("#start-leads-count")).to_have_text("4 leads")
    page.get_by_label("Foreground").check()
    page.get_by_role("button", name="Start run").click()

    expect(page.locator("#start-status")).to_contain_text("finished")
    run_id = run_id_in_url(page)
    expect(page.locator("#run-id")).to_have_text(run_id)
    expect(page.locator("#run-status")).to_have_text("completed with errors")
    expect(page.locator("#run-progress-label")).to_have_text("4 / 4 processed")
    expect(page.locator("#count-sent")).to_have_text("3")
    expect(page.locator("#count-failed")).to_have_text("1")
    rows = page.locator("#receipts-body tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("ada@example.com")
    expect(rows.nth(0).locator("[data-type='email.send'][data-status='sent']")).to_have_count(1)
    expect(rows.nth(2)).to_have_attribute("data-status", "failed")
    expect(page.get_by_role("button", name="Retry failed", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
    expect(page.locator("#recent-runs")).to_contain_text("Webinar follow-up")
    page.locator("#run-diagnostics-box summary").click()
    expect(page.locator("#run-diagnostics")).to_contain_text("lead 3")
    expect(page.locator("#run-diagnostics")).to_contain_text("not-an-email")
    screenshot(page, "runs-foreground")

    # The CSV's extra column reached the lead as a field with an API-safe name.
    lead = db.collection("lead_runs").document(run_id).collection("leads").document("lead-000000").get().to_dict()
    assert lead["firstName"] == "Ada" and lead["lastName"] == "Lovelace" and lead["fields"] == {"Job_Title": "CTO"}
    assert len(list(db.collection("mail").stream())) == 3

    page.get_by_label("Only failed leads").check()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("not-an-email")

    # A reload brings the same run back from ?run=ID.
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    expect(page.locator("#run-id")).to_have_text(run_id)
    expect(page.locator("#run-name")).to_have_text("Webinar follow-up")
    expect(page.locator("#receipts-body tr")).to_have_count(4)
    screenshot(page, "runs-reloaded")

    # Retry failed re-queues the bad lead; it is tried again and fails again (a permanent error).
    failed_at = page.locator("#receipts-body tr[data-status='failed'] time")
    first_try = failed_at.get_attribute("datetime")
    page.get_by_role("button", name="Retry failed", exact=True).click()
    expect(failed_at).not_to_have_attribute("datetime", first_try, timeout=30_000)
    expect(page.locator("#run-status")).to_have_text("completed with errors")
    expect(page.locator("#count-failed")).to_have_text("1")

    # The same run at phone width: one column, nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.locator("#run-view").scroll_into_view_if_needed()
    screenshot(page, "phone-run", full_page=False)


def test_background_run_pauses_stops_counting_resumes_and_completes(page, stack, db, screenshot):
    template = make_template(stack, name="Big run")
    leads = "\n".join(["email,firstName,company"] + [f"bulk{i}@example.com,Bulk{i},Acme" for i in range(120)])
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    page.locator("#start-template").select_option(template["id"])
    page.locator("#start-file").set_input_files(files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": leads.encode()}])
    expect(page.locator("#start-leads-count")).to_have_text("120 leads")
    page.get_by_label("Background").check()
    page.locator("summary", has_text="Options").click()
    page.get_by_label("Batch size").fill("1")  # slow enough to pause part-way (start_background_via_api)
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#start-status")).to_contain_text("started")
    run_id = run_id_in_url(page)

    # Pause once the worker has made some progress.
    expect(page.locator("#run-progress-label")).not_to_have_text(re.compile(r"^0 / "), timeout=30_000)
    screenshot(page, "runs-background", full_page=False)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("paused", timeout=20_000)
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
    time.sleep(1.5)  # the lead in flight may still land
    page.get_by_role("button", name="Refresh run").click()
    expect(page.get_by_role("button", name="Refresh run")).to_be_enabled()
    paused_at = processed_count(page)
    assert paused_at < 120, "the run finished before it could be paused"
    time.sleep(2.5)
    page.get_by_role("button", name="Refresh run").click()
    expect(page.locator("#run-progress-label")).to_have_text(f"{paused_at} / 120 processed")
    job = db.collection("lead_runs").document(run_id).collection("jobs").document("default").get().to_dict()
    assert job["status"] == "paused"
    screenshot(page, "runs-paused", full_page=False)

    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("completed", timeout=90_000)
    expect(page.locator("#run-progress-label")).to_have_text("120 / 120 processed")
    expect(page.locator("#count-sent")).to_have_text("120")
    assert len(list(db.collection("mail").stream())) == 120

    # Receipts come 50 leads a page.
    expect(page.locator("#receipts-body tr")).to_have_count(50)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#receipts-page")).to_have_text("Page 2 · leads 51–100")
    expect(page.locator("#receipts-body tr").first).to_contain_text("bulk50@example.com")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#receipts-body tr")).to_have_count(20)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#receipts-page")).to_have_text("Page 2 · leads 51–100")


def test_cancel_ends_a_paused_background_run(open_page, stack, db):
    template = make_template(stack)
    start_background_via_api(stack, "to-cancel", template["id"], 150, "c")
    page = open_page("/?run=to-cancel")
    expect(page.locator("#run-id")).to_have_text("to-cancel")
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("paused", timeout=20_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("cancelled")
    for name in ("Pause", "Resume", "Retry failed", "Cancel"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_disabled()
    job = db.collection("lead_runs").document("to-cancel").collection("jobs").document("default").get().to_dict()
    assert job["status"] == "cancelled"


def test_prior_runs_load_from_the_recent_list_and_the_run_id_box(page, stack):
    template = make_template(stack)
    start_via_api(stack, "older-run", template["id"], 2, name="Older run")
    start_via_api(stack, "newer-run", template["id"], 3, name="Newer run")
    page.get_by_role("button", name="Refresh recent runs").click()
    recent = page.locator("#recent-runs button")
    expect(recent).to_have_count(2)
    expect(recent.nth(0)).to_contain_text("Newer run")
    recent.nth(1).click()
    expect(page.locator("#run-id")).to_have_text("older-run")
    assert run_id_in_url(page) == "older-run"
    expect(page.locator("#receipts-body tr")).to_have_count(2)
    expect(recent.nth(1)).to_have_attribute("aria-current", "true")

    page.get_by_label("Run ID", exact=True).fill("newer-run")
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#run-id")).to_have_text("newer-run")
    expect(page.locator("#receipts-body tr")).to_have_count(3)

    # Back returns to the previous run.
    page.go_back()
    expect(page.locator("#run-id")).to_have_text("older-run")

    page.get_by_label("Run ID", exact=True).fill("no-such-run")
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#run-error")).to_contain_text("no-such-run")


def test_draft_first_switch_makes_the_run_draft(page, stack, db, screenshot):
    template = make_template(stack, draft_first=False, name="Careful outreach")
    page.get_by_role("tab", name="Templates").click()
    page.get_by_role("switch", name="Draft first for Careful outreach").check()
    expect(page.locator("#templates-body tr").first.locator("td").nth(2)).to_have_text("v2")

    page.get_by_role("tab", name="Runs").click()
    page.locator("#start-template").select_option(template["id"])
    expect(page.locator("#start-template-info")).to_contain_text("draft first")
    page.get_by_label("Leads (CSV with a header row, or JSON)").fill(
        '[{"email": "ada@example.com", "firstName": "Ada", "company": "AE"},'
        ' {"email": "grace@example.com", "firstName": "Grace", "company": "Navy"}]'
    )
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)
    rows = page.locator("#receipts-body tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#receipts-body [data-type='email.draft'][data-status='drafted']")).to_have_count(2)
    expect(page.locator("#receipts-body [data-type='email.send']")).to_have_count(0)
    expect(page.locator("#count-drafted")).to_have_text("2")
    screenshot(page, "receipts-drafts")
    assert len(list(db.collection("mail_drafts").stream())) == 2
    assert list(db.collection("mail").stream()) == []


def test_a_refused_start_reads_as_words_and_leaves_no_run_behind(page, stack, db):
    template = make_template(stack)
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    page.locator("#start-template").select_option(template["id"])
    leads = "\n".join(["email"] + [f"many{i}@example.com" for i in range(51)])
    page.get_by_label("Leads (CSV with a header row, or JSON)").fill(leads)
    page.get_by_role("button", name="Start run").click()
    error = page.locator("#start-error")
    expect(error).to_contain_text("at most 50 leads")
    expect(error).to_contain_text("background")
    expect(error).not_to_contain_text("[object Object]")
    expect(page.locator("#no-run")).to_be_visible()
    assert "run=" not in page.url
    assert list(db.collection("lead_runs").stream()) == []

    # A CSV without an email column never reaches the API.
    page.get_by_label("Leads (CSV with a header row, or JSON)").fill("name,company\nAda,AE")
    page.get_by_role("button", name="Start run").click()
    expect(error).to_contain_text('needs a header row with an "email" column')


def test_a_stalled_run_is_flagged_and_resume_restarts_it(open_page, stack, db):
    template = make_template(stack)
    start_background_via_api(stack, "stalls", template["id"], 100, "s")
    paused = requests.post(f"{stack.url}/api/lead-runs/stalls/jobs", json={"action": "pause"}, timeout=30)
    assert paused.status_code == 200, paused.text
    # What a worker that died mid-chain leaves behind: running, with a lease long expired.
    expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    db.collection("lead_runs").document("stalls").collection("jobs").document("default").update(
        {"status": "running", "lease": {"owner": "gone", "expiresAt": expired}, "updatedAt": expired,
         "config.batchSize": 25}  # once resumed, finish in a few invocations
    )

    page = open_page("/?run=stalls")
    expect(page.locator("#run-stalled")).to_be_visible()
    expect(page.locator("#run-stalled")).to_contain_text("stalled")
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#run-stalled")).to_be_hidden()
    expect(page.locator("#run-progress-label")).to_have_text("100 / 100 processed")
