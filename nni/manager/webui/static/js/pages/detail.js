// Trial detail: state and times, every parameter set (multi-phase trials have several),
// final results, intermediate results as a curve, the tail of stdout/stderr, the trial's directory.

import { ApiError, get, killTrial, query } from "../api.js";
import {
  ACTIVE, decodeMetric, fill, formatDuration, formatMetric, formatTime, formatValue, h, scalar, statusChip, trialSeconds,
} from "../dom.js";
import { emptyChart, plot, trialAxis } from "../plot.js";

const LOG_START = 64 * 1024;
const LOG_MAX = 1024 * 1024;

export function create(ctx) {
  const id = ctx.arg;
  const head = h("div", {class: "card section", id: "trial-head"});
  const phases = h("div", {class: "card", id: "trial-parameters"});
  const chartBox = h("div", {class: "chart", id: "chart-trial-intermediate"});
  const chartNote = h("div", {class: "note"});
  const keySelect = h("select", {id: "intermediate-key", hidden: true, onchange: () => drawCurve()});
  const logView = h("pre", {class: "log", id: "trial-log"});
  const logInfo = h("div", {class: "note", id: "trial-log-info"});
  const log = {stream: "stdout", bytes: LOG_START};
  const tabs = ["stdout", "stderr"].map((stream) => h("button", {class: stream === log.stream ? "active" : "",
    dataset: {stream}, onclick: () => { log.stream = stream; log.bytes = LOG_START; showTabs(); loadLog(); }}, stream));
  const more = h("button", {id: "log-more", onclick: () => { log.bytes = Math.min(LOG_MAX, log.bytes * 4); loadLog(); }},
    "Show more");

  fill(ctx.root,
    head,
    h("div", {class: "grid wide"},
      phases,
      h("div", {class: "card"}, h("div", {class: "tabs"}, h("h2", {style: {margin: 0, flex: 1}}, "Intermediate results"), keySelect),
        chartBox, chartNote)),
    h("div", {class: "card section"},
      h("div", {class: "tabs"}, h("h2", {style: {margin: "0 12px 0 0"}}, "Log"), tabs,
        h("span", {style: {flex: 1}}), more, h("button", {onclick: () => loadLog()}, "Reload"),
        ["stdout", "stderr"].map((stream) => h("a", {class: "button", id: `download-${stream}`, download: `${id}-${stream}.log`,
          href: `/api/v1/nni/ui/trials/${encodeURIComponent(id)}/log?stream=${stream}&download=1`,
          title: `The whole ${stream} file`}, `⬇ ${stream}`))),
      logInfo, logView));

  let trial = null;
  let intermediate = [];

  function showTabs() {
    for (const tab of tabs) tab.classList.toggle("active", tab.dataset.stream === log.stream);
  }

  async function loadLog() {
    const answer = await get(`/ui/trials/${encodeURIComponent(id)}/log${query({stream: log.stream, bytes: log.bytes})}`);
    const atBottom = logView.scrollTop + logView.clientHeight >= logView.scrollHeight - 4;
    logView.textContent = answer.exists ? (answer.text || "(empty)") : "(no such file yet)";
    if (atBottom) logView.scrollTop = logView.scrollHeight;
    logInfo.textContent = `${answer.path} · ${answer.size} bytes`
      + (answer.truncated ? ` · showing the last ${Math.round(log.bytes / 1024)} KiB` : "");
    more.hidden = !answer.truncated || log.bytes >= LOG_MAX;
  }

  function drawCurve() {
    const key = keySelect.value || "default";
    const byParameter = new Map();
    for (const m of intermediate) {
      const value = decodeMetric(m.data);
      const y = key === "default" ? scalar(value) : (value && typeof value === "object" ? value[key] : null);
      if (typeof y !== "number") continue;
      if (!byParameter.has(m.parameterId)) byParameter.set(m.parameterId, {x: [], y: []});
      byParameter.get(m.parameterId).x.push(m.sequence);
      byParameter.get(m.parameterId).y.push(y);
    }
    const traces = [...byParameter.entries()].map(([parameterId, series]) => ({
      type: "scatter", mode: "lines+markers", x: series.x, y: series.y, name: `parameter ${parameterId}`,
    }));
    chartNote.textContent = "";
    if (!traces.length) {
      const status = trial && trial.status;
      emptyChart(chartBox, status === "FAILED" ? "No intermediate results: the trial failed before reporting any (see its stderr below)."
        : ACTIVE.has(status) ? "No intermediate results yet." : "This trial reported no intermediate results.");
      return null;
    }
    const steps = Math.max(...traces.map((t) => t.x.length));
    return plot(chartBox, traces, {xaxis: trialAxis("step", steps), yaxis: {title: {text: key}},
      showlegend: traces.length > 1});
  }

  function render() {
    const t = trial;
    const active = ACTIVE.has(t.status);
    fill(head,
      h("div", {class: "tabs"},
        h("h1", {style: {margin: 0, flex: 1}}, `Trial ${t.trialJobId} `, h("span", {class: "muted"}, `#${t.sequenceId}`), " ",
          statusChip(t.status)),
        active && !ctx.readOnly ? h("button", {class: "danger", id: "kill-trial", onclick: kill}, "Kill trial") : null),
      h("table", {class: "kv"},
        row("Submitted", formatTime(t.submitTime)),
        row("Started", formatTime(t.startTime)),
        row("Ended", formatTime(t.endTime)),
        row("Duration", formatDuration(trialSeconds(t.startTime, t.endTime))),
        t.exitCode !== undefined ? row("Exit code", String(t.exitCode)) : null,
        t.message ? row("Message", h("pre", {id: "trial-message"}, t.message)) : null,
        row("Directory", h("span", {class: "path"}, h("code", {id: "trial-dir"}, t.trialDir || "–"),
          navigator.clipboard && t.trialDir ? h("button", {class: "small", onclick: () =>
            navigator.clipboard.writeText(t.trialDir).then(() => ctx.toast("Path copied."))}, "Copy") : null))));

    const finals = new Map((t.finalMetricData || []).map((m) => [m.parameterId, decodeMetric(m.data)]));
    const sets = (t.hyperParameters || []).map((text) => JSON.parse(text));
    fill(phases, h("h2", {}, sets.length > 1 ? `Parameters (${sets.length} parameter sets)` : "Parameters"),
      sets.length ? sets.map((set) => h("div", {class: "phase", dataset: {parameterIndex: set.parameter_index}},
        sets.length > 1 || set.parameter_index ? h("h3", {}, `Phase ${set.parameter_index} · parameter id ${set.parameter_id}`,
          " ", set.status ? statusChip(set.status) : null) : null,
        h("table", {class: "kv"},
          Object.entries(set.parameters || {}).map(([k, v]) => row(k, h("code", {}, formatValue(v)))),
          row("Final result", h("strong", {class: "final-result"},
            finals.has(String(set.parameter_id)) ? formatMetric(finals.get(String(set.parameter_id))) : "–")))))
        : h("p", {class: "muted"}, "No parameters yet."));

    const keys = new Set(["default"]);
    for (const m of intermediate) {
      const value = decodeMetric(m.data);
      if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) if (typeof v === "number") keys.add(k);
    }
    const chosen = keySelect.value || "default";
    fill(keySelect, [...keys].map((k) => h("option", {value: k, selected: k === chosen ? "selected" : null}, k)));
    keySelect.hidden = keys.size < 2;
  }

  async function kill() {
    await killTrial(ctx, id);
    page.refresh();
  }

  let finished = false;   // an ended trial does not change: later refreshes skip the fetches
  const page = {
    async refresh() {
      if (finished && trial) return;
      try {
        [trial, intermediate] = await Promise.all([
          get(`/trial-jobs/${encodeURIComponent(id)}`),
          get(`/metric-data/${encodeURIComponent(id)}`).then((all) => all.filter((m) => m.type === "PERIODICAL")),
        ]);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          fill(ctx.root, h("div", {class: "card empty"}, `No trial ${id} in this experiment. `,
            h("a", {href: "#/trials"}, "All trials")));
          finished = true;
          return;
        }
        throw error;
      }
      render();
      await Promise.all([drawCurve(), loadLog()]);
      finished = !ACTIVE.has(trial.status);
    },
  };
  return page;
}

function row(label, value) {
  return h("tr", {}, h("th", {}, label), h("td", {}, value));
}
