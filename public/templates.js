// Templates screen: list, create, edit (the version travels with the edit, so a
// concurrent change is a readable 409, not a lost edit), draftFirst switch, delete.

import { api, ApiError } from "./api.js";
import { $, busy, clear, el, say, showError } from "./ui.js";
import { setTemplates } from "./state.js";

const PAGE_SIZE = 50;
let loaded = [];
let nextToken = null;
let editing = null; // the template being edited ({id, version, ...}) or null for "new"

const path = (id) => `/api/templates/${encodeURIComponent(id)}`;

export function initTemplates() {
  $("#template-form").addEventListener("submit", onSave);
  $("#template-new").addEventListener("click", () => startEdit(null, true));
  $("#template-cancel").addEventListener("click", () => startEdit(null, true));
  $("#templates-refresh").addEventListener("click", (event) => busy(event.currentTarget, () => loadTemplates(), $("#templates-error")));
  $("#templates-more").addEventListener("click", (event) => busy(event.currentTarget, () => loadTemplates({ more: true }), $("#templates-error")));
  startEdit(null);
}

export async function loadTemplates({ more = false } = {}) {
  const errorBox = $("#templates-error");
  try {
    const page = await api("GET", "/api/templates", { query: { pageSize: PAGE_SIZE, pageToken: more ? nextToken : undefined } });
    loaded = more ? loaded.concat(page.templates || []) : page.templates || [];
    nextToken = page.nextPageToken || null;
    showError(errorBox, null);
  } catch (err) {
    showError(errorBox, err, "Could not load templates");
  }
  render();
  setTemplates(loaded);
}

function replaceLoaded(template) {
  const index = loaded.findIndex((t) => t.id === template.id);
  if (index >= 0) loaded[index] = template;
  else loaded.unshift(template);
  render();
  setTemplates(loaded);
}

function render() {
  const body = $("#templates-body");
  clear(body, loaded.map(row));
  $("#templates-empty").hidden = loaded.length > 0;
  $("#templates-more").hidden = !nextToken;
}

function row(template) {
  const toggle = el("input", {
    type: "checkbox",
    role: "switch",
    checked: template.draftFirst,
    "aria-label": `Draft first for ${template.name}`,
    onchange: (event) => toggleDraftFirst(template, event.currentTarget),
  });
  let armed = null;
  const del = el("button", { type: "button", class: "danger small", "aria-label": `Delete ${template.name}` }, "Delete");
  del.addEventListener("click", () => {
    // Two presses instead of a blocking confirm(): the second within 5 s deletes.
    if (!armed) {
      del.textContent = "Really delete?";
      armed = setTimeout(() => {
        armed = null;
        del.textContent = "Delete";
      }, 5000);
      return;
    }
    clearTimeout(armed);
    busy(del, () => remove(template), $("#templates-error"));
  });
  return el(
    "tr",
    { dataset: { templateId: template.id } },
    el("td", {}, el("div", { class: "strong" }, template.name), el("div", { class: "muted small ellipsis" }, template.subject)),
    el("td", {}, el("label", { class: "inline switch" }, toggle, el("span", { class: "small" }, template.draftFirst ? "drafts" : "sends"))),
    el("td", { class: "mono" }, `v${template.version}`),
    el(
      "td",
      { class: "actions" },
      el("button", { type: "button", class: "small", "aria-label": `Edit ${template.name}`, onclick: () => startEdit(template, true) }, "Edit"),
      del,
    ),
  );
}

async function toggleDraftFirst(template, checkbox) {
  const wanted = checkbox.checked;
  checkbox.disabled = true;
  const errorBox = $("#templates-error");
  try {
    const updated = await api("PATCH", path(template.id), { body: { draftFirst: wanted, version: template.version } });
    showError(errorBox, null);
    replaceLoaded(updated);
    if (editing && editing.id === updated.id) startEdit(updated);
  } catch (err) {
    checkbox.checked = !wanted;
    checkbox.disabled = false;
    showError(errorBox, err, `Could not change "${template.name}"`);
    if (err instanceof ApiError && err.status === 409) await loadTemplates();
  }
}

async function remove(template) {
  await api("DELETE", path(template.id), { query: { version: template.version } });
  loaded = loaded.filter((t) => t.id !== template.id);
  render();
  setTemplates(loaded);
  if (editing && editing.id === template.id) startEdit(null);
  say($("#template-status"), `Deleted "${template.name}".`);
}

function startEdit(template, focus = false) {
  editing = template;
  const form = $("#template-form");
  form.reset();
  showError($("#template-error"), null);
  say($("#template-status"), "");
  $("#editor-title").textContent = template ? `Edit "${template.name}"` : "New template";
  $("#template-save").textContent = template ? "Save changes" : "Create template";
  $("#template-cancel").hidden = !template;
  $("#template-version").textContent = template ? `Editing version ${template.version}. Saving checks nobody changed it since.` : "";
  if (template) {
    $("#template-name").value = template.name;
    $("#template-subject").value = template.subject;
    $("#template-body").value = template.body;
    $("#template-draft").checked = template.draftFirst;
  }
  if (focus) $("#template-name").focus();
}

async function onSave(event) {
  event.preventDefault();
  const errorBox = $("#template-error");
  const fields = {
    name: $("#template-name").value.trim(),
    subject: $("#template-subject").value,
    body: $("#template-body").value,
    draftFirst: $("#template-draft").checked,
  };
  await busy($("#template-save"), async () => {
    try {
      const saved = editing
        ? await api("PUT", path(editing.id), { body: { ...fields, channel: "email", version: editing.version } })
        : await api("POST", "/api/templates", { body: { ...fields, channel: "email" } });
      replaceLoaded(saved);
      startEdit(saved);
      say($("#template-status"), `Saved "${saved.name}" (version ${saved.version}).`);
    } catch (err) {
      showError(errorBox, err, editing ? "Not saved" : "Not created");
      if (err instanceof ApiError && err.status === 409 && editing) offerReload(errorBox, editing.id);
    }
  });
}

function offerReload(box, id) {
  const button = el("button", { type: "button", class: "small" }, "Load the latest version (discards your edit)");
  button.addEventListener("click", () =>
    busy(button, async () => {
      const latest = await api("GET", path(id));
      replaceLoaded(latest);
      startEdit(latest, true);
    }, box),
  );
  box.append(el("div", { class: "row" }, button));
}
