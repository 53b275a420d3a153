// Overview: status, progress against the limits, counts by state, best result, the metric
// chart and the top trials, controls, search space and config.

import { get, put, query } from "../api.js";
import {
  ENDED_EXPERIMENT, STATES, fill, formatDuration, formatNumber, formatValue, h, progressBar, statusChip,
} from "../dom.js";
import { drawMetric, seriesRows } from "./charts.js";
import { importedSummary } from "./imported.js";

const TOP_TRIALS = 10;
const CHART_INTERVAL = 3000;   // the metric chart needs every result: redrawn at most this often

const CONTROLS = [
  {key: "concurrency", label: "Trial concurrency", field: "trialConcurrency", update: "TRIAL_CONCURRENCY",
   type: "number", parse: (text) => Number(text)},
  {key: "max-trials", label: "Max trial number", field: "maxTrialNumber", update: "MAX_TRIAL_NUM",
   type: "number", parse: (text) => Number(text)},
  {key: "max-duration", label: "Max duration", field: "maxExperimentDuration", update: "MAX_EXEC_DURATION",
   type: "text", placeholder: "e.g. 90m, 2h, 3600", parse: (text) => (/^\d+(\.\d+)?$/.test(text) ? Number(text) : text),
   show: (seconds) => (seconds ? formatDuration(seconds) : "none")},
];

