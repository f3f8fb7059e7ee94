"""The page itself: fits a phone, is reachable by keyboard, names every control,
and never asks the network for anything but the local stack (checked by open_page)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

PHONE = {"width": 390, "height": 844}

UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden")
  .filter((el) => {
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent.trim());
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("tab", ["Runs", "Templates", "Schedule", "Report an issue"])
def test_every_screen_fits_a_phone_and_names_its_controls(open_page, tab, screenshot):
    page = open_page(viewport=PHONE)
    page.get_by_role("tab", name=tab).click()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{tab} scrolls sideways by {overflow}px at phone width"
    assert page.evaluate(UNNAMED_CONTROLS) == []
    screenshot(page, f"phone-{tab.split()[0].lower()}")


def test_keyboard_only_operator_can_switch_screens_and_create_a_template(page, db, screenshot):
    screenshot(page, "runs-empty")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("tab", name="Runs")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Templates")).to_be_focused()
    expect(page.get_by_role("tab", name="Templates")).to_have_attribute("aria-selected", "true")
    assert page.url.endswith("#templates")

    # Tab into the screen until the name field has focus, then fill the form by keyboard.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "template-name":
            break
    expect(page.get_by_label("Template name")).to_be_focused()
    page.keyboard.type("Keyboard made")
    page.keyboard.press("Tab")
    page.keyboard.type("Hello {{firstName}}")
    page.keyboard.press("Tab")
    page.keyboard.type("Body for {{company}}")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the draft-first switch
    expect(page.locator("#template-draft")).to_be_checked()
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#template-status")).to_contain_text('Saved "Keyboard made"')
    stored = [d.to_dict() for d in db.collection("templates").stream()]
    assert [(t["name"], t["draftFirst"]) for t in stored] == [("Keyboard made", True)]


def test_a_reload_keeps_the_screen(page):
    page.get_by_role("tab", name="Schedule").click()
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    expect(page.get_by_role("tab", name="Schedule")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("heading", name="Schedule a meeting")).to_be_visible()
