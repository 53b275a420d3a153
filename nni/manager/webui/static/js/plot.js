// plotly.js, loaded on first use from the `plotly` Python package (served at /webui/plotly.min.js).

let loading = null;

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/webui/plotly.min.js";
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

/** Draw or update a figure in `el` (Plotly.react keeps zoom state and avoids flicker). */
export async function plot(el, data, layout = {}, config = {}) {
  const Plotly = await loadPlotly();
  if (!el.isConnected) return null;
  await Plotly.react(el, data, {...BASE_LAYOUT, ...layout},
    {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"], ...config});
  return el;
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
