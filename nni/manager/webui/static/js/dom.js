// Small DOM and formatting helpers shared by the pages.

/** Create an element: h("a", {href: "#", class: "x", onclick: fn}, "text", child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const STATES = ["WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED", "SYS_CANCELED"];
export const ACTIVE = new Set(["WAITING", "RUNNING"]);
export const ENDED_EXPERIMENT = new Set(["DONE", "STOPPED", "ERROR", "VIEWED"]);

export function statusChip(status, title) {
  return h("span", {class: `status status-${status}`, title}, status);
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e7)) return value.toExponential(4);
  return String(Number(value.toPrecision(6)));
}

export function formatValue(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A metric for display: a number, or an object's numeric keys as "key: value, ...". */
export function formatMetric(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return Object.entries(value).map(([k, v]) => `${k}: ${formatValue(v)}`).join(", ");
  }
  return formatValue(value);
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  let s = Math.max(0, Math.round(seconds));
  const days = Math.floor(s / 86400); s -= days * 86400;
  const hours = Math.floor(s / 3600); s -= hours * 3600;
  const minutes = Math.floor(s / 60); s -= minutes * 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)}s`;
  if (days) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours) return `${hours}h ${pad(minutes)}m ${pad(s)}s`;
  if (minutes) return `${minutes}m ${pad(s)}s`;
  return `${s}s`;
}

export function formatTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A trial's duration in seconds from its start/end times (epoch ms); running trials count to now. */
export function trialSeconds(startMs, endMs) {
  if (!startMs) return null;
  return ((endMs || Date.now()) - startMs) / 1000;
}

/** The number a tuner optimizes from a metric: a number, or the "default" key of an object. */
export function scalar(value) {
  if (typeof value === "number") return value;
  if (value && typeof value === "object" && typeof value.default === "number") return value.default;
  return null;
}

/** Decode a metric's "data" field of the NNI REST API (a JSON string holding a JSON string). */
export function decodeMetric(data) {
  try {
    let value = JSON.parse(data);
    if (typeof value === "string") value = JSON.parse(value);
    return value;
  } catch {
    return data;
  }
}

export function progressBar(fraction, id) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h("div", {class: "bar", id}, h("div", {style: {width: `${pct.toFixed(1)}%`}}));
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
