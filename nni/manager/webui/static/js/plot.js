// Charts through plotly.js, in two sizes, each loaded on first use:
//
// * the *basic* bundle (scatter, bar, pie: 1.2 MB, shipped in static/vendor/) draws almost
//   every chart; index.html starts fetching it at once on pages that draw;
// * the *full* bundle (4.8 MB, from the `plotly` Python package) only when a chart needs a
//   trace type the basic one lacks (parallel coordinates, WebGL scatter): parsing 4.8 MB of
//   script took most of a page's first second, on every page, before this split.
//
// Both define window.Plotly; the full one is loaded beside the basic one (window.Plotly is
// put back), and each chart remembers which one drew it (a graph div belongs to its instance).
//
// Big scatters are thinned before drawing (see thin() below): SVG stays fast without WebGL,
// and zooming in draws what the zoomed range holds, so every point can still be reached.

const BASIC_TYPES = new Set(["scatter", "bar", "pie"]);
// A markers trace with more points than this is thinned to about this many (SVG scatter draws
// ~3,000 points in a few tens of milliseconds; 80,000 took seconds without WebGL).
const MAX_POINTS = 3000;
// A lines trace: one column of first/min/max/last per this many horizontal pixels' worth.
const LINE_BINS = 1000;

let loadingBasic = null;
let loadingFull = null;
let fullPlotly = null;
let basicPlotly = null;

function metaUrl(name, fallback) {
  const meta = document.querySelector(`meta[name="${name}"]`);
  const url = meta && meta.content;
  return url && !url.includes("{{") ? url : fallback;
}

function injectScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => reject(new Error(`could not load ${url}`));
    document.head.appendChild(script);
  });
}

/** The basic plotly.js bundle (scatter, bar, pie): what nearly every chart needs. */
export function loadPlotly() {
  if (!loadingBasic) {
    // started by index.html for a page that draws, or now
    const started = window.__plotlyLoad || injectScript(metaUrl("plotly-basic-url", "/webui/plotly-basic.min.js"));
    window.__plotlyLoad = null;
    loadingBasic = started.then((Plotly) => {
      basicPlotly = basicPlotly || Plotly;
      return basicPlotly;
    });
    loadingBasic.catch(() => { loadingBasic = null; });
  }
  return loadingBasic;
}

/** The full bundle (every trace type), loaded beside the basic one only when a chart needs it. */
export function loadFullPlotly() {
  if (fullPlotly) return Promise.resolve(fullPlotly);
  if (!loadingFull) {
    // After the basic one (if it is loading), so that window.Plotly can be put back to it.
    loadingFull = loadPlotly().catch(() => null).then(async (basic) => {
      const full = await injectScript(metaUrl("plotly-url", "/webui/plotly.min.js"));
      if (basic) window.Plotly = basic;
      fullPlotly = full;
      return full;
    });
    loadingFull.catch(() => { loadingFull = null; });
  }
  return loadingFull;
}

/** Which bundle draws `data`: the basic one unless a trace type needs the full one. */
function needsFull(data) {
  return data.some((trace) => !BASIC_TYPES.has(trace.type || "scatter"));
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
  const source = data.map(toSvg);
  const Plotly = needsFull(source) ? await loadFullPlotly() : await loadPlotly();
  if (!el.isConnected) return null;
  clearMessage(el);
  if (el.__nniPlotly && el.__nniPlotly !== Plotly) {   // drawn by the other bundle until now
    el.__nniPlotly.purge(el);
    delete el.dataset.linked;
    delete el.__nniZoom;
  }
  el.__nniPlotly = Plotly;
  const full = {...BASE_LAYOUT, ...(narrow() ? {margin: {l: 45, r: 10, t: 20, b: 40}} : {}), ...layout};
  if (narrow() && full.legend) full.legend = {...full.legend, y: -0.4};   // below the axis title, not on it
  const options = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"],
                   ...(narrow() ? {displayModeBar: false} : {}), ...config};
  el.__nniSource = source;
  el.__nniOptions = options;
  const shown = thinAll(source, full, null);
  await Plotly.react(el, shown.data, withThinNote(full, shown), options);
  if (source.some(isBig)) followZoom(el);
  return el;
}

// -- thinning big traces ------------------------------------------------------------------------
// A scatter of many points is drawn as a sample that keeps its shape: the plot area is cut into
// a grid of cells and one point per occupied cell is drawn, plus each column's highest and
// lowest point (the envelope, where the best results are). Zooming in draws the zoomed range the
// same way, so once it holds fewer than MAX_POINTS points all of them are drawn (and clickable).

