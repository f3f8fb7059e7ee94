// Error reporting to POST /api/telemetry/error.
//
// Manual: the "Report an issue" form (source: manual) with the current run and the
// last API error attached. Automatic: uncaught errors and unhandled rejections
// (source: auto), each distinct error once per page load, at most MAX_AUTO per load,
// never about the telemetry call itself, and the sending code catches its own
// failures, so a broken telemetry endpoint cannot make the page report its own
// reporting in a loop.

import { api, ApiError, describeError, lastApiError } from "./api.js";
import { $, busy, clear, el, showError } from "./ui.js";
import { getRun } from "./state.js";

const ENDPOINT = "/api/telemetry/error";
const MAX_AUTO = 5;
const RELEASE = "ops-page-1";
const seen = new Set();
let autoSent = 0;
let queue = Promise.resolve();

function baseReport() {
  return {
    url: window.location.href,
    runId: getRun() || undefined,
    userAgent: navigator.userAgent,
    release: RELEASE,
  };
}

function attachedContext() {
  const error = lastApiError();
  return {
    screen: document.querySelector('[role="tab"][aria-selected="true"]')?.dataset.tab || null,
    viewport: `${window.innerWidth}x${window.innerHeight}`,
    lastApiError: error ? error.toReport() : null,
  };
}

export function initReport() {
  $("#report-form").addEventListener("submit", onSubmit);
  window.addEventListener("error", (event) => {
    autoReport(event.error, event.message, event.filename ? `${event.filename}:${event.lineno}:${event.colno}` : "");
  });
  window.addEventListener("unhandledrejection", (event) => {
    autoReport(event.reason, undefined, "unhandledrejection");
  });
}

/** Refreshes the "Attached" list each time the screen is shown. */
export function showAttached() {
  const error = lastApiError();
  const run = getRun();
  clear(
    $("#report-attached"),
    el("dt", {}, "Run"),
    el("dd", { id: "report-attached-run" }, run ? el("code", {}, run) : "none"),
    el("dt", {}, "Last API error"),
    el("dd", { id: "report-attached-error" }, error ? `${error.status || "network"} ${error.code}: ${error.message} (${error.method} ${error.path})` : "none"),
    el("dt", {}, "Page"),
    el("dd", { class: "ellipsis" }, window.location.pathname + window.location.search),
  );
}

async function onSubmit(event) {
  event.preventDefault();
  const description = $("#report-description").value.trim();
  const errorBox = $("#report-error");
  const result = $("#report-result");
  if (!description) {
    showError(errorBox, new Error("Describe the problem first: what you did, what you expected, what happened."));
    $("#report-description").focus();
    return;
  }
  result.hidden = true;
  await busy($("#report-send"), async () => {
    const answer = await api("POST", ENDPOINT, {
      quiet: true,
      body: {
        ...baseReport(),
        source: "manual",
        severity: $("#report-severity").value,
        description,
        message: description.split("\n")[0].slice(0, 200),
        context: attachedContext(),
      },
    });
    clear(
      result,
      el("strong", {}, "Thank you. "),
      "Report ID ",
      el("code", { id: "report-id" }, answer.reportId),
      el("div", { class: "muted small" }, "Quote it when you follow up. Group ", el("code", { id: "report-fingerprint" }, answer.fingerprint)),
    );
    result.hidden = false;
    $("#report-description").value = "";
    showAttached();
  }, errorBox);
}

function isTelemetryFailure(error) {
  return error instanceof ApiError && error.path === ENDPOINT;
}

function autoReport(error, fallbackMessage, where) {
  if (isTelemetryFailure(error)) return;
  const message = (error instanceof Error ? `${error.name}: ${describeError(error)}` : fallbackMessage || describeError(error)).slice(0, 1000);
  const stack = error instanceof Error && error.stack ? error.stack : where || undefined;
  const key = `${message}\n${(stack || "").split("\n").slice(0, 2).join("\n")}`;
  if (seen.has(key) || autoSent >= MAX_AUTO) return;
  seen.add(key);
  autoSent += 1;
  // One report at a time, in order; the cap above bounds the queue.
  queue = queue.then(() => sendAuto(error, message, stack));
}

async function sendAuto(error, message, stack) {
  try {
    const context = attachedContext();
    if (error instanceof ApiError) context.apiError = error.toReport();
    const answer = await api("POST", ENDPOINT, {
      quiet: true,
      body: { ...baseReport(), source: "auto", severity: "error", message, stack, context },
    });
    const box = $("#page-error");
    if (box) {
      clear(
        box,
        el("strong", {}, "Something went wrong on this page. "),
        `${message.split("\n")[0]} — it was reported automatically (report `,
        el("code", { class: "auto-report-id" }, answer.reportId),
        ").",
      );
      box.hidden = false;
    }
  } catch (err) {
    // Reporting must never produce another report; the console is the last resort.
    console.warn("could not report an error automatically:", describeError(err));
  }
}
