// What the screens share: the run being looked at (kept in the URL as ?run=ID so a
// reload brings it back) and the template list (the start form's picker reads it).

const listeners = { run: new Set(), templates: new Set() };
let currentRun = null;
let templates = [];

function emit(kind, value) {
  for (const fn of listeners[kind]) fn(value);
}

export function on(kind, fn) {
  listeners[kind].add(fn);
  return () => listeners[kind].delete(fn);
}

export function runFromUrl() {
  const id = new URLSearchParams(window.location.search).get("run");
  return id && id.trim() ? id.trim() : null;
}

export function getRun() {
  return currentRun;
}

/** setRun(id): remember it, put it in the URL (pushState: Back returns to the previous run). */
export function setRun(id, { push = true } = {}) {
  const changed = id !== currentRun;
  currentRun = id;
  const url = new URL(window.location.href);
  if (id) url.searchParams.set("run", id);
  else url.searchParams.delete("run");
  if (url.href !== window.location.href) {
    if (push) window.history.pushState({ run: id }, "", url);
    else window.history.replaceState({ run: id }, "", url);
  }
  if (changed) emit("run", id);
}

export function getTemplates() {
  return templates;
}

export function setTemplates(list) {
  templates = list;
  emit("templates", list);
}
