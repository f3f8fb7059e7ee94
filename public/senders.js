// Senders (mailboxes) and the deliverability parts of a run: the Senders screen lists
// each sender's use in the last 24 h against its cap, its next send and any pause; a
// waiting run says why and when it sends next; the start form offers a sender and a
// sending window. Times are shown in the operator's own zone (formatTime).

import { api } from "./api.js";
import { $, badge, busy, clear, el, formatTime, say, showError } from "./ui.js";

const WAIT_REASONS = {
  window_closed: "every pending lead is outside its sending window",
  daily_cap: "the sender reached its daily cap (rolling 24 h)",
  hourly_cap: "the sender reached its hourly cap",
  pacing: "spacing sends from this sender",
  provider_quota: "the mail provider asked to slow down; the sender is paused",
};

export function initSenders() {
  $("#sender-form").addEventListener("submit", onSave);
  $("#senders-refresh").addEventListener("click", () => loadSenders());
}

/** Fills the Senders table and the start form's sender list. */
export async function loadSenders() {
  const errorBox = $("#senders-error");
  errorBox.hidden = true;
  let senders = [];
  try {
    senders = (await api("GET", "/api/senders")).senders || [];
  } catch (err) {
    showError(errorBox, err, "Senders");
    return;
  }
  clear(
    $("#senders-body"),
    senders.length
      ? senders.map(senderRow)
      : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No senders yet: add one below."))],
  );
  const choice = $("#start-sender");
  const kept = choice.value;
  clear(choice, el("option", { value: "" }, "none (no caps or pacing)"), ...senders.map((s) => el("option", { value: s.id }, `${s.id} · ${s.email}`)));
  choice.value = senders.some((s) => s.id === kept) ? kept : "";
}

function senderRow(sender) {
  const cap = `${sender.sentLast24h} / ${sender.maxPerDay}`;
  const full = sender.sentLast24h >= sender.maxPerDay;
  const pause = sender.pausedUntil ? `paused until ${formatTime(sender.pausedUntil)}: ${sender.pauseReason || ""}` : "—";
  return el(
    "tr",
    { "data-sender": sender.id },
    el("td", {}, el("code", {}, sender.id), " ", el("span", { class: "muted small" }, sender.email)),
    el("td", { class: full ? "mono warn" : "mono" }, cap, sender.maxPerHour ? el("span", { class: "muted small" }, ` (≤ ${sender.maxPerHour}/h)`) : null),
    el("td", { class: "mono small" }, `${sender.minGapSeconds} s${sender.jitterSeconds ? ` + ≤ ${sender.jitterSeconds} s` : ""}`),
    el("td", { class: "small" }, formatTime(sender.nextSendAt)),
    el("td", { class: "small sender-pause" }, pause),
  );
}

async function onSave(event) {
  event.preventDefault();
  const errorBox = $("#sender-error");
  const status = $("#sender-status");
  errorBox.hidden = true;
  status.hidden = true;
  const id = $("#sender-id").value.trim();
  if (!id) return showError(errorBox, new Error("Give the sender an ID."));
  const number = (selector) => ($(selector).value === "" ? undefined : Number($(selector).value));
  const body = JSON.parse(JSON.stringify({
    email: $("#sender-email").value.trim(),
    maxPerDay: number("#sender-per-day"),
    maxPerHour: number("#sender-per-hour"),
    minGapSeconds: number("#sender-gap") ?? 0,
    jitterSeconds: number("#sender-jitter"),
  }));
  await busy($("#sender-save"), async () => {
    await api("PUT", `/api/senders/${encodeURIComponent(id)}`, { body });
    say(status, `Saved sender ${id}.`);
    await loadSenders();
  }, errorBox);
}

/** The start config's senderId and sendWindow, from the start form (nothing when unset). */
export function deliverabilityConfig() {
  const config = {};
  const sender = $("#start-sender").value;
  if (sender) config.senderId = sender;
  const start = $("#start-window-start").value;
  const end = $("#start-window-end").value;
  if (start || end) {
    const days = [...document.querySelectorAll('#start-window-days input[type="checkbox"]:checked')].map((box) => Number(box.value));
    config.sendWindow = {
      start,
      end,
      days,
      fallbackTimeZone: $("#start-window-zone").value.trim() || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    };
  }
  return config;
}

/** The waiting line of the run view: why the job waits and when it sends next. */
export function renderWaiting(job) {
  const box = $("#run-waiting");
  if (!job || job.status !== "waiting") {
    box.hidden = true;
    return;
  }
  clear(
    box,
    badge("waiting"),
    " ",
    el("strong", {}, WAIT_REASONS[job.waitReason] || job.waitReason || "nothing can be sent yet"),
    el("span", {}, ` · next send ${formatTime(job.wakeAt)}`),
  );
  box.hidden = false;
}