const ARRAY_KEYS = ["x", "y", "text", "hovertext", "customdata", "ids"];
const MARKER_ARRAY_KEYS = ["color", "size", "symbol", "opacity"];

/** WebGL scatter (full bundle, slow without a GPU) becomes SVG scatter, which thinning keeps small. */
function toSvg(trace) {
  return trace.type === "scattergl" ? {...trace, type: "scatter"} : trace;
}

function pointCount(trace) {
  return Array.isArray(trace.x) ? trace.x.length : Array.isArray(trace.y) ? trace.y.length : 0;
}

function isBig(trace) {
  const type = trace.type || "scatter";
  return type === "scatter" && Array.isArray(trace.x) && Array.isArray(trace.y)
    && pointCount(trace) > (String(trace.mode || "").includes("markers") ? MAX_POINTS : LINE_BINS * 4);
}

/** Every trace as drawn for the x/y ranges `view` ({x: [lo, hi], y: [lo, hi]} or null: all). */
function thinAll(source, layout, view) {
  let drawn = 0;
  let total = 0;
  const data = source.map((trace) => {
    if (!isBig(trace)) return trace;
    const n = pointCount(trace);
    const markers = String(trace.mode || "").includes("markers");
    const keep = markers ? thinMarkers(trace, layout, view) : thinLine(trace);
    if (markers) {   // a line thinned keeps its picture: only points left out are worth a note
      total += keep.available;
      drawn += keep.length;
    }
    return pick(trace, keep, n);
  });
  return {data, drawn, total};
}

/** The trace with only the points at indices `keep` (every per-point array cut the same way). */
function pick(trace, keep, n) {
  const out = {...trace};
  for (const key of ARRAY_KEYS) {
    if (Array.isArray(trace[key]) && trace[key].length === n) out[key] = keep.map((i) => trace[key][i]);
  }
  if (trace.marker) {
    out.marker = {...trace.marker};
    for (const key of MARKER_ARRAY_KEYS) {
      const values = trace.marker[key];
      if (Array.isArray(values) && values.length === n) out.marker[key] = keep.map((i) => values[i]);
    }
  }
  return out;
}

/** A function from a point's value to a number along the axis (category: its index). */
function axisScale(values, axisLayout) {
  const type = axisLayout && axisLayout.type;
  if (type === "category" || values.some((v) => v !== null && v !== undefined && typeof v !== "number")) {
    const index = new Map();
    for (const v of values) if (!index.has(String(v))) index.set(String(v), index.size);
    const scale = (v) => index.get(String(v));
    scale.category = true;   // its zoomed range is in plotly's category order: not filtered by it
    return scale;
  }
  if (type === "log") return (v) => (v > 0 ? Math.log10(v) : NaN);
  return (v) => (typeof v === "number" ? v : NaN);
}

function extent(numbers) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of numbers) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

function thinMarkers(trace, layout, view) {
  const n = pointCount(trace);
  const sx = axisScale(trace.x, layout.xaxis);
  const sy = axisScale(trace.y, layout.yaxis);
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  const inView = [];
  for (let i = 0; i < n; i++) {
    xs[i] = sx(trace.x[i]);
    ys[i] = sy(trace.y[i]);
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
    if (view && !sx.category && (xs[i] < view.x[0] || xs[i] > view.x[1])) continue;
    if (view && !sy.category && (ys[i] < view.y[0] || ys[i] > view.y[1])) continue;
    inView.push(i);
  }
  if (inView.length <= MAX_POINTS) return Object.assign(inView, {available: inView.length});
  const [x0, x1] = view && !sx.category ? view.x : extent(inView.map((i) => xs[i]));
  const [y0, y1] = view && !sy.category ? view.y : extent(inView.map((i) => ys[i]));
  // 120 x 10 cells + 2 x 120 column extremes: at most ~1,450 points. Plotly draws each as an
  // SVG element: half the 2,700 of a 150 x 16 grid took a first draw from ~280 to ~180 ms.
  const columns = 120;
  const rows = 10;
  const cellOf = new Map();
  const low = new Map();
  const high = new Map();
  const cx = columns / ((x1 - x0) || 1);
  const cy = rows / ((y1 - y0) || 1);
  for (const i of inView) {
    const column = Math.min(columns - 1, Math.floor((xs[i] - x0) * cx));
    const cell = column * rows + Math.min(rows - 1, Math.floor((ys[i] - y0) * cy));
    if (!cellOf.has(cell)) cellOf.set(cell, i);
    if (!low.has(column) || ys[i] < ys[low.get(column)]) low.set(column, i);
    if (!high.has(column) || ys[i] > ys[high.get(column)]) high.set(column, i);
  }
  const keep = new Set([...cellOf.values(), ...low.values(), ...high.values()]);
  return Object.assign([...keep].sort((a, b) => a - b), {available: inView.length});   // available: in the view
}