export function create(ctx) {
  const cards = {
    status: h("div", {class: "card", id: "card-status"}),
    trials: h("div", {class: "card", id: "card-trials"}),
    duration: h("div", {class: "card", id: "card-duration"}),
    best: h("div", {class: "card", id: "card-best"}),
  };
  const counts = h("div", {class: "counts", id: "state-counts"});
  const imported = h("div", {id: "imported"});   // imported results (warm start): imported.js
  const space = h("div", {class: "table-wrap"});
  const config = h("pre", {id: "config"});
  const controls = ctx.readOnly ? null : buildControls(ctx, () => page.refresh());
  const chart = h("div", {class: "chart", id: "overview-metric"});
  const chartNote = h("div", {class: "note"});
  const top = h("table", {id: "top-trials"});
  // Trials that ended without report_final_result(): the tuner learned nothing from them.
  const warning = h("div", {class: "warning", id: "without-final", role: "alert", hidden: true});
  fill(ctx.root,
    warning,
    h("div", {class: "grid"}, cards.status, cards.trials, cards.duration, cards.best),
    h("div", {class: "card section"}, h("h2", {}, "Trials by state"), counts),
    imported,
    h("div", {class: "grid wide"},
      h("div", {class: "card"}, h("h2", {}, "Default metric by trial"), chart, chartNote),
      h("div", {class: "card"}, h("h2", {}, `Top ${TOP_TRIALS} trials`), h("div", {class: "table-wrap"}, top))),
    controls,
    h("div", {class: "grid wide"},
      h("div", {class: "card"}, h("h2", {}, "Search space"), space),
      h("div", {class: "card"}, h("details", {open: true}, h("summary", {}, h("strong", {}, "Configuration")), config))));

  let info = null;
  let fetchedAt = 0;
  // The elapsed time ticks here between updates from the manager.
  const ticker = setInterval(() => {
    const gone = document.body.classList.contains("disconnected");   // do not count time we cannot vouch for
    if (info && !ctx.readOnly && !gone && !ENDED_EXPERIMENT.has(info.status)) renderDuration();
  }, 1000);

  function renderDuration() {
    const elapsed = info.elapsed + (ENDED_EXPERIMENT.has(info.status) ? 0 : (Date.now() - fetchedAt) / 1000);
    const max = info.maxExperimentDuration;
    fill(cards.duration,
      h("h2", {}, "Duration"),
      h("div", {class: "big", id: "elapsed"}, formatDuration(elapsed)),
      max ? progressBar(elapsed / max, "duration-progress") : null,
      h("div", {class: "muted small"}, max ? `of ${formatDuration(max)} maximum` : "no maximum duration"));
  }

  let chartAt = 0;
  let chartTime = 0;
  let chartVersion = null;
  const page = {
    async refresh() {
      info = await ctx.take("/ui/overview");   // the first time: the app's own, just fetched
      fetchedAt = Date.now();
      ctx.showExperiment(info);
      render(info);
      // The chart reads every result: not more often than every few seconds, and only on news.
      // (100,000 results take a while to fetch and draw: then less often still.)
      const key = `${info.finalResults}/${info.status}`;
      const interval = Math.max(CHART_INTERVAL, 3 * chartTime);
      const chartDue = key !== chartVersion && Date.now() - chartAt >= interval;
      if (chartDue) {
        chartAt = Date.now();
        chartVersion = key;
      } else if (key !== chartVersion) {
        setTimeout(() => ctx.refreshSoon(), interval);
      }
      // The chart's data is asked for first (the server answers in order) and is only what it
      // draws; the top trials beside it. Each is drawn as it comes.
      const series = chartDue ? ctx.take("/ui/metric-series") : null;
      const best = get(`/ui/trials${query({sort: "metric", order: info.optimizeMode === "minimize" ? "asc" : "desc",
        limit: TOP_TRIALS, filter: "metric>=-1e308" + (((info.config || {}).constraints || []).length ? " feasible=yes" : "")})}`);
      const drawChart = async () => {
        if (!series) return;
        await drawMetric(chart, chartNote, seriesRows(await series), info.optimizeMode, ctx);
        chartTime = Date.now() - chartAt;
      };
      const drawTop = async () => {
        renderTop(await best, info);
        if (((info.config || {}).objectives || []).length) {   // multi-objective: the front's size
          const front = await get("/pareto-front");
          cards.best.append(h("div", {class: "small", id: "pareto-size"}, "Pareto front: ",
            h("a", {href: "#/pareto"}, `${front.length} result${front.length === 1 ? "" : "s"}`)));
        }
      };
      // Both run to the end (no promise is left unobserved); the first failure is reported.
      const outcomes = await Promise.allSettled([drawChart(), drawTop()]);
      const failed = outcomes.find((o) => o.status === "rejected");
      if (failed) throw failed.reason;
    },
    unmount() { clearInterval(ticker); },
  };

  function renderTop(answer, o) {
    const keys = answer.parameterKeys;
    // Every key of the results (each objective of a multi-objective experiment) has a column.
    const results = resultKeys(o, answer.metricKeys);
    fill(top,
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Trial"), h("th", {class: "num"}, "Metric"),
        results.map((k) => h("th", {class: "num", dataset: {metric: k}}, keys.includes(k) ? `${k} (result)` : k)),
        keys.map((k) => h("th", {}, k)))),
      h("tbody", {}, answer.trials.length ? answer.trials.map((t) => h("tr", {dataset: {trialId: t.trialJobId}},
        h("td", {class: "num"}, t.sequenceId),
        h("td", {}, h("a", {href: `#/trial/${encodeURIComponent(t.trialJobId)}`}, t.trialJobId)),
        h("td", {class: "num"}, formatNumber(t.metric)),
        results.map((k) => h("td", {class: "num", dataset: {metric: k}},
          formatValue(t.final && typeof t.final === "object" ? t.final[k] : null))),
        keys.map((k) => h("td", {}, formatValue((t.parameters || {})[k])))))
        : h("tr", {}, h("td", {colspan: 3 + results.length + keys.length, class: "empty"},
          o.status === "RUNNING" ? "No final result yet: the first trials are running." : "No final results."))));
  }

  function render(o) {
    fill(cards.status,
      h("h2", {}, "Experiment"),
      h("div", {class: "big"}, statusChip(o.status)),
      h("div", {class: "muted small"}, `${o.name ? o.name + " · " : ""}${o.id}`),
      h("div", {class: "muted small"}, `optimize mode: ${o.optimizeMode}`),
      h("div", {class: "small"}, h("a", {href: "/api/v1/nni/ui/manager-log", download: `${o.id}-nnimanager.log`,
        id: "download-manager-log", title: "The manager's log (log/nnimanager.log)"}, "⬇ manager log")),
      o.errors.length ? h("pre", {class: "errors"}, o.errors.join("\n\n")) : null);

    const max = o.maxTrialNumber;
    const running = o.counts.RUNNING || 0;
    const waiting = o.counts.WAITING || 0;
    fill(cards.trials,
      h("h2", {}, "Trials"),
      h("div", {class: "big", id: "trials-done"}, `${o.limitDone} / ${max ?? "∞"}`),
      max ? progressBar(o.limitDone / max, "trial-progress") : null,
      h("div", {class: "muted small"},
        `${o.limitUnit} done · ${o.trialsSubmitted} trials submitted · ${running} running · ${waiting} waiting`));

    renderDuration();

    const withoutFinal = o.withoutFinal || 0;
    warning.hidden = !withoutFinal;
    if (withoutFinal) {
      fill(warning, h("strong", {}, `${withoutFinal} trial${withoutFinal === 1 ? "" : "s"} ended without `,
        h("code", {}, "report_final_result()")), ": ",
        `the tuner learned nothing from ${withoutFinal === 1 ? "it" : "them"}. `,
        "Each trial should call nni.report_final_result(value) once before it exits.");
    }

    const best = o.best;
    const objectives = (o.config || {}).objectives || [];
    const bestValue = best && best.value && typeof best.value === "object" ? best.value : {};
    fill(cards.best,
      h("h2", {}, objectives.length ? `Best ${objectives[0].metric} (${objectives[0].mode})` : `Best metric (${o.optimizeMode})`),
      best
        ? [h("div", {class: "big", id: "best-metric"}, formatNumber(best.metric)),
           // A multi-objective result: every objective of the trial, not only the first.
           objectives.length ? h("table", {class: "kv small objectives", id: "best-objectives"},
             objectives.map((ob) => h("tr", {}, h("th", {}, `${ob.metric} (${ob.mode === "maximize" ? "max" : "min"})`),
               h("td", {}, formatValue(bestValue[ob.metric]))))) : null,
           h("div", {class: "small"}, "trial ", h("a", {href: `#/trial/${encodeURIComponent(best.trialJobId)}`},
             best.trialJobId), ` (#${best.sequenceId}${best.parameterIndex ? `, phase ${best.parameterIndex}` : ""})`),
           h("table", {class: "kv small"}, Object.entries(best.parameters || {}).map(
             ([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, formatValue(v)))))]
        : h("div", {class: "muted", id: "best-metric"}, "no final result yet"));

    fill(counts, STATES.map((state) => {
      const n = o.counts[state] || 0;
      return h("a", {class: `count${n ? "" : " zero"}`, id: `count-${state}`, href: `#/trials?status=${state}`},
        statusChip(state), h("span", {class: "num"}, n));
    }));

    fill(imported, importedSummary(o));
    if (controls) controls.update(o);

    fill(space, h("table", {id: "search-space"},
      h("tr", {}, h("th", {}, "Parameter"), h("th", {}, "Type"), h("th", {}, "Values")),
      Object.entries(o.searchSpace).map(([name, spec]) => h("tr", {},
        h("td", {}, h("code", {}, name)),
        h("td", {}, spec && spec._type),
        h("td", {}, h("code", {}, JSON.stringify(spec && spec._value)))))));
    config.textContent = JSON.stringify(o.config, null, 2);
  }

  return page;
}

