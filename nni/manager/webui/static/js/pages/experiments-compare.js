// 2-8 experiments side by side (#/experiments-compare?ids=A,B,...): the best result so far by
// trial number and by time since each was created, their best trials with parameters, and the
// config fields whose values differ. Read from each experiment's store by the server
// (/ui/experiments/compare); stopped experiments are read as they are, nothing is started.

import { get, query } from "../api.js";
import { fill, formatNumber, formatValue, h, statusChip } from "../dom.js";
import { emptyChart, plot, trialAxis } from "../plot.js";

const COLORS = ["#24527a", "#e3692b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export function create(ctx) {
  const ids = (ctx.params.get("ids") || "").split(",").filter(Boolean);
  const byTrial = h("div", {class: "chart", id: "chart-experiments-by-trial"});
  const byTime = h("div", {class: "chart", id: "chart-experiments-by-time"});
  const best = h("table", {id: "experiments-best"});
  const diff = h("table", {id: "experiments-diff"});
  const diffNote = h("div", {class: "note", id: "experiments-diff-note"});
  const configs = h("div", {class: "grid wide", id: "experiments-configs"});
  const back = h("a", {href: `#/experiments?selected=${ids.map(encodeURIComponent).join(",")}`}, "← all experiments");
  fill(ctx.root,
    h("div", {class: "card section"}, h("h1", {}, `${ids.length} experiments side by side`), back),
    h("div", {class: "grid wide"},
      h("div", {class: "card"}, h("h2", {}, "Best so far, by trial number"), byTrial),
      h("div", {class: "card"}, h("h2", {}, "Best so far, by time since created"), byTime)),
    h("div", {class: "card section"}, h("h2", {}, "Best trials"), h("div", {class: "table-wrap"}, best)),
    h("div", {class: "card section"}, h("h2", {}, "Config differences"), diffNote, h("div", {class: "table-wrap"}, diff),
      h("details", {}, h("summary", {}, "Whole configs"), configs)));

  return {
    minInterval: 5000,
    async refresh() {
      const answer = await get(`/ui/experiments/compare${query({ids: ids.join(",")})}`);
      const list = answer.experiments;
      const label = (e) => (e.name ? `${e.name} (${e.id})` : e.id);
      renderBest(best, list, label);
      renderDiff(diff, diffNote, list, answer.differences, label);
      fill(configs, list.map((e) => h("div", {dataset: {id: e.id}}, h("h3", {}, label(e)),
        h("pre", {class: "small"}, JSON.stringify(e.config, null, 2)))));
      await drawCurves(byTrial, list, label, "bestByTrial", trialAxis("trial number",
        Math.max(0, ...list.map((e) => e.bestByTrial.x[e.bestByTrial.x.length - 1] || 0)) + 1));
      const longest = Math.max(0, ...list.map((e) => e.bestByTime.x[e.bestByTime.x.length - 1] || 0));
      const [unit, divisor] = longest > 2 * 3600 ? ["hours", 3600] : longest > 600 ? ["minutes", 60] : ["seconds", 1];
      await drawCurves(byTime, list, label, "bestByTime", {title: {text: `${unit} since created`}}, divisor);
    },
  };
}

async function drawCurves(el, list, label, key, xaxis, divisor = 1) {
  const traces = list.filter((e) => e[key].x.length).map((e) => {
    const i = list.indexOf(e);
    const series = e[key];
    return {type: "scatter", mode: "lines+markers", name: label(e), x: series.x.map((x) => x / divisor), y: series.y,
      customdata: series.trial, line: {shape: "hv", color: COLORS[i % COLORS.length], width: 2},
      marker: {size: series.trial.map((t) => (t ? 6 : 0)), color: COLORS[i % COLORS.length]},
      hovertemplate: `${label(e)}<br>best %{y}<extra></extra>`};
  });
  if (!traces.length) {
    emptyChart(el, "None of these experiments has a final result yet.");
    return;
  }
  await plot(el, traces, {xaxis, yaxis: {title: {text: "best default metric"}}, showlegend: true});
}

function renderBest(table, list, label) {
  const keys = [...new Set(list.flatMap((e) => Object.keys((e.bestTrial && e.bestTrial.parameters) || {})))];
  fill(table,
    h("thead", {}, h("tr", {}, h("th", {}, "Experiment"), h("th", {}, "Status"), h("th", {}, "Tuner"),
      h("th", {class: "num"}, "Trials"), h("th", {class: "num"}, "Best metric"), h("th", {}, "Best trial"),
      keys.map((k) => h("th", {}, k)))),
    h("tbody", {}, list.map((e, i) => {
      const t = e.bestTrial;
      return h("tr", {dataset: {id: e.id}},
        h("td", {}, h("span", {class: "swatch", style: {display: "inline-block", width: "10px", height: "10px", borderRadius: "2px", background: COLORS[i % COLORS.length]}}), " ", label(e)),
        h("td", {}, statusChip(e.status)),
        h("td", {}, e.tuner || "–"),
        h("td", {class: "num"}, e.trials),
        h("td", {class: "num", dataset: {col: "best"}}, t ? formatNumber(t.metric) : "–",
          e.optimizeMode ? h("span", {class: "muted small"}, ` (${e.optimizeMode === "minimize" ? "min" : "max"})`) : null),
        h("td", {dataset: {col: "trial"}}, t ? `${t.trialJobId} (#${t.sequenceId})` : "–"),
        keys.map((k) => h("td", {}, t && t.parameters && k in t.parameters ? formatValue(t.parameters[k]) : "–")));
    })));
}

function renderDiff(table, note, list, differences, label) {
  note.textContent = differences.length
    ? `${differences.length} config fields differ (the experiment name aside); the others are the same.`
    : "The configs are the same (the experiment name aside).";
  fill(table,
    h("thead", {}, h("tr", {}, h("th", {}, "Field"), list.map((e) => h("th", {}, label(e))))),
    h("tbody", {}, differences.map((d) => h("tr", {dataset: {key: d.key}},
      h("td", {}, h("code", {}, d.key)),
      d.values.map((v) => h("td", {}, v === null || v === undefined ? h("span", {class: "muted"}, "(unset)")
        : typeof v === "object" ? h("code", {}, JSON.stringify(v)) : String(v)))))));
}
