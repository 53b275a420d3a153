// Charts: metric by trial with the best so far, intermediate curves, parallel coordinates,
// duration per trial, hyperparameter importance (computed by the server) and slice plots.
//
// The metric chart is drawn as soon as its data arrives; the others follow one per idle
// moment, so the first chart shows fast and a redraw never blocks the page for long.

import { get, query } from "../api.js";
import { fill, formatNumber, h } from "../dom.js";
import {
  STATUS_COLORS, emptyChart, hasWebGL, idle, linkPoints, narrow, painted, plot, scatterType, trialAxis,
} from "../plot.js";

const LOG_TYPES = new Set(["loguniform", "qloguniform", "lognormal", "qlognormal"]);
const SAMPLE_LIMIT = 5000;   // parallel coordinates and slice plots draw at most this many results
const TOP_CHOICES = [100, 50, 20, 10, 5];   // parallel coordinates: keep the best N% of results
// Parallel coordinates are drawn with WebGL: on a machine without a GPU one draw can hold the
// page for seconds. They are drawn only while on screen, and redrawn at most this often.
const PARCOORDS_INTERVAL = 15000;
const GONE = "The experiment manager is not responding: the charts will be drawn when it answers again.";

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
    parcoords: h("div", {class: "note", id: "parcoords-note"}),
    importance: h("div", {class: "note", id: "importance-note"}),
    slices: h("div", {class: "note"}),
  };
  const slices = h("div", {class: "slices", id: "chart-slices"});
  const topInput = h("input", {type: "number", min: 1, max: 500, value: 20, id: "intermediate-top",
    onchange: () => page.refresh()});
  // Parallel coordinates: which axes, and the best N% only.
  const hiddenAxes = new Set();
  const axisChoice = h("span", {class: "chart-options", id: "parcoords-axes"});
  const topPercent = h("select", {id: "parcoords-top", onchange: () => redrawParcoords()},
    TOP_CHOICES.map((n) => h("option", {value: n}, n === 100 ? "all trials" : `top ${n}%`)));
  const card = (title, ...children) => h("div", {class: "card"}, h("h2", {}, title), ...children);

  fill(ctx.root,
    h("div", {class: "grid wide"},
      card("Default metric by trial", boxes.metric, notes.metric),
      h("div", {class: "card"}, h("div", {class: "tabs"}, h("h2", {style: {margin: 0, flex: 1}}, "Intermediate results"),
        h("label", {class: "small"}, "best trials ", topInput)), boxes.intermediate, notes.intermediate)),
    h("div", {class: "grid wide"},
      card("Duration per trial", boxes.duration),
      card("Hyperparameter importance", boxes.importance, notes.importance)),
    // Below the fold on purpose: drawn (WebGL) only when scrolled to, see PARCOORDS_INTERVAL.
    h("div", {class: "card section"}, h("h2", {}, "Hyperparameters (parallel coordinates, coloured by metric)"),
      h("div", {class: "chart-options"}, h("label", {}, "show ", topPercent), axisChoice),
      boxes.parcoords, notes.parcoords),
    h("div", {class: "card section"}, h("h2", {}, "Slice plots: metric against each parameter"), slices, notes.slices));

  let drawTime = 0;
  let drawn = false;
  let last = null;   // {results, keys, space, mode} for redrawing parallel coordinates on a control change

  const parcoordsState = {visible: false, drawnAt: 0, drawnFor: null, timer: null};
  function redrawParcoords() {
    parcoordsState.drawnFor = null;
    return parcoordsIfDue(true);
  }
  /** Draw the parallel coordinates if on screen, with data not drawn yet, and not drawn too recently. */
  async function parcoordsIfDue(now = false) {
    if (!last || !parcoordsState.visible || parcoordsState.drawnFor === last) return;
    const wait = parcoordsState.drawnAt + PARCOORDS_INTERVAL - Date.now();
    if (!now && parcoordsState.drawnAt && wait > 0) {
      clearTimeout(parcoordsState.timer);
      parcoordsState.timer = setTimeout(() => parcoordsIfDue(), wait);
      return;
    }
    parcoordsState.drawnFor = last;
    parcoordsState.drawnAt = Date.now();
    await drawParcoords(boxes.parcoords, notes.parcoords, last.results, last.keys, last.space, last.mode,
      {hidden: hiddenAxes, percent: Number(topPercent.value)});
  }
  const observer = window.IntersectionObserver ? new IntersectionObserver((entries) => {
    parcoordsState.visible = entries.some((entry) => entry.isIntersecting);
    if (parcoordsState.visible) parcoordsIfDue();
  }) : null;
  if (observer) observer.observe(boxes.parcoords); else parcoordsState.visible = true;

  function renderAxisChoice(keys) {
    const wanted = [...keys, "metric"].join("\u0000");
    if (axisChoice.dataset.keys === wanted) return;
    axisChoice.dataset.keys = wanted;
    fill(axisChoice, "axes:", keys.map((k) => h("label", {},
      h("input", {type: "checkbox", checked: !hiddenAxes.has(k), dataset: {axis: k}, onchange: (event) => {
        if (event.target.checked) hiddenAxes.delete(k); else hiddenAxes.add(k);
        redrawParcoords();
      }}), k)));
  }

  const page = {
    // Whole-experiment data: redrawn at most every 3 s while trials run, less often when drawing is slow.
    get minInterval() { return Math.max(3000, 3 * drawTime); },
    async refresh() {
      const started = performance.now();
      // The first chart from its own small answer (asked for as the app started, the first
      // time); every trial and parameter, for the other charts, right behind it.
      const seriesLoad = ctx.take("/ui/metric-series");
      const dataLoad = get("/ui/chart-data");
      dataLoad.catch(() => {});   // awaited below; a failure is reported once, from there
      let series;
      try {
        series = await seriesLoad;
      } catch (error) {
        if (!drawn && (error.status === 0 || error.status === 503)) {
          for (const el of Object.values(boxes)) emptyChart(el, GONE);
        }
        throw error;
      }
      const info = ctx.experiment || {};
      const mode = info.optimizeMode || "maximize";
      const space = info.searchSpace || {};
      await drawMetric(boxes.metric, notes.metric, seriesRows(series), mode, ctx);
      drawn = true;
      await painted();   // shown before the other charts take the page's time
      const data = await dataLoad;
      const keys = data.parameterKeys;
      const results = withMetric(data.results, keys);
      last = {results, keys, space, mode};
      // Asked for only now: the server answers one UI request at a time, and importance
      // (numpy) must not hold up the first chart's data.
      const others = Promise.all([get("/ui/importance"), get(`/ui/intermediate${query({top: Number(topInput.value) || 20})}`)]);
      others.catch(() => {});   // awaited below; a failure is reported once, from there
      const [importance, curves] = await others;
      await idle();
      await drawIntermediate(boxes.intermediate, notes.intermediate, curves.series);
      await idle();
      renderAxisChoice(keys);
      await parcoordsIfDue();
      await idle();
      await drawDuration(boxes.duration, data.trials);
      await idle();
      await drawImportance(boxes.importance, notes.importance, importance);
      await idle();
      await drawSlices(slices, notes.slices, results, keys, space, mode);
      drawTime = performance.now() - started;
    },
    unmount() {
      if (observer) observer.disconnect();
      clearTimeout(parcoordsState.timer);
    },
  };
  return page;
}