/** The result keys the tables show besides the default metric: the objectives first (a
 *  multi-objective experiment), then any other key the final results hold. */
export function resultKeys(overview, metricKeys) {
  const objectives = (((overview || {}).config || {}).objectives || []).map((o) => o.metric);
  return [...objectives, ...(metricKeys || []).filter((k) => !objectives.includes(k))];
}

/** The three limit controls; each saves through PUT /experiment?update_type=... */
function buildControls(ctx, refresh) {
  const message = h("div", {class: "message", id: "ctl-message"});
  const rows = CONTROLS.map((control) => {
    const input = h("input", {id: `ctl-${control.key}`, type: control.type, min: control.type === "number" ? 1 : null,
      placeholder: control.placeholder || "", required: true});
    const current = h("span", {class: "current", id: `ctl-${control.key}-current`});
    const form = h("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        const value = control.parse(text);
        try {
          const before = ctx.experiment && ctx.experiment.status;
          await put(`/experiment?update_type=${control.update}`, {params: {[control.field]: value}});
          const after = (await get("/check-status")).status;
          message.className = "message ok";
          message.textContent = `${control.label} set to ${text}.`
            + (ENDED_EXPERIMENT.has(before) && after === "RUNNING" ? " The experiment continues." : "");
          input.value = "";
          refresh();
        } catch (error) {
          message.className = "message error";
          message.textContent = `${control.label}: ${error.message}`;
        }
      },
    }, h("label", {for: `ctl-${control.key}`}, control.label), input,
    h("button", {type: "submit", class: "primary", id: `ctl-${control.key}-save`}, "Set"), current);
    return {control, form, current};
  });
  const card = h("div", {class: "card section controls", id: "controls"},
    h("h2", {}, "Change limits"), rows.map((r) => r.form), message);
  card.update = (o) => {
    for (const {control, current} of rows) {
      const value = o[control.field];
      current.textContent = `now: ${control.show ? control.show(value) : (value ?? "none")}`;
    }
  };
  return card;
}
