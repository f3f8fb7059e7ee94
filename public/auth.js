// Sign-in when the API checks Firebase ID tokens.
//
// The Firebase web config comes from /__/firebase/init.json (Hosting serves it on every
// site; the local router serves it too). Sign-in is on unless that document says
// `authMode: "off"`, which only the local router writes, and only for a stack whose
// functions run AUTH_MODE=off. `authEmulatorHost` (local router, make dev AUTH=emulator)
// points the two endpoints below at the Firebase Auth emulator.
//
// The Firebase JS SDK would need a CDN or a build step, and this page has neither,
// so it speaks the two documented REST endpoints the SDK itself uses:
//   identitytoolkit  accounts:signInWithPassword  → idToken (1 h) + refreshToken
//   securetoken      token (grant_type=refresh_token) → a fresh idToken
// The refresh token is kept in sessionStorage, so a reload in the same tab stays
// signed in and closing the tab signs out. Google sign-in (popup/redirect) needs the
// SDK and is not offered; operators use email/password accounts.

import defaults from "./config.js";
import { onApiError, setTokenProvider } from "./api.js";
import { $, busy, clear, el, showError } from "./ui.js";

const STORE_KEY = "missionControl.refresh";
const EARLY_REFRESH_MS = 5 * 60 * 1000;
let session = null; // {idToken, refreshToken, expiresAt, email}
let refreshing = null;
// {auth: "firebase"|"off", apiKey, identityToolkitUrl, secureTokenUrl}; set by loadConfig().
let config = { auth: "firebase", apiKey: "", ...defaults };
let configError = null;

const MESSAGES = {
  EMAIL_NOT_FOUND: "No account has that email.",
  INVALID_PASSWORD: "The password is wrong.",
  INVALID_LOGIN_CREDENTIALS: "The email or password is wrong.",
  USER_DISABLED: "This account is disabled.",
  TOO_MANY_ATTEMPTS_TRY_LATER: "Too many attempts: try again later.",
  TOKEN_EXPIRED: "Your session expired: sign in again.",
  INVALID_REFRESH_TOKEN: "Your session expired: sign in again.",
  API_KEY_INVALID: "The site's Firebase web config has an invalid apiKey.",
};

export function authEnabled() {
  return config.auth === "firebase";
}

class AuthError extends Error {}

/** Reads the web config; when it cannot be read, sign-in stays on and says why (fail closed). */
async function loadConfig() {
  let init;
  try {
    const response = await fetch(defaults.initJsonUrl, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    init = await response.json();
  } catch (err) {
    configError = `Could not load the site's Firebase config from ${defaults.initJsonUrl} (${err.message}): the page cannot sign in.`;
    return;
  }
  const emulator = typeof init.authEmulatorHost === "string" && init.authEmulatorHost;
  config = {
    ...config,
    auth: init.authMode === "off" ? "off" : "firebase",
    apiKey: init.apiKey || "",
    identityToolkitUrl: emulator ? `http://${emulator}/identitytoolkit.googleapis.com/v1` : defaults.identityToolkitUrl,
    secureTokenUrl: emulator ? `http://${emulator}/securetoken.googleapis.com/v1` : defaults.secureTokenUrl,
  };
}

async function post(url, body, form = false) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": form ? "application/x-www-form-urlencoded" : "application/json" },
      body: form ? new URLSearchParams(body).toString() : JSON.stringify(body),
    });
  } catch (err) {
    throw new AuthError(`Could not reach the sign-in service (${err.message}).`);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(data?.error?.message || `HTTP ${response.status}`).split(" ")[0].split(":")[0];
    throw new AuthError(MESSAGES[code] || `Sign-in failed: ${data?.error?.message || `HTTP ${response.status}`}`);
  }
  return data;
}

function keep(idToken, refreshToken, expiresInSeconds, email) {
  session = { idToken, refreshToken, email, expiresAt: Date.now() + Number(expiresInSeconds || 3600) * 1000 };
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ refreshToken, email }));
  } catch {
    /* storage disabled: the session lasts until reload */
  }
}

async function signIn(email, password) {
  const data = await post(`${config.identityToolkitUrl}/accounts:signInWithPassword?key=${encodeURIComponent(config.apiKey)}`, {
    email,
    password,
    returnSecureToken: true,
  });
  keep(data.idToken, data.refreshToken, data.expiresIn, data.email || email);
}

async function refresh(refreshToken, email) {
  const data = await post(
    `${config.secureTokenUrl}/token?key=${encodeURIComponent(config.apiKey)}`,
    { grant_type: "refresh_token", refresh_token: refreshToken },
    true,
  );
  keep(data.id_token, data.refresh_token, data.expires_in, email);
}

function signOut(message) {
  session = null;
  try {
    sessionStorage.removeItem(STORE_KEY);
  } catch {
    /* nothing kept */
  }
  showSignIn(message);
}

async function currentToken() {
  if (!session) return null;
  if (Date.now() > session.expiresAt - EARLY_REFRESH_MS) {
    refreshing ||= refresh(session.refreshToken, session.email).finally(() => (refreshing = null));
    try {
      await refreshing;
    } catch (err) {
      signOut(err.message);
      throw err;
    }
  }
  return session.idToken;
}

function renderArea() {
  const area = $("#auth-area");
  if (!authEnabled()) {
    clear(area, el("span", { class: "badge" }, "Auth off (local)"));
    return;
  }
  if (!session) {
    clear(area, el("span", { class: "muted" }, "Not signed in"));
    return;
  }
  clear(
    area,
    el("span", { class: "muted" }, "Signed in as "),
    el("strong", { id: "signed-in-as" }, session.email || "operator"),
    el("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out"),
  );
}

let resolveReady;

function showSignIn(message) {
  $("#signin").hidden = false;
  $("#main").hidden = true;
  document.querySelector(".tabs").hidden = true;
  showError($("#signin-error"), message ? new AuthError(message) : null);
  renderArea();
  $("#signin-email").focus();
}

function hideSignIn() {
  $("#signin").hidden = true;
  $("#main").hidden = false;
  document.querySelector(".tabs").hidden = false;
  renderArea();
}

/** Resolves once the page may call the API: at once with auth off, after sign-in otherwise. */
export async function initAuth() {
  await loadConfig();
  if (!authEnabled()) {
    renderArea();
    return;
  }
  if (configError || !config.apiKey) {
    showSignIn(configError || `The Firebase config at ${defaults.initJsonUrl} has no apiKey: the page cannot sign in.`);
    return new Promise(() => {});
  }
  setTokenProvider(currentToken);
  onApiError((err) => {
    if (err.status === 401 && session) signOut("The API did not accept your sign-in: sign in again.");
  });
  const ready = new Promise((resolve) => (resolveReady = resolve));
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.currentTarget.querySelector('button[type="submit"]');
    await busy(button, async () => {
      await signIn($("#signin-email").value.trim(), $("#signin-password").value);
      $("#signin-password").value = "";
      hideSignIn();
      resolveReady();
    }, $("#signin-error"));
  });
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch {
    kept = null;
  }
  if (kept && kept.refreshToken) {
    try {
      await refresh(kept.refreshToken, kept.email);
      hideSignIn();
      return;
    } catch (err) {
      signOut(err.message);
      return ready;
    }
  }
  showSignIn();
  return ready;
}