/** The rows of `/ui/metric-series` (final results with a numeric metric, no parameters), in
 * the shape of withMetric's: what the metric-by-trial chart draws. */
export function seriesRows(series) {
  const rows = new Array(series.metric.length);
  for (let i = 0; i < rows.length; i++) {
    rows[i] = {trial: series.trialJobId[i], seq: series.sequenceId[i], phase: series.parameterIndex[i],
               metric: series.metric[i], params: {}};
  }
  return rows;
}

/** Final results that have a numeric metric, as a list of {trial, seq, metric, params}. */
export function withMetric(columns, keys) {
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

/** The best `percent`% of rows by metric (all of them at 100). */
function best(rows, percent, mode) {
  if (percent >= 100) return rows;
  const sorted = [...rows].sort((a, b) => (mode === "minimize" ? 1 : -1) * (a.metric - b.metric));
  return sorted.slice(0, Math.max(1, Math.ceil(rows.length * percent / 100))).sort((a, b) => a.seq - b.seq);
}

function label(row) {
  return `trial ${row.trial} (#${row.seq}${row.phase ? `, phase ${row.phase}` : ""})`;
}

function noResultsYet(ctx) {
  const status = ctx && ctx.experiment && ctx.experiment.status;
  return status === "RUNNING" ? "No final results yet: the first trials are still running." : "No final results.";
}

export async function drawMetric(el, note, rows, mode, ctx) {
  if (!rows.length) {
    note.textContent = "";
    emptyChart(el, noResultsYet(ctx));
    return;
  }
  let bestSoFar = null;
  const bestX = [];
  const bestY = [];
  for (const r of rows) {
    if (bestSoFar === null || (mode === "minimize" ? r.metric < bestSoFar : r.metric > bestSoFar)) bestSoFar = r.metric;
    bestX.push(r.seq);
    bestY.push(bestSoFar);
  }
  note.textContent = `${rows.length} final results · click a point to open its trial`;
  const lastSeq = rows[rows.length - 1].seq;
  // The hover label from the trial id and number the points carry anyway; a label of its own
  // per point only for multi-phase trials (100,000 strings take a while to build).
  const phases = rows.some((r) => r.phase);
  const hover = phases ? {text: rows.map(label), hovertemplate: "%{text}<br>metric %{y}<extra></extra>"}
    : {hovertemplate: "trial %{customdata} (#%{x})<br>metric %{y}<extra></extra>"};
  await plot(el, [
    {type: scatterType(rows.length), mode: "markers", name: "metric", x: rows.map((r) => r.seq), y: rows.map((r) => r.metric),
     customdata: rows.map((r) => r.trial), ...hover,
     marker: {size: rows.length > 2000 ? 3 : 7, color: "#24527a", opacity: rows.length > 2000 ? 0.5 : 0.75}},
    {type: "scatter", mode: "lines", name: `best so far (${mode})`, x: bestX, y: bestY, hoverinfo: "skip",
     line: {shape: "hv", color: "#e3692b", width: 2}},
  ], {xaxis: trialAxis("trial number", lastSeq + 1), yaxis: {title: {text: "default metric"}}});
  linkPoints(el);
}

// Each curve has its own colour and legend entry (trial number and id), up to LEGEND_CURVES
// curves; the line style says the trial's state (solid: has a final result, dotted: running,
// dashed: early-stopped). Beyond that many the legend names the groups only, one entry each.
const CURVE_GROUPS = {
  best: {name: "best trials", dash: "solid", width: 1.5},
  RUNNING: {name: "running", dash: "dot", width: 2.5, color: STATUS_COLORS.RUNNING},
  EARLY_STOPPED: {name: "early-stopped", dash: "dash", width: 1.2, color: STATUS_COLORS.EARLY_STOPPED},
};
const LEGEND_CURVES = 30;
// 20 distinct colours (d3's category20: plotly's 10 and their light tints), so the default 20
// curves never share one; named so each curve and its legend swatch match.
const CURVE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
  "#dbdb8d", "#9edae5"];

