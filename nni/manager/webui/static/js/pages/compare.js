// Compare the trials selected on the Trials page: side-by-side parameters and results,
// and their intermediate results overlaid.

import { get, query } from "../api.js";
import { decodeMetric, fill, formatDuration, formatValue, h, scalar, statusChip, trialSeconds } from "../dom.js";
import { emptyChart, plot, trialAxis } from "../plot.js";

export function create(ctx) {
  const ids = (ctx.params.get("ids") || "").split(",").filter(Boolean);
  const table = h("table", {id: "compare-table"});
  const chart = h("div", {class: "chart tall", id: "chart-compare"});
  fill(ctx.root,
    h("div", {class: "card section"}, h("h1", {}, h("a", {href: "#/trials", id: "compare-back", title: "Back to the trials",
      onclick: (event) => { if (history.length > 1) { event.preventDefault(); history.back(); } }}, "‹ Trials"),
    ` · Compare ${ids.length} trials`), h("div", {class: "table-wrap"}, table)),
    h("div", {class: "card"}, h("h2", {}, "Intermediate results"), chart));

  return {
    minInterval: 1000,
    async refresh() {
      if (!ids.length) {
        fill(table, h("tr", {}, h("td", {class: "empty"}, "Select trials on the ", h("a", {href: "#/trials"}, "Trials"),
          " page first.")));
        return;
      }
      const [trials, curves] = await Promise.all([
        Promise.all(ids.map((id) => get(`/trial-jobs/${encodeURIComponent(id)}`).catch(() => null))),
        get(`/ui/intermediate${query({trials: ids.join(",")})}`),
      ]);
      const known = trials.filter(Boolean);
      const params = (t) => {
        const sets = (t.hyperParameters || []).map((text) => JSON.parse(text));
        return sets.length ? sets[sets.length - 1].parameters || {} : {};
      };
      const final = (t) => {
        const list = t.finalMetricData || [];
        return list.length ? decodeMetric(list[list.length - 1].data) : null;
      };
      const paramKeys = [...new Set(known.flatMap((t) => Object.keys(params(t))))];
      const metricKeys = [...new Set(known.flatMap((t) => {
        const value = final(t);
        return value && typeof value === "object" ? Object.keys(value).filter((k) => k !== "default") : [];
      }))];
      const line = (label, cell) => h("tr", {}, h("th", {}, label), known.map((t) => h("td", {}, cell(t))));
      fill(table,
        line("Trial", (t) => h("a", {href: `#/trial/${encodeURIComponent(t.trialJobId)}`}, t.trialJobId)),
        line("Status", (t) => statusChip(t.status)),
        line("#", (t) => t.sequenceId),
        paramKeys.map((k) => line(k, (t) => formatValue(params(t)[k]))),
        line("Metric", (t) => h("strong", {}, formatValue(scalar(final(t))))),
        metricKeys.map((k) => line(k, (t) => formatValue((final(t) || {})[k]))),
        line("Duration", (t) => formatDuration(trialSeconds(t.startTime, t.endTime))));
      const traces = curves.series.map((s) => ({
        type: "scatter", mode: "lines+markers", x: s.sequence, y: s.value, customdata: s.sequence.map(() => s.trialJobId),
        name: s.parameterIndex ? `${s.trialJobId} (phase ${s.parameterIndex})` : s.trialJobId,
      }));
      if (!traces.length) {
        emptyChart(chart, "None of these trials reported intermediate results.");
        return;
      }
      await plot(chart, traces, {xaxis: trialAxis("step", Math.max(...traces.map((t) => t.x.length))),
        yaxis: {title: {text: "intermediate result"}}, showlegend: true});
    },
  };
}
