// Charts: metric by trial with the best so far, intermediate curves, parallel coordinates,
// duration per trial, hyperparameter importance (computed by the server) and slice plots.

import { get, query } from "../api.js";
import { fill, formatNumber, h } from "../dom.js";
import { STATUS_COLORS, hasWebGL, linkPoints, plot, scatterType } from "../plot.js";

const LOG_TYPES = new Set(["loguniform", "qloguniform", "lognormal", "qlognormal"]);
const SAMPLE_LIMIT = 5000;   // parallel coordinates and slice plots draw at most this many results

export function create(ctx) {
  const boxes = {
    metric: h("div", {class: "chart", id: "chart-metric"}),
    intermediate: h("div", {class: "chart", id: "chart-intermediate"}),
    parcoords: h("div", {class: "chart tall", id: "chart-parcoords"}),
    duration: h("div", {class: "chart", id: "chart-duration"}),
    importance: h("div", {class: "chart", id: "chart-importance"}),
  };
  const notes = {
    metric: h("div", {class: "note"}),
    intermediate: h("div", {class: "note"}),
    parcoords: h("div", {class: "note"}),
    importance: h("div", {class: "note", id: "importance-note"}),
    slices: h("div", {class: "note"}),
  };
  const slices = h("div", {class: "slices", id: "chart-slices"});
  const topInput = h("input", {type: "number", min: 1, max: 500, value: 20, id: "intermediate-top",
    onchange: () => page.refresh()});
  const card = (title, ...children) => h("div", {class: "card"}, h("h2", {}, title), ...children);

  fill(ctx.root,
    h("div", {class: "grid wide"},
      card("Default metric by trial", boxes.metric, notes.metric),
      h("div", {class: "card"}, h("div", {class: "tabs"}, h("h2", {style: {margin: 0, flex: 1}}, "Intermediate results"),
        h("label", {class: "small"}, "best trials ", topInput)), boxes.intermediate, notes.intermediate)),
    h("div", {class: "card section"}, h("h2", {}, "Hyperparameters (parallel coordinates, coloured by metric)"),
      boxes.parcoords, notes.parcoords),
    h("div", {class: "grid wide"},
      card("Duration per trial", boxes.duration),
      card("Hyperparameter importance", boxes.importance, notes.importance)),
    h("div", {class: "card section"}, h("h2", {}, "Slice plots: metric against each parameter"), slices, notes.slices));

  let drawTime = 0;
  const page = {
    // Whole-experiment data: redrawn at most every 3 s while trials run, less often when drawing is slow.
    get minInterval() { return Math.max(3000, 3 * drawTime); },
    async refresh() {
      const started = performance.now();
      const [data, importance, curves] = await Promise.all([
        get("/ui/chart-data"),
        get("/ui/importance"),
        get(`/ui/intermediate${query({top: Number(topInput.value) || 20})}`),
      ]);
      const info = ctx.experiment || {};
      const mode = info.optimizeMode || "maximize";
      const space = info.searchSpace || {};
      const results = withMetric(data.results, data.parameterKeys);
      await Promise.all([
        drawMetric(boxes.metric, notes.metric, results, mode),
        drawIntermediate(boxes.intermediate, notes.intermediate, curves.series),
        drawParcoords(boxes.parcoords, notes.parcoords, results, data.parameterKeys, space, mode),
        drawDuration(boxes.duration, data.trials),
        drawImportance(boxes.importance, notes.importance, importance),
        drawSlices(slices, notes.slices, results, data.parameterKeys, space, mode),
      ]);
      drawTime = performance.now() - started;
    },
  };
  return page;
}

/** Final results that have a numeric metric, as a list of {trial, seq, metric, params}. */
function withMetric(columns, keys) {
  const rows = [];
  for (let i = 0; i < columns.metric.length; i++) {
    const metric = columns.metric[i];
    if (typeof metric !== "number") continue;
    const params = {};
    for (const k of keys) params[k] = columns.params[k][i];
    rows.push({trial: columns.trialJobId[i], seq: columns.sequenceId[i], phase: columns.parameterIndex[i], metric, params});
  }
  return rows;
}

