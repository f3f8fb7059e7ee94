// Suppressions screen: the do-not-contact list. Add an address or a domain, remove one,
// search by prefix, import a CSV (one column of addresses or domains).

import { api } from "./api.js";
import { $, badge, busy, clear, el, formatTime, say, showError } from "./ui.js";

let items = [];
let nextToken = null;
let query = "";

export function initSuppressions() {
  $("#suppress-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#suppress-add"), add, $("#suppress-error"));
  });
  $("#suppress-search").addEventListener("input", () => {
    clearTimeout(initSuppressions.timer);
    initSuppressions.timer = setTimeout(() => loadSuppressions().catch((err) => showError($("#suppress-list-error"), err)), 250);
  });
  $("#suppress-more").addEventListener("click", (event) => busy(event.currentTarget, () => loadSuppressions(nextToken), $("#suppress-list-error")));
  $("#suppress-import-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#suppress-import"), importCsv, $("#suppress-import-error"));
  });
}

export async function loadSuppressions(pageToken = null) {
  query = $("#suppress-search").value.trim();
  const body = await api("GET", "/api/suppressions", { query: { pageSize: 50, pageToken: pageToken || undefined, q: query || undefined } });
  if (query !== $("#suppress-search").value.trim()) return; // typed on meanwhile
  items = pageToken ? items.concat(body.suppressions || []) : body.suppressions || [];
  nextToken = body.nextPageToken || null;
  showError($("#suppress-list-error"), null);
  render();
}

function render() {
  clear($("#suppress-body"), items.map(row));
  $("#suppress-empty").hidden = items.length > 0;
  $("#suppress-empty").textContent = query ? `Nothing on the list starts with “${query}”.` : "The list is empty.";
  $("#suppress-more").hidden = !nextToken;
}

function row(item) {
  return el(
    "tr",
    { dataset: { id: item.id, value: item.value } },
    el("td", { class: "strong" }, item.value),
    el("td", {}, badge(item.kind)),
    el("td", { class: "small" }, item.reason || el("span", { class: "muted" }, "—")),
    el("td", { class: "muted small" }, `${item.source} · ${formatTime(item.createdAt)}`),
    el("td", {}, el("button", {
      type: "button", class: "small danger", "aria-label": `Remove ${item.value}`,
      onclick: (e) => busy(e.currentTarget, () => remove(item), $("#suppress-list-error")),
    }, "Remove")),
  );
}

async function add() {
  const target = $("#suppress-value").value.trim();
  if (!target) throw new Error("Type an email address or a domain.");
  const reason = $("#suppress-reason").value.trim();
  const body = target.replace(/^@/, "").includes("@") ? { email: target, reason } : { domain: target, reason };
  const added = await api("POST", "/api/suppressions", { body });
  $("#suppress-value").value = "";
  say($("#suppress-status"), `${added.value} is suppressed.`);
  await loadSuppressions();
}

async function remove(item) {
  await api("DELETE", `/api/suppressions/${encodeURIComponent(item.id)}`);
  items = items.filter((i) => i.id !== item.id);
  render();
  say($("#suppress-status"), `${item.value} was removed from the list.`);
}

async function importCsv() {
  const file = $("#suppress-file").files[0];
  const csv = file ? await file.text() : $("#suppress-csv").value;
  if (!csv.trim()) throw new Error("Choose a CSV file or paste one.");
  const result = await api("POST", "/api/suppressions:import", { body: { csv, reason: $("#suppress-import-reason").value.trim() } });
  const lines = (result.rejected || []).map((r) => el("li", {}, `line ${r.line}: ${r.value} (${r.message})`));
  clear(
    $("#suppress-import-result"),
    el("strong", {}, `Added ${result.added}, already listed ${result.already}, rejected ${(result.rejected || []).length}.`),
    lines.length ? el("ul", { id: "suppress-rejected" }, lines) : null,
  );
  $("#suppress-import-result").hidden = false;
  $("#suppress-file").value = "";
  await loadSuppressions();
}
