// The Operations page: wires the screens together. The run being viewed is in the
// URL (?run=ID), the screen in the hash (#templates), so a reload or a shared link
// shows the same thing.

import { api } from "./api.js";
import { initAuth } from "./auth.js";
import { initReport, showAttached } from "./report.js";
import { initReview, showReview } from "./review.js";
import { initRuns, loadRecent } from "./runs.js";
import { initSchedule } from "./schedule.js";
import { initSenders, loadSenders } from "./senders.js";
import { runFromUrl, setRun } from "./state.js";
import { initSuppressions, loadSuppressions } from "./suppressions.js";
import { initTemplates, loadTemplates } from "./templates.js";
import { $, showError } from "./ui.js";

const TABS = ["runs", "templates", "review", "suppressions", "schedule", "senders", "report"];
let started = false; // screens fetch fresh data when shown, once sign-in is done

function selectTab(name, { focus = false, updateHash = true } = {}) {
  const tab = TABS.includes(name) ? name : "runs";
  for (const button of document.querySelectorAll('[role="tab"]')) {
    const selected = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected && focus) button.focus();
    $(`#${button.getAttribute("aria-controls")}`).hidden = !selected;
  }
  if (tab === "report") showAttached();
  if (started && tab === "templates") loadTemplates();
  if (started && tab === "runs") loadRecent();
  if (started && tab === "senders") loadSenders();
  if (started && tab === "review") showReview();
  if (started && tab === "suppressions") loadSuppressions().catch((err) => showError($("#suppress-list-error"), err));
  if (updateHash) {
    const url = new URL(window.location.href);
    url.hash = tab === "runs" ? "" : tab;
    window.history.replaceState(window.history.state, "", url);
  }
  document.body.dataset.screen = tab;
}

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const button of tabs) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
    // Arrow keys move between tabs (WAI-ARIA tabs pattern); Tab moves into the panel.
    button.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(button);
      const step = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      selectTab(tabs[(index + step + tabs.length) % tabs.length].dataset.tab, { focus: true });
    });
  }
  selectTab(window.location.hash.slice(1), { updateHash: false });
  window.addEventListener("hashchange", () => selectTab(window.location.hash.slice(1), { updateHash: false }));
}

async function showHealth() {
  try {
    const health = await api("GET", "/api/health", { quiet: true });
    const version = health.version || health.buildVersion || "";
    $("#foot-health").textContent = `API ${health.status || "ok"}${version ? ` · ${version}` : ""}`;
  } catch (err) {
    $("#foot-health").textContent = `API unreachable: ${err.message}`;
  }
}

async function main() {
  initReport(); // first, so errors during start-up are reported too
  initTabs();
  initTemplates();
  initRuns();
  initSchedule();
  initSenders();
  initReview();
  initSuppressions();
  await initAuth();
  showHealth();
  window.addEventListener("popstate", () => setRun(runFromUrl(), { push: false }));
  const fromUrl = runFromUrl();
  await loadTemplates();
  await loadSenders();
  if (fromUrl) setRun(fromUrl, { push: false });
  await loadRecent();
  started = true;
  if (["review", "suppressions"].includes(document.body.dataset.screen)) selectTab(document.body.dataset.screen, { updateHash: false });
  document.body.dataset.ready = "true";
}

main();