/** A line of many points: per column, its first, lowest, highest and last point (the same
 * picture at screen resolution); a step line (`hv`) keeps only the points where it changes. */
function thinLine(trace) {
  const n = pointCount(trace);
  const ys = trace.y;
  if (trace.line && trace.line.shape === "hv") {
    const keep = [0];
    for (let i = 1; i < n; i++) if (ys[i] !== ys[i - 1] || i === n - 1) keep.push(i);
    return keep;
  }
  const xs = trace.x.map((v) => (typeof v === "number" ? v : NaN));
  const [x0, x1] = extent(xs);
  const width = (x1 - x0) || 1;
  const keep = new Set([0, n - 1]);
  let column = -1;
  let first = -1;
  let lo = -1;
  let hi = -1;
  let last = -1;
  const flush = () => { for (const i of [first, lo, hi, last]) if (i >= 0) keep.add(i); };
  for (let i = 0; i < n; i++) {
    const c = Number.isFinite(xs[i]) ? Math.floor((xs[i] - x0) / width * LINE_BINS) : column;
    if (c !== column) {
      flush();
      column = c;
      first = lo = hi = i;
    }
    if (ys[i] < ys[lo]) lo = i;
    if (ys[i] > ys[hi]) hi = i;
    last = i;
  }
  flush();
  return [...keep].sort((a, b) => a - b);
}

/** Says on the chart that it shows a sample, and how to see every point. */
function withThinNote(layout, shown) {
  const others = (layout.annotations || []).filter((a) => a.name !== "nni-thinned");
  if (shown.drawn >= shown.total) return {...layout, annotations: others};
  return {...layout, annotations: [...others, {
    name: "nni-thinned", xref: "paper", yref: "paper", x: 1, y: 1, xanchor: "right", yanchor: "bottom",
    showarrow: false, font: {size: 10, color: "#6b7785"},
    text: `${shown.drawn.toLocaleString()} of ${shown.total.toLocaleString()} points drawn · zoom in for all`,
  }]};
}

/** Redraw the thinned traces for the zoomed range whenever the user zooms or pans. */
function followZoom(el) {
  if (el.__nniZoom) return;
  el.__nniZoom = true;
  let busy = false;
  el.on("plotly_relayout", async (change) => {
    const keys = Object.keys(change || {});
    if (busy || !keys.some((k) => k.startsWith("xaxis") || k.startsWith("yaxis"))) return;
    const full = el._fullLayout;
    if (!full || !el.__nniSource) return;
    const range = (axis) => {
      const [a, b] = axis.range.map(Number);   // data units; log10 of them on a log axis, as axisScale
      return [Math.min(a, b), Math.max(a, b)];
    };
    const zoomed = !(change["xaxis.autorange"] && change["yaxis.autorange"]);
    const view = zoomed ? {x: range(full.xaxis), y: range(full.yaxis)} : null;
    const shown = thinAll(el.__nniSource, el.layout, view);
    busy = true;
    try {
      await el.__nniPlotly.react(el, shown.data, withThinNote(el.layout, shown), el.__nniOptions);
    } finally {
      busy = false;
    }
  });
}

/** Instead of blank axes: a message in the chart's box (the chart, if any, is removed). */
export function emptyChart(el, message) {
  purge(el);
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

/** Resolves once the browser has painted what was drawn so far (a frame), or after 100 ms
 *  (a hidden tab paints nothing): a first chart is shown before more work holds the page. */
export function painted() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 100);
    requestAnimationFrame(() => setTimeout(() => { clearTimeout(timer); resolve(); }, 0));
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

/** The scatter type for `count` points: SVG always now. Big traces are thinned by plot() (see
 * thin above) instead of drawn with WebGL, which needs the 4.8 MB bundle and, without a GPU,
 * drew slower than SVG draws the thinned trace. Kept for the pages that call it. */
export function scatterType(_count) {
  return "scatter";
}

export function purge(el) {
  if (!el) return;
  const owner = el.__nniPlotly || (el.classList && el.classList.contains("js-plotly-plot") ? window.Plotly : null);
  if (owner) owner.purge(el);
  delete el.__nniPlotly;
  delete el.__nniZoom;
  delete el.__nniSource;
}
