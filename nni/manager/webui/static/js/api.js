// JSON requests to the manager's REST API, and whether the manager answers at all.

const BASE = "/api/v1/nni";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;   // 0: no answer (the manager is gone or unreachable)
  }
}

let connected = true;
let answeredAt = Date.now();
const listeners = [];

/** When the manager last answered (epoch ms). */
export function lastAnswer() {
  return answeredAt;
}

/** Call fn(connected) whenever the manager stops or starts answering. */
export function onConnectionChange(fn) {
  listeners.push(fn);
}

function setConnected(value) {
  if (value === connected) return;
  connected = value;
  for (const fn of listeners) fn(value);
}

export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      cache: "no-store",
      headers: body === undefined ? {} : {"Content-Type": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    setConnected(false);
    throw new ApiError(0, "the experiment manager is not reachable");
  }
  if (response.status === 503) {   // answered while shutting down: gone in a moment
    setConnected(false);
    throw new ApiError(503, "the experiment manager is shutting down");
  }
  answeredAt = Date.now();
  setConnected(true);
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) {
    const message = (data && data.error) || (typeof data === "string" && data) || response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

export const get = (path) => request("GET", path);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Ask for confirmation, kill a trial, and say how it went; the caller refreshes its page. */
export async function killTrial(ctx, id) {
  if (!window.confirm(`Kill trial ${id}? It will be recorded USER_CANCELED.`)) return;
  try {
    await del(`/trial-jobs/${encodeURIComponent(id)}`);
    ctx.toast(`Trial ${id} killed.`);
  } catch (error) {
    ctx.toast(`Could not kill ${id}: ${error.message}`, true);
  }
}
