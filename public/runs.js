// Runs screen: start a run (foreground or background), load one by ID or from the
// recent list, watch its job (progress, counts, status, stalled, diagnostics) and
// drive it (pause, resume, retry failed, cancel — each enabled only when legal).

import { api, ApiError } from "./api.js";
import { $, badge, busy, clear, el, formatTime, say, showError } from "./ui.js";
import { LeadsError, parseLeads } from "./leads.js";
import { getRun, getTemplates, on, setRun } from "./state.js";
import { initReceipts, onFirstPage, refreshReceipts, showReceiptsFor } from "./receipts.js";
import { deliverabilityConfig, renderWaiting } from "./senders.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;
const WAITING_POLL_MS = 30000;
const RECEIPTS_EVERY = 3; // receipts reload every third poll while a job runs
const COUNT_ORDER = ["pending", "sent", "drafted", "failed", "skipped"];

let pollTimer = null;
let pollTicks = 0;
let lastJob = null;
let lastRun = null;
let foregroundBusy = false;
// A foreground start creates its run partway through its request: until the run shows in
// the recent list, asking for its receipts or job would only be a 404 in the console.
let runSeen = false;

async function foregroundRunExists(id) {
  if (!runSeen) {
    const body = await api("GET", "/api/lead-runs", { query: { limit: 10 }, quiet: true }).catch(() => null);
    runSeen = Boolean(body && (body.runs || []).some((run) => run.id === id));
  }
  return runSeen;
}

const jobsPath = (id) => `/api/lead-runs/${encodeURIComponent(id)}/jobs`;

/** Which buttons are legal for a job (shared/jobs/state.py; the API answers 409 to the rest). */
export function legalActions(job) {
  if (!job) return new Set();
  switch (job.status) {
    case "queued":
    case "running":
      // resume restarts only a stalled worker
      return new Set(job.stalled ? ["pause", "resume", "cancel"] : ["pause", "cancel"]);
    case "paused":
      return new Set(["resume", "cancel"]);
    case "waiting":
      return new Set(["pause", "resume", "cancel"]);
    case "completed_with_errors":
    case "failed":
      return new Set(["retry"]);
    default:
      return new Set();
  }
}

export function initRuns() {
  $("#start-form").addEventListener("submit", onStart);
  $("#start-file").addEventListener("change", onFile);
  $("#start-leads").addEventListener("input", countLeads);
  $("#start-template").addEventListener("change", describeTemplate);
  $("#load-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#load-run-id").value.trim();
    if (id) busy($("#load-button"), () => openRun(id), $("#load-error"));
  });
  $("#recent-refresh").addEventListener("click", (event) => busy(event.currentTarget, () => loadRecent(), $("#recent-error")));
  $("#run-refresh").addEventListener("click", (event) => busy(event.currentTarget, () => refreshRun(), $("#run-error")));
  for (const button of document.querySelectorAll("#run-view [data-action]")) {
    button.addEventListener("click", () => control(button.dataset.action, button));
  }
  initReceipts({ onReceipts: onReceiptsLoaded });
  // A lead row's Retry lead (review.js) restarted the job: watch it again.
  document.addEventListener("lead-retried", () => refreshRun().catch(() => {}));
  on("templates", fillTemplatePicker);
  on("run", (id) => {
    if (id) showRun(id);
    else hideRun();
  });
  fillTemplatePicker(getTemplates());
}

// --- start ------------------------------------------------------------------------

function fillTemplatePicker(templates) {
  const select = $("#start-template");
  const chosen = select.value;
  clear(
    select,
    el("option", { value: "" }, templates.length ? "Choose a template…" : "No templates yet: create one on the Templates screen"),
    templates.map((t) => el("option", { value: t.id }, `${t.name}${t.draftFirst ? " (draft first)" : ""}`)),
  );
  if (templates.some((t) => t.id === chosen)) select.value = chosen;
  else if (templates.length === 1) select.value = templates[0].id;
  describeTemplate();
}

