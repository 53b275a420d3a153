// plotly.js, loaded on first use from the `plotly` Python package, only by pages that draw.
// Its address is versioned (index.html's <meta name="plotly-url">), so the browser keeps it.

let loading = null;

function plotlyUrl() {
  const meta = document.querySelector('meta[name="plotly-url"]');
  const url = meta && meta.content;
  return url && !url.includes("{{") ? url : "/webui/plotly.min.js";
}

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading && window.__plotlyLoad) {   // started by index.html for a page that draws
    loading = window.__plotlyLoad;
    window.__plotlyLoad = null;
    loading.catch(() => { loading = null; });
  }
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = plotlyUrl();
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error("could not load plotly.js")); };
      document.head.appendChild(script);
    });
  }
  return loading;
}

export const STATUS_COLORS = {
  WAITING: "#9aa5b1",
  RUNNING: "#1f77b4",
  SUCCEEDED: "#2ca02c",
  FAILED: "#d62728",
  USER_CANCELED: "#ff7f0e",
  EARLY_STOPPED: "#9467bd",
  SYS_CANCELED: "#8c564b",
};

const BASE_LAYOUT = {
  margin: {l: 60, r: 20, t: 20, b: 45},
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "rgba(0,0,0,0)",
  font: {family: "system-ui, sans-serif", size: 12, color: "#1d2733"},
  hovermode: "closest",
  legend: {orientation: "h", y: -0.2},
};

/** A phone-sized screen: charts get smaller margins and fewer labels. */
export const narrow = () => window.matchMedia("(max-width: 700px)").matches;

/** Draw or update a figure in `el` (Plotly.react keeps zoom state and avoids flicker). */
export async function plot(el, data, layout = {}, config = {}) {
  const Plotly = await loadPlotly();
  if (!el.isConnected) return null;
  clearMessage(el);
  const full = {...BASE_LAYOUT, ...(narrow() ? {margin: {l: 45, r: 10, t: 20, b: 40}} : {}), ...layout};
  if (narrow() && full.legend) full.legend = {...full.legend, y: -0.4};   // below the axis title, not on it
  await Plotly.react(el, data, full,
    {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"],
     ...(narrow() ? {displayModeBar: false} : {}), ...config});
  return el;
}

/** Instead of blank axes: a message in the chart's box (the chart, if any, is removed). */
export function emptyChart(el, message) {
  if (window.Plotly && el.classList.contains("js-plotly-plot")) window.Plotly.purge(el);
  let box = el.querySelector(":scope > .chart-empty");
  if (!box) {
    el.replaceChildren();
    box = document.createElement("div");
    box.className = "chart-empty";
    el.append(box);
  }
  box.textContent = message;
  el.classList.add("is-empty");
  delete el.dataset.linked;   // purge dropped the click handler
}

function clearMessage(el) {
  if (!el.classList.contains("is-empty")) return;
  el.classList.remove("is-empty");
  el.replaceChildren();
}

/** An x axis of trial numbers: whole numbers only. */
export function trialAxis(title, count) {
  return {title: {text: title}, tickformat: "d", ...(count <= 12 ? {dtick: 1} : {})};
}

/** Run `fn` when the browser is idle (or soon): keeps a long redraw from blocking input. */
export function idle() {
  return new Promise((resolve) => {
    if (window.requestIdleCallback) window.requestIdleCallback(() => resolve(), {timeout: 200});
    else setTimeout(resolve, 0);
  });
}

/** Send clicks on points that carry a trial id as customdata to that trial's page. */
export function linkPoints(el) {
  if (el.dataset.linked) return;
  el.dataset.linked = "1";
  el.on("plotly_click", (event) => {
    const point = event.points && event.points[0];
    const id = point && (Array.isArray(point.customdata) ? point.customdata[0] : point.customdata);
    if (typeof id === "string") location.hash = `#/trial/${encodeURIComponent(id)}`;
  });
}

let webgl = null;
export function hasWebGL() {
  if (webgl === null) {
    try {
      webgl = Boolean(document.createElement("canvas").getContext("webgl"));
    } catch {
      webgl = false;
    }
  }
  return webgl;
}

/** SVG scatter for small sets (each point a DOM node), WebGL beyond that when available. */
export function scatterType(count) {
  return count > 5000 && hasWebGL() ? "scattergl" : "scatter";
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}
