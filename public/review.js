// Review screen: a run's drafts as the recipient will see them; edit, approve (send),
// discard, select many and approve. Also the per-lead tools of the receipts table
// (retry one lead, schedule a meeting with it).

import { api } from "./api.js";
import { scheduleForLead } from "./schedule.js";
import { getRun } from "./state.js";
import { $, badge, busy, clear, el, formatTime, say } from "./ui.js";

const PAGE_SIZE = 50;
let runId = null;
let drafts = [];
let nextToken = null;
let countsTimer = null;
const COUNTS_EVERY_MS = 3000;

const base = (id) => `/api/lead-runs/${encodeURIComponent(id)}`;

export function initReview() {
  $("#review-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#review-run-id").value.trim();
    if (id) busy($("#review-load"), () => loadDrafts(id), $("#review-error"));
  });
  $("#review-select-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("#drafts input[type=checkbox]")) box.checked = event.currentTarget.checked;
    updateSelection();
  });
  $("#review-approve-selected").addEventListener("click", (event) => busy(event.currentTarget, approveSelected, $("#review-error")));
  $("#review-more").addEventListener("click", (event) => busy(event.currentTarget, () => loadDrafts(runId, nextToken), $("#review-error")));
}

/** Called when the Review tab is shown: the run being looked at on the Runs screen, if any. */
export function showReview() {
  const id = runId || getRun();
  if (!id) return;
  $("#review-run-id").value = id;
  busy($("#review-load"), () => loadDrafts(id), $("#review-error"));
}

async function loadDrafts(id, pageToken = null) {
  const body = await api("GET", `${base(id)}/drafts`, { query: { pageSize: PAGE_SIZE, pageToken: pageToken || undefined } });
  if (runId !== id || !pageToken) drafts = [];
  runId = id;
  drafts = drafts.concat(body.drafts || []);
  nextToken = body.nextPageToken || null;
  render();
  refreshCounts();
}

/** The run's counts, live: another operator's approvals (or a running job) show up here. */
async function refreshCounts() {
  clearTimeout(countsTimer);
  if (!runId || $("#panel-review").hidden) return;
  const id = runId;
  try {
    const body = await api("GET", `${base(id)}/jobs`, { quiet: true });
    const counts = (body.job && body.job.counts) || {};
    if (id === runId) {
      $("#review-run-counts").textContent = ["drafted", "sent", "skipped", "failed"].map((k) => `${k} ${counts[k] || 0}`).join(" · ");
    }
  } catch {
    // The drafts list says what is wrong with the run; the counts line just stays as it was.
  }
  countsTimer = setTimeout(refreshCounts, COUNTS_EVERY_MS);
}

function render() {
  clear($("#drafts"), drafts.map(draftCard));
  $("#review-empty").hidden = drafts.length > 0;
  $("#review-more").hidden = !nextToken;
  $("#review-select-all").checked = false;
  updateSelection();
}

function pendingCount() {
  return drafts.filter((d) => d.status === "pending").length;
}

function updateSelection() {
  const selected = document.querySelectorAll("#drafts input[type=checkbox]:checked").length;
  $("#review-approve-selected").disabled = selected === 0;
  $("#review-approve-selected").textContent = selected ? `Approve ${selected} selected` : "Approve selected";
  $("#review-counts").textContent = `${pendingCount()} awaiting review · ${drafts.filter((d) => d.status === "sent").length} sent here`;
}

function draftCard(draft) {
  const pending = draft.status === "pending";
  const card = el(
    "article",
    { class: `draft card inner draft-${draft.status}`, dataset: { leadId: draft.leadDocId, status: draft.status, version: String(draft.version) } },
    el(
      "div",
      { class: "row between wrap" },
      el(
        "label",
        { class: "inline" },
        pending ? el("input", { type: "checkbox", "aria-label": `Select the draft to ${draft.to}`, onchange: updateSelection }) : null,
        el("span", { class: "strong" }, draft.to),
      ),
      el("span", {}, badge(draft.status), el("span", { class: "muted small" }, ` v${draft.version}`)),
    ),
    el("div", { class: "mail-subject" }, el("span", { class: "muted small" }, "Subject: "), el("span", { class: "subject" }, draft.subject)),
    // The HTML part, as a mail client shows it: a sandboxed frame runs no script and reaches nothing.
    el("iframe", { class: "mail-body", sandbox: "", title: `Draft to ${draft.to}`, srcdoc: draft.html }),
    pending
      ? el(
          "div",
          { class: "row wrap" },
          el("button", { type: "button", class: "primary", onclick: (e) => busy(e.currentTarget, () => approve(draft), errorBox(card)) }, "Approve and send"),
          el("button", { type: "button", onclick: () => toggleEditor(card, draft) }, "Edit"),
          el("button", { type: "button", class: "danger", onclick: (e) => busy(e.currentTarget, () => discard(draft), errorBox(card)) }, "Discard"),
        )
      : null,
    // A send whose claim is older than 90 s was interrupted: Send searches the mailbox and finishes it.
    draft.status === "sending"
      ? el(
          "div",
          { class: "row wrap" },
          el("span", { class: "muted small sending-at" }, `in flight since ${formatTime(draft.sendingAt)}`),
          el("button", { type: "button", onclick: (e) => busy(e.currentTarget, () => approve(draft), errorBox(card)) }, "Finish sending"),
        )
      : null,
    el("div", { class: "alert", role: "alert", hidden: true }),
  );
  return card;
}