function describeTemplate() {
  const template = getTemplates().find((t) => t.id === $("#start-template").value);
  const info = $("#start-template-info");
  if (!template) {
    info.textContent = "";
    return;
  }
  clear(
    info,
    template.draftFirst ? el("span", { class: "badge status-drafted" }, "draft first") : el("span", { class: "badge status-sent" }, "sends"),
    " ",
    template.draftFirst ? "Creates drafts for review; nothing is sent." : "Sends email to each lead.",
    " Subject: ",
    el("q", {}, template.subject),
  );
}

function countLeads() {
  const box = $("#start-leads-count");
  try {
    const leads = parseLeads($("#start-leads").value);
    box.textContent = leads.length ? `${leads.length} lead${leads.length === 1 ? "" : "s"}` : "";
    box.classList.remove("error-text");
  } catch (err) {
    box.textContent = err.message;
    box.classList.add("error-text");
  }
}

async function onFile(event) {
  const file = event.currentTarget.files[0];
  if (!file) return;
  if (file.size > 5 * 1024 * 1024) {
    showError($("#start-error"), new LeadsError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is 5 MB.`));
    return;
  }
  $("#start-leads").value = await file.text();
  countLeads();
}

function newRunId() {
  const now = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const random = Math.random().toString(36).slice(2, 8);
  return `run-${now}-${random}`;
}

function numberOrUndefined(id) {
  const value = $(id).value.trim();
  return value ? Number.parseInt(value, 10) : undefined;
}

async function onStart(event) {
  event.preventDefault();
  const errorBox = $("#start-error");
  const status = $("#start-status");
  say(status, "");
  showError(errorBox, null);
  let leads;
  try {
    leads = parseLeads($("#start-leads").value);
  } catch (err) {
    showError(errorBox, err, "Leads");
    return;
  }
  const templateId = $("#start-template").value;
  if (!templateId) return showError(errorBox, new Error("Choose a template first."));
  if (!leads.length) return showError(errorBox, new Error("Paste or upload at least one lead."));
  const runId = $("#start-run-id").value.trim() || newRunId();
  const mode = document.querySelector('#start-form input[name="mode"]:checked').value;
  const draft = $("#start-draft").value;
  const config = {
    templateId,
    batchSize: numberOrUndefined("#start-batch"),
    maxAttempts: numberOrUndefined("#start-attempts"),
    draftFirst: draft === "" ? undefined : draft === "true",
    ...deliverabilityConfig(),
  };
  const body = { action: "start", mode, config: JSON.parse(JSON.stringify(config)), leads };
  const name = $("#start-name").value.trim();
  if (name) body.name = name;

  const previousRun = getRun();
  await busy($("#start-button"), async () => {
    say(status, mode === "foreground" ? `Running ${leads.length} leads in the foreground…` : `Starting a background run of ${leads.length} leads…`);
    if (mode === "foreground") {
      // The answer comes when every lead is done; meanwhile the receipts fill in.
      foregroundBusy = true;
      runSeen = false;
      watch(runId);
    }
    try {
      const answer = await api("POST", jobsPath(runId), { body });
      say(status, mode === "foreground" ? `Foreground run ${runId} finished.` : `Background run ${runId} started.`);
      if (answer && answer.job) lastJob = answer.job;
      $("#start-run-id").value = "";
      foregroundBusy = false;
      const recent = loadRecent();
      if (getRun() === runId) await refreshRun();
      else watch(runId);
      await recent;
    } catch (err) {
      say(status, "");
      showError(errorBox, err, "The run did not start");
      foregroundBusy = false;
      if (mode === "foreground" && getRun() === runId) {
        // Refused before anything was written (400/409/413...): show what was shown before.
        // Otherwise the run exists and may have partial results: show them.
        const refused = err instanceof ApiError && err.status >= 400 && err.status < 500;
        if (refused && previousRun !== runId) window.history.back();
        else await refreshRun().catch(() => {});
      }
    } finally {
      foregroundBusy = false;
    }
  });
}

// --- load -------------------------------------------------------------------------

/** Shows a run the operator asked for, and brings it into view (on a phone it is below the forms). */
function watch(id) {
  setRun(id);
  const view = $("#run-view");
  if (view.getBoundingClientRect().top < 0 || view.getBoundingClientRect().top > window.innerHeight * 0.6) {
    view.scrollIntoView({ block: "start" });
  }
}

async function openRun(id) {
  showError($("#load-error"), null);
  if (getRun() === id) return refreshRun();
  watch(id);
  $("#load-run-id").value = "";
  return undefined;
}

export async function loadRecent() {
  const list = $("#recent-runs");
  try {
    const body = await api("GET", "/api/lead-runs", { query: { limit: 10 } });
    showError($("#recent-error"), null);
    const runs = body.runs || [];
    clear(
      list,
      runs.length
        ? runs.map((run) =>
            el(
              "li",
              {},
              el(
                "button",
                { type: "button", class: "run-link", dataset: { runId: run.id }, "aria-current": run.id === getRun() ? "true" : false, onclick: () => watch(run.id) },
                el("span", { class: "strong ellipsis" }, run.name || run.id),
                el("span", { class: "muted small" }, `${run.totalLeads} leads · ${formatTime(run.createdAt)}`),
                badge(run.status),
              ),
            ),
          )
        : el("li", { class: "muted" }, "No runs yet."),
    );
  } catch (err) {
    showError($("#recent-error"), err, "Could not list recent runs");
  }
}

// --- watch ------------------------------------------------------------------------

function hideRun() {
  stopPolling();
  $("#run-view").hidden = true;
  $("#no-run").hidden = false;
  showReceiptsFor(null);
}

async function showRun(id) {
  stopPolling();
  lastJob = null;
  lastRun = null;
  $("#run-view").hidden = false;
  $("#no-run").hidden = true;
  $("#run-id").textContent = id;
  $("#run-name").textContent = "";
  clear($("#run-status"));
  showError($("#run-error"), null);
  renderJob(null);
  for (const item of document.querySelectorAll("#recent-runs [data-run-id]")) {
    item.setAttribute("aria-current", item.dataset.runId === id ? "true" : "false");
  }
  try {
    const body = await showReceiptsFor(id, { expectMissing: foregroundBusy, defer: foregroundBusy && !runSeen });
    if (!body && foregroundBusy) {
      // The foreground request creates the run; its receipts appear as leads finish.
      $("#run-updated").textContent = "waiting for the first results…";
      schedulePoll();
      return;
    }
  } catch (err) {
    showError($("#run-error"), err, err instanceof ApiError && err.status === 404 ? "No such run" : "");
    return;
  }
  await refreshJob();
  schedulePoll();
}

/** The later of two views of the same job (receipts and GET jobs both carry one). */
function fresher(a, b) {
  if (!a) return b;
  if (!b) return a;
  return String(b.updatedAt || "") >= String(a.updatedAt || "") ? b : a;
}

function onReceiptsLoaded(body) {
  if (body.run) lastRun = body.run;
  lastJob = fresher(lastJob, body.job || null);
  renderRun();
}

/** GET the job; a 404 means the run has no job (only receipts), not an error. */
async function refreshJob({ expectMissing = false } = {}) {
  const id = getRun();
  if (!id) return;
  try {
    const body = await api("GET", jobsPath(id), { quiet: expectMissing });
    if (id !== getRun()) return;
    lastJob = fresher(lastJob, body.job || null);
    showError($("#run-error"), null);
  } catch (err) {
    if (id !== getRun()) return;
    // 404: the run has no job yet (or not even a run, which the receipts say in words).
    if (!(err instanceof ApiError && err.status === 404)) showError($("#run-error"), err, "Could not read the job");
  }
  renderRun();
}

export async function refreshRun() {
  await Promise.all([refreshJob(), refreshReceipts().catch(() => null)]);
  schedulePoll();
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function schedulePoll() {
  stopPolling();
  const active = foregroundBusy || (lastJob && ACTIVE.has(lastJob.status));
  // A waiting job changes at its wakeAt (docs/deliverability.md): look now and then.
  const waiting = lastJob && lastJob.status === "waiting";
  if ((!active && !waiting) || !getRun()) return;
  pollTimer = setTimeout(async () => {
    pollTicks += 1;
    const withReceipts = foregroundBusy || pollTicks % RECEIPTS_EVERY === 0;
    if (foregroundBusy && !(await foregroundRunExists(getRun()))) return schedulePoll();
    await refreshJob({ expectMissing: foregroundBusy });
    if (withReceipts && onFirstPage()) await refreshReceipts({ expectMissing: foregroundBusy }).catch(() => null);
    schedulePoll();
  }, active ? POLL_MS : WAITING_POLL_MS);
}

function processed(job) {
  if (!job) return 0;
  const counts = job.counts || {};
  const done = COUNT_ORDER.filter((k) => k !== "pending").reduce((sum, k) => sum + (counts[k] || 0), 0);
  return Math.max(done, Math.min(job.nextIndex || 0, job.totalLeads || 0));
}

function renderRun() {
  const run = lastRun;
  const job = lastJob;
  if (run) $("#run-name").textContent = run.name && run.name !== run.id ? run.name : "";
  clear($("#run-status"), badge(job ? job.status : run ? run.status : "unknown"));
  renderJob(job, run);
}

function renderJob(job, run = null) {
  const total = job ? job.totalLeads : run ? run.totalLeads : 0;
  const done = job ? processed(job) : 0;
  const progress = $("#run-progress");
  progress.max = Math.max(total, 1);
  progress.value = Math.min(done, total);
  $("#run-progress-label").textContent = `${done} / ${total} processed`;
  const counts = (job && job.counts) || (run && run.counts) || {};
  clear(
    $("#run-counts"),
    COUNT_ORDER.map((key) => el("div", { class: `count count-${key}${counts[key] ? " nonzero" : ""}` }, el("dt", {}, key), el("dd", { id: `count-${key}` }, String(counts[key] || 0)))),
  );
  $("#run-stalled").hidden = !(job && job.stalled);
  renderWaiting(job);
  const legal = legalActions(job);
  for (const button of document.querySelectorAll("#run-view [data-action]")) {
    if (button.getAttribute("aria-busy") !== "true") button.disabled = !legal.has(button.dataset.action);
  }
  $("#run-updated").textContent = job && job.updatedAt ? `updated ${formatTime(job.updatedAt)}` : "";
  const diagnostics = (job && job.diagnostics) || [];
  $("#run-diagnostics-count").textContent = diagnostics.length ? `(${diagnostics.length})` : "(none)";
  clear(
    $("#run-diagnostics"),
    diagnostics
      .slice()
      .reverse()
      .map((d) =>
        el(
          "li",
          {},
          el("span", { class: "mono small" }, d.code || "note"),
          " ",
          d.leadIndex !== null && d.leadIndex !== undefined ? el("span", { class: "muted small" }, `lead ${d.leadIndex + 1} `) : null,
          d.message || "",
          el("span", { class: "muted small" }, ` · ${formatTime(d.at)}`),
        ),
      ),
  );
}

async function control(action, button) {
  const id = getRun();
  if (!id) return;
  await busy(button, async () => {
    const body = await api("POST", jobsPath(id), { body: { action } });
    if (body && body.job) lastJob = body.job;
    renderRun();
  }, $("#run-error"));
  renderRun(); // busy() restored the old disabled state; the job decides it
  await refreshRun();
}