async function drawIntermediate(el, note, series) {
  if (!series.length) {
    note.textContent = "";
    emptyChart(el, "No intermediate results yet.");
    return;
  }
  const counts = {};
  const seen = new Set();
  const each = series.length <= LEGEND_CURVES;
  const traces = series.map((s, i) => {
    const group = s.status === "RUNNING" || s.status === "EARLY_STOPPED" ? s.status : "best";
    counts[group] = (counts[group] || 0) + 1;
    const style = CURVE_GROUPS[group];
    const first = !seen.has(group);
    seen.add(group);
    const state = group === "best" ? "" : ` (${style.name})`;
    return {
      type: "scatter", mode: "lines", x: s.sequence, y: s.value,
      ...(each
        ? {name: `#${s.sequenceId} ${s.trialJobId}${s.parameterIndex ? ` phase ${s.parameterIndex}` : ""}${state}`,
           showlegend: true, line: {width: style.width, dash: style.dash, color: CURVE_COLORS[i % CURVE_COLORS.length]}}
        : {name: style.name, legendgroup: group, showlegend: first,
           line: {width: style.width, dash: style.dash, ...(style.color ? {color: style.color} : {})}}),
      customdata: s.sequence.map(() => s.trialJobId),
      opacity: group === "EARLY_STOPPED" ? 0.7 : 1,
      hovertemplate: `trial ${s.trialJobId} (#${s.sequenceId}, ${s.status})<br>step %{x}: %{y}<extra></extra>`,
    };
  });
  note.textContent = `${series.length} curves: ` + Object.entries(counts)
    .map(([group, n]) => `${n} ${CURVE_GROUPS[group].name}`).join(", ")
    + (each ? " · line: solid has a final result, dotted running, dashed early-stopped" : "")
    + " · click a curve to open its trial";
  const steps = Math.max(...series.map((s) => s.sequence.length));
  el.dataset.legend = each ? "curves" : "groups";
  // The legend beside the curves on a wide screen; below them (scrolling inside the chart's
  // box when long) on a phone.
  const legend = narrow() ? {orientation: "h", y: -0.3, font: {size: 10}}
    : {orientation: "v", x: 1.02, y: 1, font: {size: 11}};
  // On a phone the legend's rows go below the curves: the box grows with them, so the curves
  // keep their height (about two entries a row).
  el.style.height = narrow() && each ? `${300 + 10 * series.length}px` : "";
  await plot(el, traces, {xaxis: trialAxis("step", steps), yaxis: {title: {text: "intermediate result"}},
    showlegend: true, legend});
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

const shorten = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

async function drawParcoords(el, note, allRows, keys, space, mode, {hidden, percent}) {
  if (!hasWebGL()) {
    emptyChart(el, "Parallel coordinates need WebGL, which this browser does not provide.");
    return;
  }
  if (!allRows.length || !keys.length) {
    note.textContent = "";
    emptyChart(el, allRows.length ? "No parameters to draw." : "No final results yet.");
    return;
  }
  const kept = best(allRows, percent, mode);
  const rows = sample(kept, SAMPLE_LIMIT, mode);
  const shown = keys.filter((k) => !hidden.has(k));
  const small = narrow();
  const dimensions = shown.map((k) => {
    const a = axis(rows.map((r) => r.params[k]), space[k]);
    const name = small ? shorten(k, 10) : k;
    return a.numeric
      ? {label: a.log ? `log10(${name})` : name, values: a.values}
      : {label: name, values: a.values, tickvals: a.categories.map((c, i) => i),
         ticktext: a.categories.map((c) => shorten(c, small ? 8 : 18))};
  });
  const metric = rows.map((r) => r.metric);
  dimensions.push({label: "metric", values: metric});
  const count = rows.length === kept.length ? `${rows.length}` : `${rows.length} of ${kept.length}`;
  note.textContent = `${count} results${percent < 100 ? ` (the best ${percent}% of ${allRows.length})` : ""}; `
    + `${mode === "minimize" ? "dark" : "bright"} lines are the better ones. Drag along an axis to filter.`;
  await plot(el, [{type: "parcoords", dimensions, labelangle: small ? -30 : 0, labelside: "top",
    line: {color: metric, colorscale: "Viridis", reversescale: mode === "minimize", showscale: !small,
           colorbar: {title: {text: "metric"}, thickness: 12}}}],
  {margin: small ? {l: 30, r: 30, t: 60, b: 20} : {l: 70, r: 70, t: 50, b: 30}});
}

async function drawDuration(el, trials) {
  const n = trials.trialJobId.length;
  const now = Date.now();
  const x = [];
  const y = [];
  const statuses = [];
  const text = [];
  const customdata = [];
  for (let i = 0; i < n; i++) {
    if (!trials.startTime[i]) continue;
    x.push(trials.sequenceId[i]);
    y.push(((trials.endTime[i] || now) - trials.startTime[i]) / 1000);
    statuses.push(trials.status[i]);
    text.push(`trial ${trials.trialJobId[i]} (#${trials.sequenceId[i]}, ${trials.status[i]})`);
    customdata.push(trials.trialJobId[i]);
  }
  if (!x.length) {
    emptyChart(el, "No trial has started yet.");
    return;
  }
  // One trace per state: the legend says what each colour means.
  const states = [...new Set(statuses)];
  const many = x.length > 2000;
  const traces = states.map((state) => {
    const pick = (list) => list.filter((_, i) => statuses[i] === state);
    const color = STATUS_COLORS[state] || "#888";
    return {...(many ? {type: scatterType(x.length), mode: "markers", marker: {color, size: 4}}
      : {type: "bar", marker: {color}, textposition: "none"}),
    name: state, x: pick(x), y: pick(y), text: pick(text), customdata: pick(customdata),
    hovertemplate: "%{text}<br>%{y:.1f} s<extra></extra>"};
  });
  el.dataset.states = states.join(",");
  await plot(el, traces, {xaxis: trialAxis("trial number", x[x.length - 1] + 1), yaxis: {title: {text: "seconds"}},
    bargap: 0.1, barmode: "overlay", showlegend: true});
  linkPoints(el);
}

async function drawImportance(el, note, answer) {
  if (answer.note || !answer.parameters.length) {
    note.textContent = "";
    emptyChart(el, `Not computed yet: ${answer.note || "no parameters"}.`);
    return;
  }
  const params = [...answer.parameters].reverse();   // plotly draws bars bottom-up
  await plot(el, [{type: "bar", orientation: "h", x: params.map((p) => p.importance), y: params.map((p) => p.name),
    marker: {color: "#24527a"},
    text: params.map((p) => (p.spearman === null ? p.kind : `ρ ${formatNumber(p.spearman)}`)),
    hovertemplate: "%{y}: %{x:.3f}<br>%{text}<extra></extra>"}],
  {xaxis: {title: {text: "share of metric variance explained alone"}, range: [0, 1]},
   yaxis: {automargin: true}, margin: {l: 20, r: 20, t: 10, b: 45}});
  note.textContent = `From ${answer.n} final results. Method: ${answer.method}. Only main effects, not interactions; `
    + "a rough guide with few results. ρ: Spearman correlation (sign = direction).";
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
  note.textContent = rows.length
    ? `Colour: trial number (dark early, yellow late).${rows.length < allRows.length ? ` ${rows.length} of ${allRows.length} results shown.` : ""}`
    : (keys.length ? "No final results yet." : "No parameters yet.");
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (!rows.length) {
      emptyChart(wanted[i], `${k}: no final results yet.`);
      continue;
    }
    const a = axis(rows.map((r) => r.params[k]), space[k]);
    const x = a.numeric ? rows.map((r) => r.params[k]) : a.names;
    const el = await plot(wanted[i], [{type: scatterType(rows.length), mode: "markers", x, y: rows.map((r) => r.metric),
      customdata: rows.map((r) => r.trial), text: rows.map(label),
      hovertemplate: `%{text}<br>${k} %{x}<br>metric %{y}<extra></extra>`,
      marker: {size: rows.length > 2000 ? 3 : 6, color: rows.map((r) => r.seq), colorscale: "Viridis", opacity: 0.85,
               showscale: true, colorbar: {title: {text: "trial #", side: "right"}, thickness: 8, len: 0.9, tickformat: "d"}}}],
    {title: {text: k, font: {size: 13}}, margin: {l: 50, r: 10, t: 30, b: 35},
     xaxis: {type: a.numeric ? (a.log ? "log" : "linear") : "category", automargin: true,
             ...(a.numeric ? {} : {categoryorder: "category ascending",
                                   tickangle: a.categories.some((c) => c.length > 6) ? -30 : 0})},
     yaxis: {title: {text: "metric"}, automargin: true}});
    if (el) linkPoints(el);
    if (i + 1 < keys.length) await idle();
  }
}