/** At most `limit` rows: every k-th one, plus the best rows so the interesting ones are never dropped. */
function sample(rows, limit, mode) {
  if (rows.length <= limit) return rows;
  const step = rows.length / (limit * 0.9);
  const chosen = new Set();
  for (let i = 0; i < rows.length; i += step) chosen.add(Math.floor(i));
  const order = rows.map((r, i) => i).sort((a, b) => (mode === "minimize" ? 1 : -1) * (rows[a].metric - rows[b].metric));
  for (const i of order.slice(0, Math.floor(limit * 0.1))) chosen.add(i);
  return [...chosen].sort((a, b) => a - b).map((i) => rows[i]);
}

function label(row) {
  return `trial ${row.trial} (#${row.seq}${row.phase ? `, phase ${row.phase}` : ""})`;
}

function empty(note, text) {
  note.textContent = text;
}

async function drawMetric(el, note, rows, mode) {
  let best = null;
  const bestX = [];
  const bestY = [];
  for (const r of rows) {
    if (best === null || (mode === "minimize" ? r.metric < best : r.metric > best)) best = r.metric;
    bestX.push(r.seq);
    bestY.push(best);
  }
  empty(note, rows.length ? `${rows.length} final results · click a point to open its trial` : "No final results yet.");
  await plot(el, [
    {type: scatterType(rows.length), mode: "markers", name: "metric", x: rows.map((r) => r.seq), y: rows.map((r) => r.metric),
     customdata: rows.map((r) => r.trial), text: rows.map(label), hovertemplate: "%{text}<br>metric %{y}<extra></extra>",
     marker: {size: rows.length > 2000 ? 3 : 7, color: "#24527a", opacity: rows.length > 2000 ? 0.5 : 0.75}},
    {type: "scatter", mode: "lines", name: `best so far (${mode})`, x: bestX, y: bestY, hoverinfo: "skip",
     line: {shape: "hv", color: "#e3692b", width: 2}},
  ], {xaxis: {title: {text: "trial number"}}, yaxis: {title: {text: "default metric"}}});
  linkPoints(el);
}

async function drawIntermediate(el, note, series) {
  empty(note, series.length ? `${series.length} curves: the best trials and those running` : "No intermediate results yet.");
  await plot(el, series.map((s) => ({
    type: "scatter", mode: "lines", x: s.sequence, y: s.value, name: s.trialJobId,
    customdata: s.sequence.map(() => s.trialJobId),
    line: {width: s.status === "RUNNING" ? 2.5 : 1.5, dash: s.status === "RUNNING" ? "dot" : "solid"},
    hovertemplate: `trial ${s.trialJobId} (#${s.sequenceId}, ${s.status})<br>step %{x}: %{y}<extra></extra>`,
  })), {xaxis: {title: {text: "step"}}, yaxis: {title: {text: "intermediate result"}}, showlegend: series.length <= 12});
  linkPoints(el);
}

/** A parameter's values as numbers for a numeric axis, or category codes with tick labels. */
function axis(values, spec) {
  const numeric = values.every((v) => typeof v === "number");
  if (numeric) {
    const log = spec && LOG_TYPES.has(spec._type) && values.every((v) => v > 0);
    return {values: log ? values.map(Math.log10) : values, log, numeric: true};
  }
  const names = values.map((v) => (v === null || v === undefined ? "(none)" : typeof v === "object" ? JSON.stringify(v) : String(v)));
  const categories = [...new Set(names)].sort();
  const index = new Map(categories.map((c, i) => [c, i]));
  return {values: names.map((n) => index.get(n)), names, categories, numeric: false};
}

async function drawParcoords(el, note, allRows, keys, space, mode) {
  const rows = sample(allRows, SAMPLE_LIMIT, mode);
  if (!hasWebGL()) {
    empty(note, "Parallel coordinates need WebGL, which this browser does not provide.");
    return;
  }
  if (!rows.length || !keys.length) {
    empty(note, "No final results yet.");
    await plot(el, [], {xaxis: {visible: false}, yaxis: {visible: false}});
    return;
  }
  const dimensions = keys.map((k) => {
    const a = axis(rows.map((r) => r.params[k]), space[k]);
    return a.numeric
      ? {label: a.log ? `log10(${k})` : k, values: a.values}
      : {label: k, values: a.values, tickvals: a.categories.map((c, i) => i), ticktext: a.categories};
  });
  const metric = rows.map((r) => r.metric);
  dimensions.push({label: "metric", values: metric});
  empty(note, `${rows.length === allRows.length ? rows.length : `${rows.length} of ${allRows.length}`} results; `
    + `${mode === "minimize" ? "dark" : "bright"} lines are the better ones. Drag along an axis to filter.`);
  await plot(el, [{type: "parcoords", dimensions,
    line: {color: metric, colorscale: "Viridis", reversescale: mode === "minimize", showscale: true,
           colorbar: {title: {text: "metric"}}}}], {margin: {l: 70, r: 70, t: 40, b: 30}});
}

