// The Pareto-front page: every result that holds all objectives, the front highlighted and
// dominated results dimmed (2 objectives: one scatter; 3+: a scatter matrix), the best
// result of each objective, the front's hypervolume as results arrived, and the front as a
// table sortable by each objective.
// Refreshes every few seconds while the experiment runs.

const API = "/api/v1/nni";
const REFRESH_MS = 3000;
let sortKey = null;
let sortDesc = false;
let lastFront = [];
let objectives = [];
let constraints = [];   // config `constraints`: infeasible results are drawn apart, never on the front

/** Whether a result violates the constraints (the rule of nni/_constraints.py: a missing or
 * non-finite constraint metric is a violation too). The front itself comes from the server. */
function infeasible(row) {
  const value = decode(row.value);
  return constraints.some((c) => {
    const x = value && typeof value === "object" ? value[c.metric] : undefined;
    if (typeof x !== "number" || !Number.isFinite(x)) return true;
    return (c.max !== undefined && c.max !== null && x > c.max) || (c.min !== undefined && c.min !== null && x < c.min);
  });
}

async function get(path) {
  const response = await fetch(API + path, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function decode(value) {
  while (typeof value === "string") {
    try { value = JSON.parse(value); } catch { break; }
  }
  return value;
}

/** Rows holding every objective as a finite number, with their values in objective order. */
function fitting(rows) {
  const out = [];
  for (const row of rows) {
    const value = decode(row.value);
    if (!value || typeof value !== "object") continue;
    const values = objectives.map((o) => value[o.metric]);
    if (values.every((v) => typeof v === "number" && Number.isFinite(v))) out.push({...row, values});
  }
  return out;
}

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/webui/plotly.min.js";
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => reject(new Error("could not load plotly.js"));
    document.head.appendChild(script);
  });
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function label(o) {
  return `${o.metric} (${o.mode === "maximize" ? "max" : "min"})`;
}

async function draw(all, front) {
  const Plotly = await loadPlotly();
  const key = (r) => `${r.trialJobId}/${r.parameterId}`;
  const onFront = new Set(front.map(key));
  const bad = all.filter(infeasible);
  const dominated = all.filter((r) => !onFront.has(key(r)) && !infeasible(r));
  // plotly reads a few HTML tags in hover text (<br>, <b>, ...): the parameters are escaped
  const text = (rows) => rows.map((r) => `trial ${escapeHtml(r.trialJobId)}<br>${escapeHtml(JSON.stringify(r.parameter))}`);
  const chart = document.getElementById("chart");
  const layout = {margin: {l: 60, r: 20, t: 20, b: 50}, hovermode: "closest", legend: {orientation: "h", y: -0.15}};
  if (objectives.length === 2) {
    const sorted = [...front].sort((a, b) => a.values[0] - b.values[0]);
    const data = [
      {name: "dominated", x: dominated.map((r) => r.values[0]), y: dominated.map((r) => r.values[1]),
       text: text(dominated), mode: "markers", type: "scatter",
       marker: {color: "#9aa5b1", opacity: 0.35, size: 7}},
      {name: "infeasible", x: bad.map((r) => r.values[0]), y: bad.map((r) => r.values[1]),
       text: text(bad), mode: "markers", type: "scatter",
       marker: {color: "#e8871e", opacity: 0.6, size: 7, symbol: "x"}, visible: bad.length ? true : "legendonly"},
      {name: "Pareto front", x: sorted.map((r) => r.values[0]), y: sorted.map((r) => r.values[1]),
       text: text(sorted), mode: "lines+markers", type: "scatter", line: {shape: "hv", color: "#d62728"},
       marker: {color: "#d62728", size: 9}},
    ];
    layout.xaxis = {title: {text: escapeHtml(label(objectives[0]))}};
    layout.yaxis = {title: {text: escapeHtml(label(objectives[1]))}};
    await Plotly.react(chart, data, layout, {displaylogo: false, responsive: true});
  } else {
    const dims = (rows) => objectives.map((o, i) => ({label: escapeHtml(label(o)), values: rows.map((r) => r.values[i])}));
    const data = [
      {name: "dominated", type: "splom", dimensions: dims(dominated), text: text(dominated),
       marker: {color: "#9aa5b1", opacity: 0.35, size: 5}, diagonal: {visible: false}},
      {name: "infeasible", type: "splom", dimensions: dims(bad), text: text(bad),
       marker: {color: "#e8871e", opacity: 0.6, size: 5, symbol: "x"}, diagonal: {visible: false}},
      {name: "Pareto front", type: "splom", dimensions: dims(front), text: text(front),
       marker: {color: "#d62728", size: 7}, diagonal: {visible: false}},
    ];
    await Plotly.react(chart, data, layout, {displaylogo: false, responsive: true});
  }
  chart.dataset.frontSize = String(front.length);
  chart.dataset.dominatedSize = String(dominated.length);
  chart.dataset.infeasibleSize = String(bad.length);
}

