// Schedule screen: search free slots in a time zone's wall time, book one.
// Booking a chosen slot sends just that start as candidateStarts with book: true,
// so the API books exactly the slot the operator clicked, or answers 409 if it
// was taken in the meantime.

import { api } from "./api.js";
import { $, busy, clear, el, showError } from "./ui.js";

const COMMON_ZONES = [
  "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
  "Europe/London", "Europe/Paris", "Europe/Berlin", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
  "Australia/Sydney", "Pacific/Auckland", "UTC",
];
let lastSearch = null;
let leadTarget = null; // {runId, leadDocId} when the booking is for a lead of a run

/** Opens the Schedule screen for one lead of a run: its zone and email filled in, and the
 * booking's receipt attached to that lead (runId/leadDocId). */
export function scheduleForLead({ runId, leadDocId, email, timeZone }) {
  leadTarget = { runId, leadDocId };
  if (timeZone) $("#schedule-zone").value = timeZone;
  $("#schedule-attendee").value = email || "";
  $("#schedule-lead").textContent = `For lead ${email || leadDocId} of run ${runId}; the booking shows on its receipts.`;
  $("#schedule-lead").hidden = false;
  window.location.hash = "schedule";
  $("#schedule-zone").focus();
}

export function initSchedule() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : COMMON_ZONES;
  clear($("#schedule-zones"), [...new Set([...COMMON_ZONES, ...zones])].map((zone) => el("option", { value: zone })));
  $("#schedule-zone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
  $("#schedule-date").value = localDate(tomorrow);
  $("#schedule-form").addEventListener("submit", onSearch);
}

function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function readForm() {
  const number = (id) => Number.parseInt($(id).value, 10);
  const days = [...document.querySelectorAll('#schedule-form input[name="day"]:checked')].map((box) => Number(box.value));
  const attendee = $("#schedule-attendee").value.trim();
  return {
    slotSearch: {
      timeZone: $("#schedule-zone").value.trim(),
      startDate: $("#schedule-date").value,
      days: number("#schedule-days"),
      workingHours: { start: $("#schedule-hours-start").value, end: $("#schedule-hours-end").value === "00:00" ? "24:00" : $("#schedule-hours-end").value },
      workingDays: days,
      stepMinutes: number("#schedule-step"),
      maxCandidates: 20,
    },
    durationMinutes: number("#schedule-duration"),
    title: $("#schedule-title-input").value.trim() || "Meeting",
    attendees: attendee ? [{ email: attendee }] : [],
  };
}

async function onSearch(event) {
  event.preventDefault();
  const request = readForm();
  showError($("#booking-error"), null);
  $("#booking").hidden = true;
  await busy($("#schedule-search"), async () => {
    const result = await api("POST", "/api/calendar/schedule", { body: { ...request, book: false } });
    lastSearch = request;
    renderSlots(result.candidates || [], request.slotSearch.timeZone);
  }, $("#schedule-error"));
}

function renderSlots(candidates, zone) {
  $("#slots-zone").textContent = candidates.length ? `Times in ${zone}; UTC in brackets.` : "";
  $("#slots-empty").textContent = "No free slot in that window. Widen the dates or the working hours.";
  $("#slots-empty").hidden = candidates.length > 0;
  clear(
    $("#slots"),
    candidates.map((slot) => {
      const label = `${wall(slot.start, zone)} – ${wall(slot.end, zone, true)}`;
      return el(
        "li",
        { class: "slot" },
        el("span", {}, el("span", { class: "strong" }, label), " ", el("span", { class: "muted small mono" }, `(${slot.startUtc})`)),
        el("button", { type: "button", class: "small", "aria-label": `Book ${label}`, onclick: (e) => book(slot, e.currentTarget) }, "Book"),
      );
    }),
  );
}

/** "Mon 3 Jun, 09:00" in the searched zone (the browser knows every IANA zone offline). */
function wall(iso, zone, timeOnly = false) {
  const options = timeOnly
    ? { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
    : { timeZone: zone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
  } catch {
    return iso;
  }
}

async function book(slot, button) {
  if (!lastSearch) return;
  const body = {
    candidateStarts: [slot.start],
    durationMinutes: lastSearch.durationMinutes,
    title: lastSearch.title,
    attendees: lastSearch.attendees,
    book: true,
  };
  // The booking keeps the zone it was searched in, and the attendee as its lead.
  body.lead = { timeZone: lastSearch.slotSearch.timeZone };
  if (lastSearch.attendees.length) body.lead.email = lastSearch.attendees[0].email;
  if (leadTarget) Object.assign(body, leadTarget);
  await busy(button, async () => {
    const result = await api("POST", "/api/calendar/schedule", { body });
    const booking = result.booking;
    const box = $("#booking");
    clear(
      box,
      el("strong", {}, "Booked"),
      ` ${wall(booking.start, lastSearch.slotSearch.timeZone)} – ${wall(booking.end, lastSearch.slotSearch.timeZone, true)} (${booking.status || "confirmed"}). `,
      "Booking ID ",
      el("code", { id: "booking-id" }, booking.id),
      booking.htmlLink ? el("span", {}, " · ", el("a", { href: booking.htmlLink, target: "_blank", rel: "noopener" }, "open in Calendar")) : null,
    );
    box.hidden = false;
    button.closest("li")?.classList.add("booked");
    button.textContent = "Booked";
  }, $("#booking-error"));
  if (button.textContent === "Booked") button.disabled = true;
}
