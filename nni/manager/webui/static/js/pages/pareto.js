// Pareto front (multi-objective experiments, config `objectives`): every result that holds
// all objectives, the front highlighted and dominated results dimmed (2 objectives: one
// scatter; 3+: a scatter matrix), the best of each objective on the front, the front's
// hypervolume as results arrived, and the front as a table sortable by each objective.
//
// The front and hypervolume come from GET /pareto-front[/hypervolume] (worked out by the
// manager's Pareto worker process, off its event loop). Names come from the experiment and
// are put on the page as text (h() makes text nodes), never as HTML.

import { get } from "../api.js";
import { fill, formatNumber, h } from "../dom.js";
import { emptyChart, linkPoints, narrow, plot } from "../plot.js";

/** A stored value decoded: export rows hold the result as JSON text (sometimes twice). */
function decode(value) {
  while (typeof value === "string") {
    try { value = JSON.parse(value); } catch { break; }
  }
  return value;
}

/** Rows holding every objective as a finite number, with their values in objective order. */
function fitting(rows, objectives) {
  const out = [];
  for (const row of rows) {
    const value = decode(row.value);
    if (!value || typeof value !== "object") continue;
    const values = objectives.map((o) => value[o.metric]);
    if (values.every((v) => typeof v === "number" && Number.isFinite(v))) out.push({...row, values});
  }
  return out;
}