async function drawHypervolume(history) {
  const Plotly = await loadPlotly();
  const el = document.getElementById("hv");
  const pts = history.points || [];
  await Plotly.react(el, [{name: "hypervolume", x: pts.map((p) => p.results), y: pts.map((p) => p.hypervolume),
                           mode: "lines+markers", type: "scatter", line: {color: "#1f77b4"}}],
    {margin: {l: 60, r: 20, t: 30, b: 45}, title: {text: "hypervolume of the front", font: {size: 13}},
     xaxis: {title: {text: "results"}}, yaxis: {title: {text: "hypervolume"}}},
    {displaylogo: false, responsive: true});
  el.dataset.points = String(pts.length);
}

// Names and values come from the experiment (metric names from its config, parameters from
// the search space and the tuner, or an import): they are put on the page as text, never as
// HTML, so a name like <img onerror=...> shows as written and runs nothing.

/** An element with children: strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function renderBest(all) {
  const box = document.getElementById("best");
  if (!all.length) { box.replaceChildren(); return; }
  const items = objectives.map((o, i) => {
    const better = o.mode === "maximize" ? (a, b) => a > b : (a, b) => a < b;
    const best = all.reduce((a, b) => (better(b.values[i], a.values[i]) ? b : a));
    return el("li", {}, `best ${o.metric}: `, el("strong", {}, best.values[i].toPrecision(6)),
              " (trial ", el("code", {}, String(best.trialJobId)), ")");
  });
  box.replaceChildren(el("ul", {id: "best-list"}, ...items));
}

function renderTable() {
  const table = document.getElementById("front");
  const rows = [...lastFront];
  if (sortKey !== null) rows.sort((a, b) => (sortDesc ? -1 : 1) * (a.values[sortKey] - b.values[sortKey]));
  const head = objectives.map((o, i) => {
    const th = el("th", {class: "sortable", "data-key": String(i)},
                  o.metric + (sortKey === i ? (sortDesc ? " ▼" : " ▲") : ""));
    th.onclick = () => {
      sortDesc = sortKey === i ? !sortDesc : false;
      sortKey = i;
      renderTable();
    };
    return th;
  });
  const body = rows.map((r) => el("tr", {}, el("td", {}, el("code", {}, String(r.trialJobId))),
    ...r.values.map((v) => el("td", {}, v.toPrecision(6))), el("td", {}, JSON.stringify(r.parameter))));
  table.replaceChildren(el("thead", {}, el("tr", {}, el("th", {}, "trial"), ...head, el("th", {}, "parameters"))),
                        el("tbody", {}, ...body));
}

async function refresh() {
  const summary = document.getElementById("summary");
  try {
    const profile = await get("/experiment");
    document.getElementById("exp-id").textContent = profile.id || "";
    objectives = (profile.params && profile.params.objectives) || [];
    constraints = (profile.params && profile.params.constraints) || [];
    if (!objectives.length) {
      summary.textContent = "This experiment has no objectives (config field 'objectives'): no Pareto front.";
      return false;
    }
    const [rows, front, history] = await Promise.all(
      [get("/export-data"), get("/pareto-front"), get("/pareto-front/hypervolume")]);
    const all = fitting(rows);
    lastFront = fitting(front);
    summary.className = "";
    const bad = all.filter(infeasible).length;
    summary.replaceChildren("Pareto front: ", el("strong", {id: "front-size"}, String(lastFront.length)),
      ` of ${all.length} results (${objectives.map(label).join(", ")})`,
      ...(constraints.length ? ["; ", el("span", {id: "infeasible-count"}, `${bad} infeasible`),
        " (violate the constraints: never on the front)"] : []));
    renderBest(all.filter((r) => !infeasible(r)));
    renderTable();
    await draw(all, lastFront);
    await drawHypervolume(history);
    return !["DONE", "STOPPED", "ERROR", "VIEWED"].includes(profile.status);
  } catch (err) {
    summary.className = "error";
    summary.textContent = `Cannot read the experiment: ${err.message}`;
    return true;
  }
}

async function loop() {
  const live = await refresh();
  if (live) setTimeout(loop, REFRESH_MS);
}

loop();
