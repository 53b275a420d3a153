// Trial detail: state and times, every parameter set (multi-phase trials have several),
// final results, intermediate results as a curve, the tail of stdout/stderr, the trial's directory.
//
// A trial that ran more than once (a retry, a user's re-run) shows its latest attempt: its
// status, duration and intermediate curve; the earlier attempts are one click away in the
// "Attempts" row, each labelled with how it ended and why.

import { ApiError, get, killTrial, query } from "../api.js";
import {
  ACTIVE, decodeMetric, fill, formatDuration, formatMetric, formatTime, formatValue, h, scalar, statusChip, trialSeconds,
} from "../dom.js";
import { emptyChart, plot, trialAxis } from "../plot.js";
import { failureSummary } from "./trials.js";

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
  // A failed trial's log opens on stderr (its traceback), decided once its status is known.
  const log = {stream: "stdout", bytes: LOG_START, chosen: false};
  const tabs = ["stdout", "stderr"].map((stream) => h("button", {class: stream === log.stream ? "active" : "",
    dataset: {stream}, onclick: () => { log.stream = stream; log.chosen = true; log.bytes = LOG_START; showTabs(); loadLog(); }}, stream));
  const more = h("button", {id: "log-more", onclick: () => { log.bytes = Math.min(LOG_MAX, log.bytes * 4); loadLog(); }},
    "Show more");

  const attemptsBox = h("div", {class: "attempts", id: "trial-attempts", hidden: true});
  fill(ctx.root,
    head,
    attemptsBox,
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
  let shownAttempt = null;   // the attempt number the page shows; null: the latest

  /** Every attempt of the trial, oldest first (a trial from an older store has none listed). */
  function attempts() {
    const list = (trial && trial.attempts) || [];
    return list.length ? list : [{attempt: 1, status: trial.status, submitTime: trial.submitTime,
      startTime: trial.startTime, endTime: trial.endTime}];
  }

  function currentAttempt() {
    const list = attempts();
    return list.find((a) => a.attempt === shownAttempt) || list[list.length - 1];
  }

  /** The intermediate results of one attempt: those that arrived after it was submitted and
   *  before the next one was (an earlier attempt's late reports are refused by the manager). */
  function attemptResults(attempt) {
    const list = attempts();
    const next = list.find((a) => a.attempt === attempt.attempt + 1);
    const from = list.length > 1 ? attempt.submitTime || 0 : -Infinity;
    const to = next ? next.submitTime : Infinity;
    return intermediate.filter((m) => m.timestamp >= from && m.timestamp < to);
  }

  function showTabs() {
    for (const tab of tabs) tab.classList.toggle("active", tab.dataset.stream === log.stream);
  }

  async function loadLog() {
    const runs = trial ? attempts().length : 1;
    // Several attempts append to one file: the server cuts out the shown attempt's part
    // (offsets recorded as each attempt was queued; a store from before has none).
    const params = {stream: log.stream, bytes: log.bytes, ...(runs > 1 ? {attempt: currentAttempt().attempt} : {})};
    const answer = await get(`/ui/trials/${encodeURIComponent(id)}/log${query(params)}`);
    const atBottom = logView.scrollTop + logView.clientHeight >= logView.scrollHeight - 4;
    const part = answer.attempt !== undefined ? {attempt: answer.attempt, text: answer.text}
      : answer.exists && runs > 1 && !answer.truncated ? attemptPart(answer.text || "") : null;
    logView.textContent = answer.exists ? ((part ? part.text : answer.text) || "(empty)") : "(no such file yet)";
    logView.dataset.attempt = part ? String(part.attempt) : "";
    if (atBottom) logView.scrollTop = logView.scrollHeight;
    logInfo.textContent = `${answer.path} · ${answer.size} bytes`
      + (answer.truncated ? ` · showing the last ${Math.round(log.bytes / 1024)} KiB` : "")
      + (part ? ` · attempt ${part.attempt}'s part of it (the file holds all ${runs} attempts; ⬇ ${log.stream} has the whole file)`
        : runs > 1 ? ` · the file holds all ${runs} attempts, oldest first: the latest attempt's output is at the end` : "");
    more.hidden = !answer.truncated || log.bytes >= LOG_MAX;
  }

  /** For a store without log offsets (written before they were recorded): the shown
   *  attempt's part of a stderr file that every attempt appended to, or null when it cannot
   *  be told. Where each earlier attempt's stderr ended is known from its end message, which
   *  quotes the last bytes of stderr at that moment ("; stderr tail:\n..."). */
  function attemptPart(text) {
    if (log.stream !== "stderr") return null;
    const list = attempts();
    const ends = [];
    let from = 0;
    for (const a of list.slice(0, -1)) {
      const marker = (a.reason || "").indexOf("; stderr tail:\n");
      if (marker < 0) return null;
      // The manager may add a note after the tail (no retries left, a result not used).
      const tail = a.reason.slice(marker + 15).replace(/ \(attempt \d+, no retries left[^]*$/, "")
        .replace(/; final result not given to the tuner[^]*$/, "");
      const at = text.indexOf(tail, from);
      if (!tail || at < 0) return null;
      from = at + tail.length;
      ends.push(from);
    }
    const shown = currentAttempt();
    const index = list.indexOf(shown);
    const start = index === 0 ? 0 : ends[index - 1];
    const end = index < ends.length ? ends[index] : text.length;
    return {attempt: shown.attempt, text: text.slice(start, end).replace(/^\s*\n/, "")};
  }

  function drawCurve() {
    const key = keySelect.value || "default";
    const byParameter = new Map();
    const results = attemptResults(currentAttempt());
    // Each attempt reports from step 0 again; the store numbers a later attempt's results
    // after the earlier ones', so steps are counted from the attempt's first result.
    const first = new Map();
    for (const m of results) {
      if (!first.has(m.parameterId) || m.sequence < first.get(m.parameterId)) first.set(m.parameterId, m.sequence);
    }
    for (const m of results) {
      const value = decodeMetric(m.data);
      const y = key === "default" ? scalar(value) : (value && typeof value === "object" ? value[key] : null);
      if (typeof y !== "number") continue;
      if (!byParameter.has(m.parameterId)) byParameter.set(m.parameterId, {x: [], y: []});
      byParameter.get(m.parameterId).x.push(m.sequence - first.get(m.parameterId));
      byParameter.get(m.parameterId).y.push(y);
    }
    const traces = [...byParameter.entries()].map(([parameterId, series]) => ({
      type: "scatter", mode: "lines+markers", x: series.x, y: series.y, name: `parameter ${parameterId}`,
    }));
    const several = attempts().length > 1;
    const attempt = currentAttempt();
    chartNote.textContent = several ? `Attempt ${attempt.attempt} of ${attempts().length}` : "";
    chartBox.dataset.attempt = String(attempt.attempt);
    if (!traces.length) {
      const status = several ? attempt.status : trial && trial.status;
      emptyChart(chartBox, status === "FAILED" ? "No intermediate results: the trial failed before reporting any (see its stderr below)."
        : ACTIVE.has(status) ? "No intermediate results yet." : "This trial reported no intermediate results.");
      return null;
    }
    const steps = Math.max(...traces.map((t) => t.x.length));
    return plot(chartBox, traces, {xaxis: trialAxis("step", steps), yaxis: {title: {text: key}},
      showlegend: traces.length > 1});
  }

  function renderAttempts() {
    const list = attempts();
    attemptsBox.hidden = list.length < 2;
    if (list.length < 2) return;
    const latest = list[list.length - 1].attempt;
    const shown = currentAttempt().attempt;
    fill(attemptsBox, h("span", {class: "muted small"}, `Ran ${list.length} times:`),
      list.map((a) => h("button", {class: a.attempt === shown ? "active" : "", id: `attempt-${a.attempt}`,
        dataset: {attempt: a.attempt},
        title: [a.cause ? `why it ran: ${a.cause}` : null, a.reason ? `how it ended: ${a.reason}` : null]
          .filter(Boolean).join("\n") || null,
        onclick: () => { shownAttempt = a.attempt === latest ? null : a.attempt; render(); drawCurve(); loadLog(); }},
      `Attempt ${a.attempt}${a.attempt === latest ? " (latest)" : ""} `, statusChip(a.status))));
  }

  function render() {
    const t = trial;
    const active = ACTIVE.has(t.status);
    const list = attempts();
    const a = currentAttempt();
    const latest = a === list[list.length - 1];
    // The latest attempt is the trial (its exit code and message); an earlier one has its own.
    const status = latest ? t.status : a.status;
    const failure = failureSummary(status, latest ? t.exitCode : null, latest ? t.message : a.reason);
    fill(head,
      h("div", {class: "tabs"},
        h("h1", {style: {margin: 0, flex: 1}}, `Trial ${t.trialJobId} `, h("span", {class: "muted"}, `#${t.sequenceId}`), " ",
          statusChip(status),
          list.length > 1 ? h("span", {class: "muted small", id: "shown-attempt"},
            ` attempt ${a.attempt} of ${list.length}${latest ? "" : " (an earlier run)"}`) : null),
        active && !ctx.readOnly ? h("button", {class: "danger", id: "kill-trial", onclick: kill}, "Kill trial") : null),
      failure && status === "FAILED" ? h("div", {class: "failure", id: "trial-failure", role: "note"},
        h("strong", {}, "Failed: "), failure) : null,
      latest && t.status === "SUCCEEDED" && !(t.finalMetricData || []).length
        ? h("div", {class: "warning", id: "trial-no-final", role: "note"}, "This trial ended without calling ",
          h("code", {}, "report_final_result()"), ": the tuner learned nothing from it.") : null,
      h("table", {class: "kv"},
        row("Submitted", formatTime(a.submitTime || t.submitTime)),
        row("Started", formatTime(a.startTime)),
        row("Ended", formatTime(latest ? t.endTime : a.endTime)),
        row("Duration", h("span", {id: "trial-duration"},
          formatDuration(trialSeconds(a.startTime, latest ? t.endTime : a.endTime)))),
        latest && t.exitCode !== undefined ? row("Exit code", h("span", {id: "trial-exit-code"}, String(t.exitCode))) : null,
        latest && t.message ? row("Message", h("pre", {id: "trial-message"}, t.message)) : null,
        !latest && a.reason ? row("Ended because", h("pre", {id: "trial-message"}, a.reason)) : null,
        a.cause ? row("Ran because", a.cause) : null,
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
    renderAttempts();
  }

  async function kill() {
    await killTrial(ctx, id);
    page.refresh();
  }

  let finished = false;   // an ended trial does not change: later refreshes skip the fetches
  const page = {
    async refresh() {
      if (finished && trial) {
        // An ended trial changes only when it runs again (a re-run): one small check.
        const now = await get(`/trial-jobs/${encodeURIComponent(id)}`);
        if (now.status === trial.status && (now.attempts || []).length === (trial.attempts || []).length) return;
      }
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
      if (!log.chosen && trial.status === "FAILED") {   // its traceback is what the user came for
        log.stream = "stderr";
        showTabs();
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
