"""Schedule screen: candidate slots in the chosen zone's wall time, booking one."""

from __future__ import annotations

from playwright.sync_api import expect


def test_find_slots_in_a_time_zone_and_book_one(page, db, screenshot):
    page.get_by_role("tab", name="Schedule").click()
    page.get_by_label("Time zone").fill("America/New_York")
    page.get_by_label("From date").fill("2030-06-03")  # a Monday, EDT (UTC-4)
    page.get_by_label("Days").fill("2")
    page.get_by_label("Duration (min)").fill("45")
    page.get_by_label("Working from").fill("09:00")
    page.get_by_label("Working until").fill("12:00")
    page.get_by_label("Every (min)").fill("60")
    page.get_by_label("Title").fill("Intro with Ada")
    page.get_by_label("Attendee email").fill("ada@example.com")
    page.get_by_role("button", name="Find slots").click()

    slots = page.locator("#slots li")
    expect(slots).to_have_count(6)  # 09:00, 10:00, 11:00 on two days; none crosses 12:00
    expect(slots.first).to_contain_text("09:00 – 09:45")
    expect(slots.first).to_contain_text("2030-06-03T13:00:00Z")
    expect(page.locator("#slots-zone")).to_contain_text("America/New_York")

    slots.nth(1).get_by_role("button").click()
    booking = page.locator("#booking")
    expect(booking).to_contain_text("Booked")
    expect(booking).to_contain_text("10:00 – 10:45")
    booking_id = page.locator("#booking-id").inner_text()
    screenshot(page, "schedule")

    stored = db.collection("calendar_bookings").document(booking_id).get()
    assert stored.exists
    doc = stored.to_dict()
    assert doc["title"] == "Intro with Ada"
    assert doc["start"].isoformat().startswith("2030-06-03T14:00:00")
    assert doc["timeZone"] == "America/New_York" and doc["lead"]["email"] == "ada@example.com"

    # Searching again no longer offers the booked hour.
    page.get_by_role("button", name="Find slots").click()
    expect(slots).to_have_count(5)
    expect(page.locator("#slots")).not_to_contain_text("2030-06-03T14:00:00Z")


def test_a_bad_search_reads_as_words(page):
    page.get_by_role("tab", name="Schedule").click()
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Find slots").click()
    error = page.locator("#schedule-error")
    expect(error).to_contain_text("slotSearch.timeZone")
    expect(error).to_contain_text("IANA")
    expect(error).not_to_contain_text("[object Object]")