async function drawDuration(el, trials) {
  const n = trials.trialJobId.length;
  const now = Date.now();
  const x = [];
  const y = [];
  const colors = [];
  const text = [];
  for (let i = 0; i < n; i++) {
    if (!trials.startTime[i]) continue;
    x.push(trials.sequenceId[i]);
    y.push(((trials.endTime[i] || now) - trials.startTime[i]) / 1000);
    colors.push(STATUS_COLORS[trials.status[i]] || "#888");
    text.push(`trial ${trials.trialJobId[i]} (#${trials.sequenceId[i]}, ${trials.status[i]})`);
  }
  const customdata = [];
  for (let i = 0; i < n; i++) if (trials.startTime[i]) customdata.push(trials.trialJobId[i]);
  const trace = x.length > 2000
    ? {type: scatterType(x.length), mode: "markers", marker: {color: colors, size: 4}}
    : {type: "bar", marker: {color: colors}, textposition: "none"};
  await plot(el, [{...trace, x, y, text, customdata, hovertemplate: "%{text}<br>%{y:.1f} s<extra></extra>"}],
    {xaxis: {title: {text: "trial number"}}, yaxis: {title: {text: "seconds"}}, bargap: 0.1});
  linkPoints(el);
}

async function drawImportance(el, note, answer) {
  const params = [...answer.parameters].reverse();   // plotly draws bars bottom-up
  await plot(el, [{type: "bar", orientation: "h", x: params.map((p) => p.importance), y: params.map((p) => p.name),
    marker: {color: "#24527a"},
    text: params.map((p) => (p.spearman === null ? p.kind : `ρ ${formatNumber(p.spearman)}`)),
    hovertemplate: "%{y}: %{x:.3f}<br>%{text}<extra></extra>"}],
  {xaxis: {title: {text: "share of metric variance explained alone"}, range: [0, 1]}, margin: {l: 110, r: 20, t: 10, b: 45}});
  empty(note, answer.note
    ? `Not computed: ${answer.note}.`
    : `From ${answer.n} final results. Method: ${answer.method}. Only main effects, not interactions; `
      + "a rough guide with few results. ρ: Spearman correlation (sign = direction).");
}

async function drawSlices(container, note, allRows, keys, space, mode) {
  const rows = sample(allRows, SAMPLE_LIMIT, mode);
  const existing = new Map([...container.children].map((el) => [el.dataset.param, el]));
  const wanted = [];
  for (const k of keys) {
    let el = existing.get(k);
    if (!el) el = h("div", {class: "chart slice", dataset: {param: k}});
    wanted.push(el);
  }
  if (wanted.length !== container.children.length || wanted.some((el, i) => container.children[i] !== el)) {
    container.replaceChildren(...wanted);
  }
  empty(note, rows.length ? (rows.length < allRows.length ? `${rows.length} of ${allRows.length} results shown.` : "")
    : "No final results yet.");
  await Promise.all(keys.map((k, i) => {
    const a = axis(rows.map((r) => r.params[k]), space[k]);
    const x = a.numeric ? rows.map((r) => r.params[k]) : a.names;
    return plot(wanted[i], [{type: scatterType(rows.length), mode: "markers", x, y: rows.map((r) => r.metric),
      customdata: rows.map((r) => r.trial), text: rows.map(label),
      hovertemplate: `%{text}<br>${k} %{x}<br>metric %{y}<extra></extra>`,
      marker: {size: rows.length > 2000 ? 3 : 6, color: rows.map((r) => r.seq), colorscale: "Blues", opacity: 0.8,
               showscale: false}}],
    {title: {text: k, font: {size: 13}}, margin: {l: 50, r: 10, t: 30, b: 35},
     xaxis: {type: a.numeric ? (a.log ? "log" : "linear") : "category"}, yaxis: {title: {text: "metric"}}})
      .then((el) => el && linkPoints(el));
  }));
}
