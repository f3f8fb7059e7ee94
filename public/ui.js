// Small DOM helpers shared by the screens. Text always goes in as text (never innerHTML),
// so a lead's name or an error message can never inject markup.

import { describeError } from "./api.js";

/** el("button", {class: "x", onclick: fn, disabled: true}, "Label", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Shows an error (any thrown value) in a box with role=alert; null hides it. */
export function showError(box, err, prefix = "") {
  if (!box) return;
  if (err === null || err === undefined) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const lines = describeError(err).split("\n");
  const head = prefix ? `${prefix}: ${lines[0]}` : lines[0];
  box.replaceChildren(el("strong", {}, head));
  if (lines.length > 1) box.append(el("ul", {}, lines.slice(1).map((line) => el("li", {}, line))));
  if (err && err.requestId) box.append(el("div", { class: "muted small" }, `Request ID ${err.requestId}`));
  box.hidden = false;
}

/** A short polite message in a status region (aria-live). */
export function say(box, message) {
  if (!box) return;
  box.textContent = message;
  box.hidden = !message;
}

/** Runs fn with the button disabled and busy; errors go to errorBox. */
export async function busy(button, fn, errorBox) {
  const wasDisabled = button ? button.disabled : false;
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    if (errorBox) showError(errorBox, null);
    return await fn();
  } catch (err) {
    if (errorBox) showError(errorBox, err);
    else throw err;
    return undefined;
  } finally {
    if (button) {
      button.disabled = wasDisabled;
      button.removeAttribute("aria-busy");
    }
  }
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : timeFormat.format(date);
}

export function badge(status) {
  const value = status || "unknown";
  return el("span", { class: `badge status-${String(value).replace(/[^a-z_]/gi, "")}` }, value.replace(/_/g, " "));
}