function errorBox(card) {
  return card.querySelector("[role=alert]");
}

function toggleEditor(card, draft) {
  const existing = card.querySelector("form");
  if (existing) return existing.remove();
  const form = el(
    "form",
    { class: "stack" },
    el("label", {}, "Subject ", el("input", { name: "subject", value: draft.subject, maxlength: 300, required: true })),
    el("label", {}, "Body ", el("textarea", { name: "body", rows: 6, required: true }, draft.text)),
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, "Save draft")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button"), async () => {
      const changed = await api("PATCH", `${base(runId)}/drafts/${encodeURIComponent(draft.leadDocId)}`, {
        body: { subject: form.elements.subject.value, body: form.elements.body.value },
        headers: { "If-Match": `"${draft.version}"` },
      });
      replace(changed);
    }, errorBox(card));
  });
  card.insertBefore(form, errorBox(card));
  form.elements.subject.focus();
  return undefined;
}

function replace(changed) {
  drafts = drafts.map((d) => (d.leadDocId === changed.leadDocId ? changed : d));
  render();
}

function mark(leadDocId, status) {
  const draft = drafts.find((d) => d.leadDocId === leadDocId);
  if (draft) replace({ ...draft, status });
}

async function approve(draft) {
  const result = await api("POST", `${base(runId)}/drafts/${encodeURIComponent(draft.leadDocId)}:send`, { body: { version: draft.version } });
  if (result.outcome === "failed") {
    say($("#review-status"), `Not sent to ${draft.to}: ${result.reason}`);
    return loadDrafts(runId); // pending again, or still sending: the list says which
  }
  mark(draft.leadDocId, result.outcome === "skipped" ? "skipped" : "sent");
  refreshCounts();
  say($("#review-status"), result.outcome === "skipped" ? `Not sent to ${draft.to}: ${result.reason}` : `Sent to ${draft.to}.`);
}

async function discard(draft) {
  replace(await api("POST", `${base(runId)}/drafts/${encodeURIComponent(draft.leadDocId)}:discard`, { body: { version: draft.version } }));
  refreshCounts();
}

async function approveSelected() {
  const ids = [...document.querySelectorAll("#drafts input[type=checkbox]:checked")].map((box) => box.closest("[data-lead-id]").dataset.leadId);
  if (!ids.length) return;
  const result = await api("POST", `${base(runId)}/drafts:send`, { body: { leadDocIds: ids } });
  const done = { sent: "sent", already_sent: "sent", skipped: "skipped" };
  for (const outcome of result.results || []) if (done[outcome.outcome]) mark(outcome.leadDocId, done[outcome.outcome]);
  const sent = (result.results || []).filter((r) => r.outcome === "sent").length;
  say($("#review-status"), `Sent ${sent} of ${ids.length} selected.`);
  refreshCounts();
}

// --- per-lead tools in the receipts table ----------------------------------------------

/** Buttons for one lead's row: retry it (when it failed) and schedule a meeting with it. */
export function leadTools(id, lead, onChanged) {
  const box = el("div", { class: "alert", role: "alert", hidden: true });
  return el(
    "div",
    { class: "row wrap lead-tools" },
    lead.status === "failed"
      ? el("button", {
          type: "button", class: "small", "aria-label": `Retry lead ${lead.index + 1}`,
          onclick: (e) => busy(e.currentTarget, async () => {
            await api("POST", `${base(id)}/leads/${encodeURIComponent(lead.id)}:retry`, { body: {} });
            document.dispatchEvent(new CustomEvent("lead-retried", { detail: { runId: id, leadDocId: lead.id } }));
            if (onChanged) await onChanged();
          }, box),
        }, "Retry lead")
      : null,
    el("button", {
      type: "button", class: "small link", "aria-label": `Schedule a meeting with ${lead.email}`,
      onclick: () => scheduleForLead({ runId: id, leadDocId: lead.id, email: lead.email, timeZone: lead.timeZone }),
    }, "Schedule a meeting"),
    box,
  );
}
