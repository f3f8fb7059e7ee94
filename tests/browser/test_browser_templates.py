"""Templates screen in a real browser: create, edit, draftFirst switch, delete, and a
version conflict that reads as words."""

from __future__ import annotations

import requests
from playwright.sync_api import expect


def create_template(stack, **fields) -> dict:
    body = {"name": "Intro", "subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}", **fields}
    response = requests.post(f"{stack.url}/api/templates", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_edit_toggle_and_delete_a_template(page, stack, db, screenshot):
    page.get_by_role("tab", name="Templates").click()
    expect(page.locator("#templates-empty")).to_be_visible()

    page.get_by_label("Template name").fill("Webinar follow-up")
    page.get_by_label("Subject").fill("Thanks for coming, {{firstName}}")
    page.get_by_label("Body").fill("Hi {{firstName}},\nslides attached.")
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("#template-status")).to_contain_text('Saved "Webinar follow-up" (version 1)')
    row = page.locator("#templates-body tr", has_text="Webinar follow-up")
    expect(row).to_have_count(1)
    stored = [d.to_dict() for d in db.collection("templates").stream()]
    assert [(t["name"], t["draftFirst"], t["version"]) for t in stored] == [("Webinar follow-up", False, 1)]

    # The draftFirst switch in the list patches the template with its version.
    page.get_by_role("switch", name="Draft first for Webinar follow-up").check()
    expect(row.locator("td").nth(2)).to_have_text("v2")
    assert next(db.collection("templates").stream()).to_dict()["draftFirst"] is True

    # Edit in the form; it is offered in the run form's template picker with its mode.
    row.get_by_role("button", name="Edit Webinar follow-up").click()
    expect(page.locator("#template-version")).to_contain_text("version 2")
    page.get_by_label("Subject").fill("Thank you, {{firstName}}")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#template-status")).to_contain_text("(version 3)")
    screenshot(page, "templates")

    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#start-template option", has_text="Webinar follow-up (draft first)")).to_have_count(1)

    # A malformed placeholder is refused with the field named, not "[object Object]".
    page.get_by_role("tab", name="Templates").click()
    page.get_by_label("Body").fill("Hello {{first name}}")
    page.get_by_role("button", name="Save changes").click()
    error = page.locator("#template-error")
    expect(error).to_contain_text("body")
    expect(error).not_to_contain_text("[object Object]")

    delete = row.get_by_role("button", name="Delete Webinar follow-up")
    delete.click()
    expect(delete).to_have_text("Really delete?")
    delete.click()
    expect(page.locator("#templates-body tr")).to_have_count(0)
    assert list(db.collection("templates").stream()) == []


def test_a_concurrent_edit_surfaces_as_a_readable_conflict(page, stack, db):
    template = create_template(stack, name="Shared template")
    page.get_by_role("tab", name="Templates").click()
    page.get_by_role("button", name="Edit Shared template").click()
    expect(page.locator("#template-version")).to_contain_text("version 1")

    # Someone else saves first.
    other = requests.patch(
        f"{stack.url}/api/templates/{template['id']}", json={"subject": "Theirs {{firstName}}", "version": 1}, timeout=10
    )
    assert other.status_code == 200, other.text

    page.get_by_label("Subject").fill("Mine {{firstName}}")
    page.get_by_role("button", name="Save changes").click()
    error = page.locator("#template-error")
    expect(error).to_contain_text("was changed by someone else")
    expect(error).to_contain_text("you edited version 1, it is now at version 2")
    expect(error).not_to_contain_text("[object Object]")
    assert db.collection("templates").document(template["id"]).get().to_dict()["subject"] == "Theirs {{firstName}}"

    # The operator can pick up the latest version and save on top of it.
    error.get_by_role("button", name="Load the latest version").click()
    expect(page.get_by_label("Subject")).to_have_value("Theirs {{firstName}}")
    expect(page.locator("#template-version")).to_contain_text("version 2")
