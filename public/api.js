// The one way the page talks to the API: JSON in and out, the ID token when signed in,
// and every failure turned into an ApiError whose message is words a person can read.

let tokenProvider = async () => null;
let lastError = null;
const errorListeners = new Set();

export class ApiError extends Error {
  constructor({ status, code, message, details = [], requestId = null, method, path, retryAfter = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
    this.requestId = requestId;
    this.method = method;
    this.path = path;
    this.retryAfter = retryAfter;
  }

  /** One line per problem: the message, then each field's complaint. */
  get readable() {
    return describeError(this);
  }

  /** What an error report carries about this failure (no bodies, no tokens). */
  toReport() {
    return {
      status: this.status,
      code: this.code,
      message: this.message,
      method: this.method,
      path: this.path,
      requestId: this.requestId,
      at: this.at,
    };
  }
}

/** setTokenProvider(async () => idToken | null): called before every request. */
export function setTokenProvider(fn) {
  tokenProvider = fn;
}

/** The last API error seen, for the "Report an issue" form. */
export function lastApiError() {
  return lastError;
}

/** onApiError(fn): fn(error) after any failed call (the auth module listens for 401s). */
export function onApiError(fn) {
  errorListeners.add(fn);
  return () => errorListeners.delete(fn);
}

function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** Any thrown value, as a sentence. Never "[object Object]". */
export function describeError(err) {
  if (err instanceof ApiError) {
    const lines = [err.message];
    for (const detail of err.details) {
      if (detail && typeof detail === "object") {
        const field = detail.field && detail.field !== "(body)" ? `${detail.field}: ` : "";
        let said = detail.message;
        if (said === undefined || said === null) {
          // e.g. a version conflict's {field, expected, current}: name each value.
          said = Object.entries(detail)
            .filter(([key]) => key !== "field" && key !== "type")
            .map(([key, value]) => `${key} ${text(value)}`)
            .join(", ");
        }
        if (said) lines.push(`${field}${text(said)}`);
      } else if (detail !== undefined) {
        lines.push(text(detail));
      }
    }
    if (err.retryAfter) lines.push(`Try again in ${err.retryAfter} s.`);
    return lines.filter(Boolean).join("\n");
  }
  if (err instanceof Error) return err.message || err.name;
  return text(err) || "Unknown error";
}

function statusWords(status) {
  return (
    {
      400: "The request was not valid",
      401: "Sign-in is required",
      403: "You are not allowed to do this",
      404: "Not found",
      405: "Method not allowed",
      409: "Conflict",
      413: "Too large",
      415: "Unsupported media type",
      429: "Too many requests",
      500: "The server failed",
      501: "Not implemented yet",
      502: "Bad gateway",
      503: "The service is unavailable",
      504: "The server took too long",
    }[status] || `HTTP ${status}`
  );
}

async function parseBody(response) {
  const raw = await response.text();
  if (!raw) return { json: null, raw };
  try {
    return { json: JSON.parse(raw), raw };
  } catch {
    return { json: null, raw };
  }
}

function errorFrom(response, body, method, path) {
  const envelope = body.json && typeof body.json === "object" ? body.json.error : null;
  let message;
  let code;
  let details = [];
  if (envelope && typeof envelope === "object") {
    message = text(envelope.message) || statusWords(response.status);
    code = text(envelope.code) || `http_${response.status}`;
    details = envelope.details || [];
  } else if (typeof envelope === "string") {
    message = envelope;
    code = `http_${response.status}`;
  } else {
    // Not our envelope (a proxy's HTML page, an empty body): say what we know.
    const snippet = body.raw.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200);
    message = snippet ? `${statusWords(response.status)} (HTTP ${response.status}): ${snippet}` : `${statusWords(response.status)} (HTTP ${response.status})`;
    code = `http_${response.status}`;
  }
  return new ApiError({
    status: response.status,
    code,
    message,
    details,
    requestId: response.headers.get("X-Request-Id"),
    retryAfter: response.headers.get("Retry-After"),
    method,
    path,
  });
}

function remember(err, quiet) {
  err.at = new Date().toISOString();
  if (!quiet) lastError = err;
  for (const fn of errorListeners) {
    try {
      fn(err);
    } catch {
      /* a listener's bug must not hide the API error */
    }
  }
}

/**
 * api("GET", "/api/templates", {query: {pageSize: 10}})
 * api("POST", "/api/templates", {body: {...}, headers: {"If-Match": '"3"'}})
 * Resolves to the parsed JSON body; rejects with ApiError.
 * `quiet: true` keeps the failure out of lastApiError (the telemetry call uses it).
 */
export async function api(method, path, { body, query, headers = {}, signal, quiet = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let token = null;
  try {
    token = await tokenProvider();
  } catch (err) {
    const failure = new ApiError({ status: 401, code: "unauthenticated", message: `Could not get a sign-in token: ${describeError(err)}`, method, path });
    remember(failure, quiet);
    throw failure;
  }
  if (token) sent.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    const failure = new ApiError({ status: 0, code: "network", message: `Could not reach the server (${describeError(err)}). Check your connection and try again.`, method, path });
    remember(failure, quiet);
    throw failure;
  }
  const parsed = await parseBody(response);
  if (!response.ok) {
    const failure = errorFrom(response, parsed, method, path);
    remember(failure, quiet);
    throw failure;
  }
  if (parsed.json === null && parsed.raw) {
    const failure = new ApiError({ status: response.status, code: "bad_response", message: `The server answered HTTP ${response.status} with something that is not JSON.`, method, path });
    remember(failure, quiet);
    throw failure;
  }
  return parsed.json;
}
