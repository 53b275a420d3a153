// Trials: one page of the trials table at a time, sorted, filtered and paged by the server
// (GET /ui/trials), so an experiment with 100,000 trials loads as fast as one with ten.

import { get, killTrial, query, request } from "../api.js";
import {
  ACTIVE, STATES, debounce, fill, formatDuration, formatNumber, formatTime, formatValue, h, statusChip,
} from "../dom.js";
import { importedSection } from "./imported.js";
import { feasibilityCell, feasibilityHeader } from "./feasibility.js";

const PAGE_SIZES = [20, 50, 100, 200];
// Columns besides parameters and result keys that can be shown or hidden; the choice is kept
// in the browser (localStorage). Parameters and result keys are shown unless hidden.
const OPTIONAL = [
  {key: "intermediates", label: "Intermediate results", numeric: true, on: false},
  {key: "latest", label: "Latest intermediate", numeric: true, on: false},
  {key: "duration", label: "Duration", numeric: true, on: true},
  {key: "startTime", label: "Start time", on: true},
  {key: "endTime", label: "End time", on: false},
];
const COLUMNS_KEY = "nni-ng.trials.columns";

/** Why a trial failed, in one line: its exit (``exit code 1``) and the last line of its stderr
 *  (the exception), from the message the manager recorded; "" unless it FAILED. */
export function failureSummary(status, exitCode, message) {
  if (status !== "FAILED") return "";
  const text = message || "";
  const [reason, tail = ""] = text.split("; stderr tail:\n");
  const head = reason.split("\n")[0] || (exitCode !== null && exitCode !== undefined ? `exit code ${exitCode}` : "");
  const last = tail.trim().split("\n").pop() || "";
  return last ? `${head} · ${last}` : head;
}

function loadColumns() {
  try {
    return JSON.parse(localStorage.getItem(COLUMNS_KEY)) || {};
  } catch {
    return {};
  }
}

