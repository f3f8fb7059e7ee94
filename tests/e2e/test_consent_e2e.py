"""Consent and review over real HTTP (router → functions → emulator): suppressed and recently
contacted leads are skipped, the one-click URL from a mail document's header suppresses
(POST) or only asks (GET), and reviewed drafts are sent exactly once."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from tests.e2e.test_background_runs import create_template, post_job
from tests.jobs_helpers import docs, make_leads, start_request

pytestmark = pytest.mark.e2e


def run_foreground(url, run_id, template_id, leads, **config):
    response = post_job(url, run_id, start_request(leads, mode="foreground", templateId=template_id, **config))
    assert response.status_code == 200, response.text
    return {r["email"]: r for r in response.json()["results"]}, response.json()["job"]


def receipts(url, run_id):
    response = requests.get(f"{url}/api/lead-runs/{run_id}/receipts", timeout=10)
    assert response.status_code == 200, response.text
    return {lead["email"]: lead for lead in response.json()["leads"]}


def actions(lead):
    return {action["type"]: action for action in lead["actions"]}


def test_suppressed_and_recently_contacted_leads_are_skipped(stack, db):
    template = create_template(stack.url)
    added = requests.post(f"{stack.url}/api/suppressions", json={"email": "Lead1@Example.com", "reason": "asked"}, timeout=10)
    assert added.status_code == 201, added.text
    results, job = run_foreground(stack.url, "e2e-consent-a", template, make_leads(3))
    assert [results[f"lead{i}@example.com"]["status"] for i in range(3)] == ["sent", "skipped", "sent"]
    assert job["counts"]["skipped"] == 1 and job["status"] == "completed"
    skip = actions(receipts(stack.url, "e2e-consent-a")["lead1@example.com"])["email.skip"]
    assert skip["status"] == "skipped" and "suppressed" in skip["summary"]

    results, job = run_foreground(stack.url, "e2e-consent-b", template, make_leads(4), skipIfContactedWithinDays=30)
    assert [results[f"lead{i}@example.com"]["status"] for i in range(4)] == ["skipped", "skipped", "skipped", "sent"]
    leads = receipts(stack.url, "e2e-consent-b")
    assert "recently_contacted" in actions(leads["lead0@example.com"])["email.skip"]["summary"]
    assert "suppressed" in actions(leads["lead1@example.com"])["email.skip"]["summary"]
    assert sorted(m["to"] for m in docs(db, "mail")) == ["lead0@example.com", "lead2@example.com", "lead3@example.com"]


def test_one_click_on_the_mail_header_url_suppresses_and_the_next_run_skips(stack, db):
    template = create_template(stack.url)
    run_foreground(stack.url, "e2e-unsub-a", template, make_leads(1))
    (mail,) = docs(db, "mail")
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["headers"]["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{stack.url}/u/")

    page = requests.get(link, timeout=10)  # what a mail scanner does
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert requests.get(f"{stack.url}/api/suppressions", timeout=10).json()["suppressions"] == []

    for _ in range(2):  # what the mailbox provider does, perhaps twice
        clicked = requests.post(link, data="List-Unsubscribe=One-Click", timeout=10,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert clicked.status_code == 200
    listed = requests.get(f"{stack.url}/api/suppressions", timeout=10).json()["suppressions"]
    assert [(s["value"], s["source"]) for s in listed] == [("lead0@example.com", "unsubscribe")]
    assert "email.unsubscribe" in actions(receipts(stack.url, "e2e-unsub-a")["lead0@example.com"])

    results, _ = run_foreground(stack.url, "e2e-unsub-b", template, make_leads(1))
    assert results["lead0@example.com"]["status"] == "skipped" and len(docs(db, "mail")) == 1
    assert requests.get(f"{stack.url}/u/not-a-token", timeout=10).status_code == 404


def test_reviewed_drafts_are_sent_exactly_once(stack, db):
    template = create_template(stack.url, draft_first=True)
    run_foreground(stack.url, "e2e-review", template, make_leads(3))
    base = f"{stack.url}/api/lead-runs/e2e-review/drafts"
    drafts = requests.get(base, timeout=10).json()["drafts"]
    assert [d["status"] for d in drafts] == ["pending"] * 3
    edited = requests.patch(f"{base}/lead-000000", json={"body": "Edited by a human"}, headers={"If-Match": '"1"'}, timeout=10)
    assert edited.status_code == 200 and edited.headers["ETag"] == '"2"'

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sends = list(pool.map(lambda _: requests.post(f"{base}/lead-000000:send", timeout=30), range(4)))
    assert sorted(r.json()["outcome"] for r in sends) == ["already_sent"] * 3 + ["sent"]
    (mail,) = docs(db, "mail")
    assert mail["message"]["text"] == "Edited by a human"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bulk = list(pool.map(lambda _: requests.post(
            f"{stack.url}/api/lead-runs/e2e-review/drafts:send",
            json={"leadDocIds": ["lead-000000", "lead-000001", "lead-000002"]}, timeout=30), range(2)))
    outcomes = [{r["leadDocId"]: r["outcome"] for r in b.json()["results"]} for b in bulk]
    for lead in ("lead-000001", "lead-000002"):
        assert sorted(o[lead] for o in outcomes) == ["already_sent", "sent"]
    assert sorted(m["to"] for m in docs(db, "mail")) == [f"lead{i}@example.com" for i in range(3)]
    job = requests.get(f"{stack.url}/api/lead-runs/e2e-review/jobs", timeout=10).json()["job"]
    assert job["counts"]["sent"] == 3 and job["counts"]["drafted"] == 0
