// Every experiment of this user (NNI's "All experiments"): from the registry that nnictl uses
// and ~/nni-experiments, each one's status, tuner, trials, best metric, creation and last
// resume read from its own store (no manager is started). Running ones are live (the list is
// read again every few seconds). Tick 2-8 and press Compare to see them side by side.
//
// Served by every manager's UI and by `nnictl webui` (ctx.mode "standalone"), where each row
// also opens the experiment: a running one at its manager's UI, a stopped one read-only.

import { get, request } from "../api.js";
import { debounce, fill, formatDuration, formatNumber, formatTime, h, statusChip } from "../dom.js";

const POLL_MS = 5000;
const COMPARE_MIN = 2;
const COMPARE_MAX = 8;
const ENDED = ["SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED", "SYS_CANCELED"];

export function create(ctx) {
  const standalone = ctx.mode === "standalone";
  const selected = new Set((ctx.params.get("selected") || "").split(",").filter(Boolean));
  let filterText = ctx.params.get("filter") || "";
  let last = null;
  const opened = new Map();    // id -> {url, readOnly}: what Open answered (kept across refreshes)
  const pending = new Set();   // ids whose Open is being answered

  const table = h("table", {id: "experiments-table"});
  const note = h("div", {class: "note", id: "experiments-note"});
  const search = h("input", {type: "search", id: "experiments-filter", value: filterText,
    placeholder: "Filter: name, id, status, tuner…", "aria-label": "Filter experiments",
    oninput: debounce(() => { filterText = search.value; keepInAddress(); render(); }, 150)});
  const compareButton = h("button", {id: "experiments-compare", class: "primary", type: "button", disabled: true,
    onclick: () => {
      const ids = [...selected];
      location.hash = `#/experiments-compare?ids=${ids.map(encodeURIComponent).join(",")}`;
    }}, "Compare");
  const hint = h("span", {class: "muted small", id: "experiments-selection"});
  fill(ctx.root, h("div", {class: "card section"},
    h("h1", {}, standalone ? "Experiments" : "Experiments on this machine"),
    h("div", {class: "toolbar"}, search, compareButton, hint),
    h("div", {class: "table-wrap"}, table), note));

  // The list follows running experiments without a live connection of its own.
  const timer = setInterval(() => ctx.refreshSoon && ctx.refreshSoon(), POLL_MS);

  function keepInAddress() {
    const params = new URLSearchParams();
    if (selected.size) params.set("selected", [...selected].join(","));
    if (filterText) params.set("filter", filterText);
    const text = params.toString();
    history.replaceState(null, "", `#/experiments${text ? `?${text}` : ""}`);
  }

  function matches(e, words) {
    const hay = [e.id, e.name, e.status, e.tuner].filter(Boolean).join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  }

  function updateSelection() {
    const n = selected.size;
    compareButton.disabled = n < COMPARE_MIN || n > COMPARE_MAX;
    compareButton.textContent = n ? `Compare ${n}` : "Compare";
    hint.textContent = n > COMPARE_MAX ? `at most ${COMPARE_MAX} at once`
      : n < COMPARE_MIN ? `tick ${COMPARE_MIN}–${COMPARE_MAX} experiments to compare them` : "";
  }

  function openCell(e) {
    if (e.current) return h("a", {href: "#/overview"}, "this one");
    if (!standalone) {
      return e.port ? h("a", {href: `http://${location.hostname}:${e.port}/`, target: "_blank", rel: "noopener"}, `port ${e.port}`)
        : h("span", {class: "muted", title: `nnictl view ${e.id} serves it read-only`}, `nnictl view ${e.id}`);
    }
    const answer = opened.get(e.id);
    if (answer && (e.alive || answer.readOnly)) {
      return h("a", {href: answer.url, target: "_blank", rel: "noopener", class: "opened-experiment", dataset: {id: e.id}},
        answer.readOnly ? "open read-only ↗" : "open ↗");
    }
    const label = e.alive ? (e.viewed ? "Open (read-only)" : "Open") : "Open read-only";
    const button = h("button", {type: "button", class: "open-experiment", dataset: {id: e.id}, disabled: pending.has(e.id),
      title: e.alive ? `its web UI on port ${e.port}` : "served read-only by this server, as nnictl view does",
      onclick: async () => {
        pending.add(e.id);
        button.disabled = true;
        try {
          const reply = await request("POST", `/ui/experiments/${encodeURIComponent(e.id)}/open`, {});
          opened.set(e.id, reply);
          ctx.toast(`${e.id} is served${reply.readOnly ? " read-only" : ""}: follow the link.`);
        } catch (error) {
          ctx.toast(`Could not open ${e.id}: ${error.message}`, true);
        } finally {
          pending.delete(e.id);
        }
        render();
      }}, label);
    return button;
  }

  function row(e) {
    const done = ENDED.reduce((sum, s) => sum + (e.counts[s] || 0), 0);
    const box = h("input", {type: "checkbox", class: "select-experiment", checked: selected.has(e.id),
      "aria-label": `select ${e.id}`, dataset: {id: e.id}, onchange: (event) => {
        if (event.target.checked) selected.add(e.id);
        else selected.delete(e.id);
        keepInAddress();
        updateSelection();
      }});
    return h("tr", {class: e.current ? "current-exp" : "", dataset: {id: e.id}},
      h("td", {}, box),
      h("td", {}, h("code", {}, e.id)),
      h("td", {}, e.name || "–"),
      h("td", {}, statusChip(e.status)),
      h("td", {dataset: {col: "tuner"}}, e.tuner || "–"),
      h("td", {class: "num", dataset: {col: "trials"}}, `${done} / ${e.maxTrialNumber ?? "∞"}`),
      h("td", {class: "num"}, e.counts.RUNNING || 0),
      h("td", {class: "num"}, e.counts.FAILED || 0),
      h("td", {class: "num", dataset: {col: "best"}}, formatNumber(e.best),
        e.optimizeMode ? h("span", {class: "muted small"}, ` (${e.optimizeMode === "minimize" ? "min" : "max"})`) : null),
      h("td", {dataset: {col: "created"}}, formatTime(e.createdTime)),
      h("td", {dataset: {col: "resumed"}}, e.resumedTime ? formatTime(e.resumedTime) : h("span", {class: "muted"}, "never")),
      h("td", {class: "num", dataset: {col: "duration"}}, e.duration === null || e.duration === undefined ? "–" : formatDuration(e.duration)),
      h("td", {dataset: {col: "open"}}, openCell(e)));
  }

  function render() {
    if (!last) return;
    const words = filterText.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = last.experiments.filter((e) => matches(e, words));
    const known = new Set(last.experiments.map((e) => e.id));
    for (const id of [...selected]) if (!known.has(id)) selected.delete(id);   // deleted meanwhile
    fill(table,
      h("thead", {}, h("tr", {}, ["", "Id", "Name", "Status", "Tuner", "Trials done", "Running", "Failed", "Best metric",
        "Created", "Last resumed", "Duration", "Web UI"].map((t) => h("th", {}, t)))),
      h("tbody", {}, shown.length ? shown.map(row)
        : h("tr", {}, h("td", {colspan: 13, class: "empty"},
          last.experiments.length ? "No experiment matches the filter." : "No experiments yet."))));
    const of = shown.length === last.experiments.length ? "" : ` of ${last.experiments.length}`;
    note.textContent = `${shown.length}${of} experiments. `
      + (standalone ? "Open a stopped one to browse it read-only (as nnictl view)."
        : "A stopped one opens with nnictl view ID (read-only), nnictl resume ID, or all of them with nnictl webui.");
    updateSelection();
  }

  return {
    minInterval: POLL_MS,
    async refresh() {
      last = await get("/ui/experiments");
      render();
    },
    unmount() { clearInterval(timer); },
  };
}