/** A result's identity across the export and the Pareto routes' rows. */
const key = (r) => `${r.trialJobId}/${r.parameterId}`;
const label = (o) => `${o.metric} (${o.mode === "maximize" ? "max" : "min"})`;
const trialLink = (id) => h("a", {href: `#/trial/${encodeURIComponent(id)}`}, id);
// plotly reads a few HTML tags in hover text (<br>, <b>, ...): names and values are escaped.
const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function create(ctx) {
  const summary = h("p", {id: "summary", class: "muted"}, "Loading…");
  const best = h("div", {id: "best"});
  const chart = h("div", {class: "chart tall", id: "chart"});
  const hv = h("div", {class: "chart", id: "hv"});
  const table = h("table", {id: "front"});
  fill(ctx.root,
    h("div", {class: "card section"}, h("h1", {}, "Pareto front"), summary, best),
    h("div", {class: "grid wide"},
      h("div", {class: "card"}, h("h2", {}, "Results by objective"), chart,
        h("div", {class: "note"}, "Red: the front (no other result beats it on every objective); grey: dominated. "
          + "Click a point to open its trial.")),
      h("div", {class: "card"}, h("h2", {}, "Hypervolume of the front"), hv)),
    h("div", {class: "card section"}, h("h2", {}, "Results on the front"), h("div", {class: "table-wrap"}, table)));

  let sortKey = null;
  let sortDesc = false;
  let objectives = [];
  let constraints = [];   // config `constraints`: infeasible results are drawn apart, never on the front
  let infeasibleKeys = new Set();   // from the server (GET /pareto-front/infeasible): the rule is nni/_constraints.py's
  let front = [];

  function renderBest() {
    if (!front.length) { best.replaceChildren(); return; }
    // The best of each objective among the front: a result that is best on one objective but
    // tied there with a result better on another is dominated, and is not the one to name.
    const items = objectives.map((o, i) => {
      const better = o.mode === "maximize" ? (a, b) => a > b : (a, b) => a < b;
      const top = front.reduce((a, b) => (better(b.values[i], a.values[i]) ? b : a));
      return h("li", {dataset: {trialId: top.trialJobId}}, `best ${o.metric}: `,
        h("strong", {}, formatNumber(top.values[i])), " (trial ", trialLink(top.trialJobId), ")");
    });
    fill(best, h("ul", {id: "best-list"}, items));
  }

  function renderTable() {
    const rows = [...front];
    if (sortKey !== null) rows.sort((a, b) => (sortDesc ? -1 : 1) * (a.values[sortKey] - b.values[sortKey]));
    const head = objectives.map((o, i) => h("th", {class: "sortable num", dataset: {key: i}, title: `Sort by ${o.metric}`,
      onclick: () => {
        sortDesc = sortKey === i ? !sortDesc : false;
        sortKey = i;
        renderTable();
      }}, o.metric, sortKey === i ? h("span", {class: "arrow"}, sortDesc ? "▼" : "▲") : null));
    fill(table, h("thead", {}, h("tr", {}, h("th", {}, "trial"), head, h("th", {}, "parameters"))),
      h("tbody", {}, rows.map((r) => h("tr", {dataset: {trialId: r.trialJobId}},
        h("td", {}, trialLink(r.trialJobId)),
        r.values.map((v) => h("td", {class: "num"}, formatNumber(v))),
        h("td", {}, h("code", {}, JSON.stringify(r.parameter)))))));
  }

  async function draw(all) {
    const onFront = new Set(front.map(key));
    const bad = all.filter((r) => infeasibleKeys.has(key(r)));
    const dominated = all.filter((r) => !onFront.has(key(r)) && !infeasibleKeys.has(key(r)));
    const text = (rows) => rows.map((r) => `trial ${escapeHtml(r.trialJobId)}<br>${escapeHtml(JSON.stringify(r.parameter))}`);
    const ids = (rows) => rows.map((r) => r.trialJobId);
    if (!all.length) {
      emptyChart(chart, "No result holds every objective yet.");
    } else if (objectives.length === 2) {
      const sorted = [...front].sort((a, b) => a.values[0] - b.values[0]);
      await plot(chart, [
        {name: "dominated", x: dominated.map((r) => r.values[0]), y: dominated.map((r) => r.values[1]),
         text: text(dominated), customdata: ids(dominated), mode: "markers", type: "scatter",
         marker: {color: "#9aa5b1", opacity: 0.45, size: 7}},
        {name: "infeasible", x: bad.map((r) => r.values[0]), y: bad.map((r) => r.values[1]),
         text: text(bad), customdata: ids(bad), mode: "markers", type: "scatter",
         marker: {color: "#e8871e", opacity: 0.6, size: 7, symbol: "x"}, visible: bad.length ? true : "legendonly"},
        {name: "Pareto front", x: sorted.map((r) => r.values[0]), y: sorted.map((r) => r.values[1]),
         text: text(sorted), customdata: ids(sorted), mode: "lines+markers", type: "scatter",
         line: {shape: "hv", color: "#d62728"}, marker: {color: "#d62728", size: 9}},
      ], {xaxis: {title: {text: escapeHtml(label(objectives[0]))}}, yaxis: {title: {text: escapeHtml(label(objectives[1]))}}});
      linkPoints(chart);
    } else {
      const dims = (rows) => objectives.map((o, i) => ({label: escapeHtml(narrow() ? o.metric : label(o)),
        values: rows.map((r) => r.values[i])}));
      await plot(chart, [
        {name: "dominated", type: "splom", dimensions: dims(dominated), text: text(dominated), customdata: ids(dominated),
         marker: {color: "#9aa5b1", opacity: 0.45, size: 5}, diagonal: {visible: false}},
        {name: "infeasible", type: "splom", dimensions: dims(bad), text: text(bad), customdata: ids(bad),
         marker: {color: "#e8871e", opacity: 0.6, size: 5, symbol: "x"}, diagonal: {visible: false}},
        {name: "Pareto front", type: "splom", dimensions: dims(front), text: text(front), customdata: ids(front),
         marker: {color: "#d62728", size: 7}, diagonal: {visible: false}},
      ], {});
      linkPoints(chart);
    }
    chart.dataset.frontSize = String(front.length);
    chart.dataset.dominatedSize = String(dominated.length);
    chart.dataset.infeasibleSize = String(bad.length);
  }

  async function drawHypervolume(history) {
    const points = history.points || [];
    if (!points.length) emptyChart(hv, "No front yet.");
    else {
      await plot(hv, [{name: "hypervolume", x: points.map((p) => p.results), y: points.map((p) => p.hypervolume),
        mode: "lines+markers", type: "scatter", line: {color: "#1f77b4"}}],
      {xaxis: {title: {text: "results"}}, yaxis: {title: {text: "hypervolume"}}, showlegend: false});
    }
    hv.dataset.points = String(points.length);
  }

  return {
    minInterval: 3000,
    async refresh() {
      const info = ctx.experiment || await get("/ui/overview");
      objectives = ((info.config || {}).objectives) || [];
      constraints = ((info.config || {}).constraints) || [];
      if (!objectives.length) {
        summary.textContent = "This experiment has no objectives (config field 'objectives'): no Pareto front.";
        return;
      }
      const [rows, frontRows, history, badRows] = await Promise.all(
        [get("/export-data"), get("/pareto-front"), get("/pareto-front/hypervolume"),
          constraints.length ? get("/pareto-front/infeasible") : Promise.resolve([])]);
      const all = fitting(rows, objectives);
      front = fitting(frontRows, objectives);
      infeasibleKeys = new Set(badRows.map(key));
      summary.className = "";
      const bad = all.filter((r) => infeasibleKeys.has(key(r))).length;
      fill(summary, "Pareto front: ", h("strong", {id: "front-size"}, String(front.length)),
        ` of ${all.length} results (${objectives.map(label).join(", ")})`,
        ...(constraints.length ? ["; ", h("span", {id: "infeasible-count"}, `${bad} infeasible`),
          " (violate the constraints: never on the front)"] : []));
      renderBest();
      renderTable();
      await draw(all);
      await drawHypervolume(history);
    },
  };
}
