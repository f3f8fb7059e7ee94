// Receipts of the current run: every lead in processing order with its actions,
// a page at a time (pageToken), optionally only the failed leads (?status=failed).

import { api } from "./api.js";
import { leadTools } from "./review.js";
import { $, badge, busy, clear, el, formatTime, showError } from "./ui.js";

const PAGE_SIZE = 50;
let runId = null;
let tokens = [null]; // tokens[i] fetches page i
let page = 0;
let nextToken = null;
let generation = 0;
let onData = () => {};

const path = (id) => `/api/lead-runs/${encodeURIComponent(id)}/receipts`;

/** onReceipts(fn): fn(body) after every successful load (the run view reads run/job from it). */
export function initReceipts({ onReceipts }) {
  onData = onReceipts || onData;
  $("#receipts-failed").addEventListener("change", () => {
    tokens = [null];
    page = 0;
    refreshReceipts();
  });
  $("#receipts-next").addEventListener("click", async (event) => {
    if (!nextToken) return;
    tokens[page + 1] = nextToken;
    page += 1;
    await busy(event.currentTarget, () => refreshReceipts(), $("#receipts-error"));
    updatePager(); // busy() put the button back as it was; the new page decides
  });
  $("#receipts-prev").addEventListener("click", async (event) => {
    if (page === 0) return;
    page -= 1;
    await busy(event.currentTarget, () => refreshReceipts(), $("#receipts-error"));
    updatePager();
  });
  $("#receipts-refresh").addEventListener("click", (event) => busy(event.currentTarget, () => refreshReceipts(), $("#receipts-error")));
}

export function showReceiptsFor(id, options = {}) {
  runId = id;
  tokens = [null];
  page = 0;
  nextToken = null;
  $("#receipts").hidden = !id;
  clear($("#receipts-body"));
  $("#receipts-empty").hidden = true;
  showError($("#receipts-error"), null);
  return id && !options.defer ? refreshReceipts(options) : Promise.resolve(null);
}

export function onFirstPage() {
  return page === 0;
}

/**
 * Loads the current page again; resolves to the body. A failure is shown in the box and
 * rethrown, except a 404 while `expectMissing` (a foreground run not created yet): null.
 */
export async function refreshReceipts({ expectMissing = false } = {}) {
  if (!runId) return null;
  const mine = ++generation;
  const id = runId;
  try {
    const body = await api("GET", path(id), {
      quiet: expectMissing,
      query: { pageSize: PAGE_SIZE, pageToken: tokens[page] || undefined, status: $("#receipts-failed").checked ? "failed" : undefined },
    });
    if (mine !== generation || id !== runId) return null; // a newer load or another run won
    showError($("#receipts-error"), null);
    nextToken = body.nextPageToken || null;
    render(body.leads || []);
    onData(body);
    return body;
  } catch (err) {
    if (expectMissing && err.status === 404) return null;
    if (mine === generation) showError($("#receipts-error"), err, "Could not load receipts");
    throw err;
  }
}

function render(leads) {
  clear($("#receipts-body"), leads.map(leadRow));
  $("#receipts-empty").hidden = leads.length > 0;
  $("#receipts-empty").textContent = $("#receipts-failed").checked ? "No failed leads on this page." : "No leads on this page.";
  updatePager();
  $("#receipts-page").textContent = `Page ${page + 1}${leads.length ? ` · leads ${leads[0].index + 1}–${leads[leads.length - 1].index + 1}` : ""}`;
}

function updatePager() {
  $("#receipts-prev").disabled = page === 0;
  $("#receipts-next").disabled = !nextToken;
}

function leadRow(lead) {
  const name = [lead.firstName, lead.lastName].filter(Boolean).join(" ");
  return el(
    "tr",
    { class: `lead lead-${lead.status}`, dataset: { leadId: lead.id, status: lead.status } },
    el("td", { class: "mono" }, String(lead.index + 1)),
    el(
      "td",
      {},
      el("div", { class: "strong" }, lead.email || "(no email)"),
      name || lead.company ? el("div", { class: "muted small" }, [name, lead.company].filter(Boolean).join(" · ")) : null,
    ),
    el(
      "td",
      {},
      badge(lead.status),
      lead.attempts > 1 ? el("div", { class: "muted small" }, `${lead.attempts} attempts`) : null,
      lead.lastError ? el("div", { class: "error-text small" }, lead.lastError) : null,
      leadTools(runId, lead, () => refreshReceipts()),
    ),
    el(
      "td",
      {},
      lead.actions && lead.actions.length
        ? el("ul", { class: "actions-list" }, lead.actions.map(actionItem))
        : el("span", { class: "muted small" }, "no actions yet"),
    ),
  );
}

function actionItem(action) {
  return el(
    "li",
    { class: `action action-${action.status}`, dataset: { type: action.type, status: action.status } },
    el("span", { class: "mono" }, action.type),
    " ",
    badge(action.status),
    " ",
    el("time", { class: "muted small", datetime: action.at || "" }, formatTime(action.at)),
    action.attempt > 1 ? el("span", { class: "muted small" }, ` · attempt ${action.attempt}`) : null,
    action.summary && !(action.error && action.summary.includes(action.error)) ? el("div", { class: "small" }, action.summary) : null,
    action.error ? el("div", { class: "error-text small" }, action.error) : null,
  );
}