export function create(ctx) {
  const p = ctx.params;
  const state = {
    sort: p.get("sort") || "sequenceId",
    order: p.get("order") || "asc",
    statuses: new Set((p.get("status") || "").split(",").filter(Boolean)),
    filter: p.get("filter") || "",
    offset: Number(p.get("offset")) || 0,
    limit: Number(p.get("limit")) || 50,
  };
  // The selection is kept in the address too, so coming back from Compare keeps it.
  const selected = new Set((p.get("selected") || "").split(",").filter(Boolean));
  const columns = loadColumns();   // column key -> shown?
  const shown = (key, byDefault = true) => (key in columns ? columns[key] : byDefault);
  let lastAnswer = null;

  const filterInput = h("input", {type: "search", id: "trial-filter", value: state.filter,
    placeholder: "Filter: text, or lr<0.01 metric>0.9 optimizer=adam",
    title: "Terms are ANDed. name<op>value compares a parameter, a metric key, metric, duration (s), seq, id, "
      + "status, intermediates, latest or, with constraints, feasible (yes/no) and violation (ops: = != < <= > >=, spaces allowed: loss = hinge); any other word "
      + "matches the trial id, number or parameters."});
  filterInput.addEventListener("input", debounce(() => {
    state.filter = filterInput.value.trim();
    state.offset = 0;
    changed();
  }, 300));
  const stateFilter = h("div", {class: "state-filter", id: "state-filter"}, STATES.map((s) => h("label", {},
    h("input", {type: "checkbox", value: s, checked: state.statuses.has(s), onchange: (event) => {
      if (event.target.checked) state.statuses.add(s); else state.statuses.delete(s);
      state.offset = 0;
      changed();
    }}), s)));
  const filterError = h("div", {class: "filter-error", id: "filter-error", role: "alert", hidden: true});
  const compareButton = h("button", {id: "compare", disabled: true, onclick: () => {
    keepInAddress();
    location.hash = `#/compare?ids=${[...selected].map(encodeURIComponent).join(",")}`;
  }}, "Compare");
  const clearButton = h("button", {id: "clear-selection", disabled: true, onclick: () => {
    selected.clear();
    keepInAddress();
    page.refresh();
  }}, "Clear selection");
  // Re-run: the selected ended trials run again as new attempts (POST /trial-jobs/rerun).
  const rerunButton = h("button", {id: "rerun", disabled: true, title: "Run the selected FAILED / USER_CANCELED "
    + "trials again with the same parameters (new attempts of the same trials)", onclick: async () => {
    const ids = [...selected];
    if (!window.confirm(`Re-run ${ids.length} trial(s) with the same parameters?`)) return;
    try {
      const answer = await request("POST", "/trial-jobs/rerun", {trialJobIds: ids});
      const skipped = answer.skipped.map((s) => `${s.trialJobId} (${s.reason})`).join(", ");
      ctx.toast(`Re-running ${answer.rerun.length} trial(s).` + (skipped ? ` Skipped: ${skipped}.` : ""));
      selected.clear();
    } catch (error) {
      ctx.toast(`Could not re-run: ${error.message}`, true);
    }
    page.refresh();
  }}, "Re-run");
  const columnsPanel = h("div", {hidden: true, id: "columns-panel"});
  const columnsMenu = h("span", {class: "columns-menu"},
    h("button", {id: "columns-button", onclick: () => { columnsPanel.hidden = !columnsPanel.hidden; }}, "Columns"),
    columnsPanel);
  const exportLink = (fmt) => h("a", {class: "button", id: `export-${fmt}`, download: "",
    title: `Every trial matching the filter, as ${fmt.toUpperCase()}`,
    onclick: (event) => { event.currentTarget.href = `/api/v1/nni/ui/trials-export${exportQuery(fmt)}`; },
    href: "#"}, fmt.toUpperCase());
  const pager = h("div", {class: "pager", id: "pager"});
  const table = h("table", {id: "trials-table"});
  const summary = h("span", {class: "muted", id: "trials-summary"});
  const imported = importedSection(ctx);   // imported results, apart from the trials: imported.js

  fill(ctx.root,
    h("div", {class: "card"},
      h("div", {class: "toolbar"}, filterInput, stateFilter, filterError),
      h("div", {class: "toolbar"}, summary, h("span", {class: "grow"}), compareButton, rerunButton, clearButton, columnsMenu,
        h("span", {class: "small muted"}, "export"), exportLink("csv"), exportLink("json"), pager),
      h("div", {class: "table-wrap"}, table)),
    imported.element);

  function keepInAddress() {
    // Keep the view in the address (shareable, survives reloads) without re-mounting the page.
    const params = query({sort: state.sort === "sequenceId" ? "" : state.sort, order: state.order === "asc" ? "" : state.order,
      status: [...state.statuses].join(","), filter: state.filter, offset: state.offset || "",
      limit: state.limit === 50 ? "" : state.limit, selected: [...selected].join(",")});
    history.replaceState(null, "", `#/trials${params}`);
  }

  function changed() {
    keepInAddress();
    page.refresh();
  }

  function exportQuery(fmt) {
    return query({format: fmt, sort: state.sort, order: state.order, status: [...state.statuses].join(","),
      filter: state.filter});
  }

  function renderColumnsPanel(params, metrics) {
    const option = (key, label, byDefault) => h("label", {},
      h("input", {type: "checkbox", dataset: {column: key}, checked: shown(key, byDefault), onchange: (event) => {
        columns[key] = event.target.checked;
        try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(columns)); } catch { /* private mode */ }
        if (lastAnswer) render(lastAnswer);
      }}), label);
    fill(columnsPanel,
      params.length ? h("div", {class: "small muted"}, "Parameters") : null,
      params.map((k) => option(`param:${k}`, k, true)),
      metrics.length ? h("div", {class: "small muted"}, "Result keys") : null,
      metrics.map((k) => option(`metric:${k}`, k, true)),
      h("div", {class: "small muted"}, "Other"),
      OPTIONAL.map((c) => option(c.key, c.label, c.on)));
  }

  function sortBy(key) {
    if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
    else {
      state.sort = key;
      // The default metric sorts best first: by the experiment's optimize mode.
      const minimize = ctx.experiment && ctx.experiment.optimizeMode === "minimize";
      state.order = key === "metric" && !minimize ? "desc" : "asc";
    }
    state.offset = 0;
    changed();
  }

  async function kill(id) {
    await killTrial(ctx, id);
    page.refresh();
  }

  function header(label, key, numeric = false) {
    const active = state.sort === key;
    return h("th", {class: `sortable${numeric ? " num" : ""}`, dataset: {sort: key}, onclick: () => sortBy(key),
      title: `Sort by ${label}`}, label, active ? h("span", {class: "arrow"}, state.order === "asc" ? "▲" : "▼") : null);
  }

  function render(answer) {
    lastAnswer = answer;
    const params = answer.parameterKeys.filter((k) => shown(`param:${k}`));
    // The objectives first (a multi-objective experiment), in the config's order.
    const objectives = (((ctx.experiment || {}).config || {}).objectives || []).map((o) => o.metric);
    const keys = [...objectives.filter((k) => answer.metricKeys.includes(k)),
      ...answer.metricKeys.filter((k) => !objectives.includes(k))];
    const metrics = keys.filter((k) => shown(`metric:${k}`));
    const extra = OPTIONAL.filter((c) => shown(c.key, c.on));
    renderColumnsPanel(answer.parameterKeys, keys);
    const head = h("tr", {},
      h("th", {}, ""),
      header("#", "sequenceId", true),
      header("Trial", "trialJobId"),
      header("Status", "status"),
      header("Metric", "metric", true),
      feasibilityHeader(answer, header),   // constraints only
      // A result key named like a parameter (both "lr") is told apart by its label.
      metrics.map((k) => header(answer.parameterKeys.includes(k) ? `${k} (result)` : k, `metric:${k}`, true)),
      params.map((k) => header(k, `param:${k}`)),
      extra.map((c) => header(c.label, c.key === "latest" ? "latest" : c.key, Boolean(c.numeric))),
      ctx.readOnly ? null : h("th", {}, ""));
    const rows = answer.trials.map((t) => {
      const final = t.final && typeof t.final === "object" ? t.final : {};
      const box = h("input", {type: "checkbox", class: "select-trial", dataset: {id: t.trialJobId},
        checked: selected.has(t.trialJobId), onchange: (event) => {
          if (event.target.checked) selected.add(t.trialJobId); else selected.delete(t.trialJobId);
          event.target.closest("tr").classList.toggle("selected", event.target.checked);
          updateSelection();
          keepInAddress();
        }});
      // Without a final result (running, early-stopped), the metric column shows the latest
      // intermediate result, in italics: what the assessor judged the trial by.
      const latest = t.metric === null && typeof t.latestMetric === "number";
      const failure = failureSummary(t.status, t.exitCode, t.message);
      const cell = {
        intermediates: () => h("td", {class: "num", dataset: {col: "intermediates"}}, t.intermediates),
        latest: () => h("td", {class: "num", dataset: {col: "latest"}}, formatNumber(t.latestMetric)),
        duration: () => h("td", {class: "num", dataset: {col: "duration"}}, formatDuration(t.duration)),
        startTime: () => h("td", {dataset: {col: "startTime"}}, formatTime(t.startTime)),
        endTime: () => h("td", {dataset: {col: "endTime"}}, formatTime(t.endTime)),
      };
      return h("tr", {class: selected.has(t.trialJobId) ? "selected" : "", dataset: {trialId: t.trialJobId}},
        h("td", {}, box),
        h("td", {class: "num"}, t.sequenceId),
        h("td", {}, h("a", {href: `#/trial/${encodeURIComponent(t.trialJobId)}`}, t.trialJobId),
          t.phases > 1 ? h("span", {class: "muted small", title: "parameter sets (multi-phase)"}, ` ×${t.phases}`) : null),
        h("td", {dataset: {col: "status"}}, statusChip(t.status, t.message || ""),
          failure ? h("div", {class: "reason small", title: t.message || ""}, failure) : null),
        // Results before parameters: on a phone the metric is on screen without scrolling.
        h("td", {class: latest ? "num latest" : "num", dataset: {col: "metric"},
          title: latest ? `latest of ${t.intermediates} intermediate results (no final result)` : null},
        formatNumber(latest ? t.latestMetric : t.metric)),
        feasibilityCell(answer, t),
        metrics.map((k) => h("td", {class: "num", dataset: {col: `metric:${k}`}}, formatValue(final[k]))),
        params.map((k) => h("td", {dataset: {col: `param:${k}`}}, formatValue((t.parameters || {})[k]))),
        extra.map((c) => cell[c.key]()),
        ctx.readOnly ? null : h("td", {}, ACTIVE.has(t.status)
          ? h("button", {class: "danger kill", dataset: {id: t.trialJobId}, onclick: () => kill(t.trialJobId)}, "Kill")
          : null));
    });
    fill(table, h("thead", {}, head), h("tbody", {}, rows.length ? rows
      : h("tr", {}, h("td", {colspan: 6 + params.length + metrics.length + extra.length, class: "empty"},
        (answer.filterErrors || []).length ? "The filter cannot be read (see above): no trials shown." : "No trials match."))));

    const from = answer.total ? answer.offset + 1 : 0;
    const to = answer.offset + answer.trials.length;
    summary.textContent = `${from}–${to} of ${answer.total} trials`;
    const pages = Math.max(1, Math.ceil(answer.total / state.limit));
    const currentPage = Math.floor(state.offset / state.limit) + 1;
    const go = (n) => { state.offset = (Math.max(1, Math.min(pages, n)) - 1) * state.limit; changed(); };
    fill(pager,
      h("button", {onclick: () => go(1), disabled: currentPage <= 1, title: "First page"}, "«"),
      h("button", {onclick: () => go(currentPage - 1), disabled: currentPage <= 1, id: "page-prev"}, "‹"),
      h("span", {class: "small"}, `page ${currentPage} / ${pages}`),
      h("button", {onclick: () => go(currentPage + 1), disabled: currentPage >= pages, id: "page-next"}, "›"),
      h("button", {onclick: () => go(pages), disabled: currentPage >= pages, title: "Last page"}, "»"),
      h("select", {id: "page-size", onchange: (event) => { state.limit = Number(event.target.value); state.offset = 0; changed(); }},
        PAGE_SIZES.map((n) => h("option", {value: n, selected: n === state.limit ? "selected" : null}, `${n} / page`))));
    updateSelection();
  }

  function updateSelection() {
    compareButton.textContent = `Compare (${selected.size})`;
    compareButton.disabled = selected.size < 1;
    clearButton.disabled = selected.size === 0;
    rerunButton.textContent = `Re-run (${selected.size})`;
    rerunButton.disabled = selected.size === 0;
  }

  const page = {
    async refresh() {
      const answer = await get(`/ui/trials${query({offset: state.offset, limit: state.limit, sort: state.sort,
        order: state.order, status: [...state.statuses].join(","), filter: state.filter})}`);
      // A filter the server cannot read is answered with no rows and every bad term (200, so
      // the browser logs nothing): said under the box, and the old rows and count go away.
      const errors = answer.filterErrors || [];
      fill(filterError, errors.map((message) => h("div", {class: "filter-problem"}, message)));
      filterError.hidden = !errors.length;
      filterInput.classList.toggle("invalid", errors.length > 0);
      if (errors.length) {
        render(answer);
        summary.textContent = `Filter not applied: ${errors.length} bad term${errors.length > 1 ? "s" : ""}`;
        return;
      }
      if (answer.total > 0 && answer.offset >= answer.total) {   // the filter shrank the list under us
        state.offset = Math.floor((answer.total - 1) / state.limit) * state.limit;
        return page.refresh();
      }
      render(answer);
      await imported.refresh();
    },
  };
  return page;
}
