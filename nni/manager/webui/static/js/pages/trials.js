// Trials: one page of the trials table at a time, sorted, filtered and paged by the server
// (GET /ui/trials), so an experiment with 100,000 trials loads as fast as one with ten.

import { get, killTrial, query, request } from "../api.js";
import {
  ACTIVE, STATES, debounce, fill, formatDuration, formatNumber, formatTime, formatValue, h, statusChip,
} from "../dom.js";

const PAGE_SIZES = [20, 50, 100, 200];

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
  const selected = new Set();

  const filterInput = h("input", {type: "search", id: "trial-filter", value: state.filter,
    placeholder: "Filter: text, or lr<0.01 metric>0.9 optimizer=adam",
    title: "Terms are ANDed. name<op>value compares a parameter, a metric key, metric, duration (s), seq, id "
      + "or status (ops: = != < <= > >=); any other word matches the trial id, number or parameters."});
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
  const compareButton = h("button", {id: "compare", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...selected].map(encodeURIComponent).join(",")}`;
  }}, "Compare");
  const clearButton = h("button", {id: "clear-selection", disabled: true, onclick: () => {
    selected.clear();
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
  const pager = h("div", {class: "pager", id: "pager"});
  const table = h("table", {id: "trials-table"});
  const summary = h("span", {class: "muted", id: "trials-summary"});

  fill(ctx.root,
    h("div", {class: "card"},
      h("div", {class: "toolbar"}, filterInput, stateFilter),
      h("div", {class: "toolbar"}, summary, h("span", {class: "grow"}), compareButton, rerunButton, clearButton, pager),
      h("div", {class: "table-wrap"}, table)));

  function changed() {
    // Keep the view in the address (shareable, survives reloads) without re-mounting the page.
    const params = query({sort: state.sort === "sequenceId" ? "" : state.sort, order: state.order === "asc" ? "" : state.order,
      status: [...state.statuses].join(","), filter: state.filter, offset: state.offset || "",
      limit: state.limit === 50 ? "" : state.limit});
    history.replaceState(null, "", `#/trials${params}`);
    page.refresh();
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
    const params = answer.parameterKeys;
    const metrics = answer.metricKeys;
    const head = h("tr", {},
      h("th", {}, ""),
      header("#", "sequenceId", true),
      header("Trial", "trialJobId"),
      header("Status", "status"),
      params.map((k) => header(k, `param:${k}`)),
      header("Metric", "metric", true),
      // A result key named like a parameter (both "lr") is told apart by its label.
      metrics.map((k) => header(params.includes(k) ? `${k} (result)` : k, `metric:${k}`, true)),
      header("Duration", "duration", true),
      header("Start time", "startTime"),
      ctx.readOnly ? null : h("th", {}, ""));
    const rows = answer.trials.map((t) => {
      const final = t.final && typeof t.final === "object" ? t.final : {};
      const box = h("input", {type: "checkbox", class: "select-trial", dataset: {id: t.trialJobId},
        checked: selected.has(t.trialJobId), onchange: (event) => {
          if (event.target.checked) selected.add(t.trialJobId); else selected.delete(t.trialJobId);
          event.target.closest("tr").classList.toggle("selected", event.target.checked);
          updateSelection();
        }});
      return h("tr", {class: selected.has(t.trialJobId) ? "selected" : "", dataset: {trialId: t.trialJobId}},
        h("td", {}, box),
        h("td", {class: "num"}, t.sequenceId),
        h("td", {}, h("a", {href: `#/trial/${encodeURIComponent(t.trialJobId)}`}, t.trialJobId),
          t.phases > 1 ? h("span", {class: "muted small", title: "parameter sets (multi-phase)"}, ` ×${t.phases}`) : null),
        h("td", {}, statusChip(t.status, t.message || "")),
        params.map((k) => h("td", {dataset: {col: `param:${k}`}}, formatValue((t.parameters || {})[k]))),
        h("td", {class: "num", dataset: {col: "metric"}}, formatNumber(t.metric)),
        metrics.map((k) => h("td", {class: "num", dataset: {col: `metric:${k}`}}, formatValue(final[k]))),
        h("td", {class: "num"}, formatDuration(t.duration)),
        h("td", {}, formatTime(t.startTime)),
        ctx.readOnly ? null : h("td", {}, ACTIVE.has(t.status)
          ? h("button", {class: "danger kill", dataset: {id: t.trialJobId}, onclick: () => kill(t.trialJobId)}, "Kill")
          : null));
    });
    fill(table, h("thead", {}, head), h("tbody", {}, rows.length ? rows
      : h("tr", {}, h("td", {colspan: 8 + params.length + metrics.length, class: "empty"}, "No trials match."))));

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
      if (answer.total > 0 && answer.offset >= answer.total) {   // the filter shrank the list under us
        state.offset = Math.floor((answer.total - 1) / state.limit) * state.limit;
        return page.refresh();
      }
      render(answer);
    },
  };
  return page;
}
