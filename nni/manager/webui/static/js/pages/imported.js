// Imported results (warm start, nnictl experiment import): not trials of this experiment, so
// they never show in the trials table; the overview says how many there are and where they
// came from, and the trials page lists them in their own table, hidden until asked for.

import { get } from "../api.js";
import { fill, formatNumber, formatValue, h } from "../dom.js";

const SHOWN_KEY = "nni-ng.trials.imported";

/** The overview's line: "Imported results: 55 (warm start from abc: 55 taken, 3 left out)". */
export function importedSummary(o) {
  const imported = o.imported || {count: 0, warmStart: []};
  if (!imported.count && !imported.warmStart.length) return null;
  const sources = imported.warmStart.map((s) => h("div", {class: "small muted", dataset: {source: s.experiment}},
    `warm start from ${s.experiment}: ${s.finished} finished, ${s.taken} taken`
    + (s.partial ? ` (${s.partial} without new parameters)` : "") + `, ${s.leftOut} left out`
    + (s.outOfSpace ? ` (${s.outOfSpace} outside the space)` : "")));
  return h("div", {class: "card section", id: "imported-card"},
    h("h2", {}, "Imported results"),
    h("div", {class: "small"}, h("span", {class: "num", id: "imported-count"}, imported.count),
      " imported (not trials of this experiment; they do not count against the max trial number) · ",
      h("a", {href: "#/trials?imported=1"}, "show them")),
    sources);
}

/** The trials page's section: a Show/Hide toggle and, when shown, the imported results' table. */
export function importedSection(ctx) {
  const table = h("table", {id: "imported-table"});
  const wrap = h("div", {class: "table-wrap", hidden: true}, table);
  const toggle = h("button", {id: "imported-toggle"}, "Show imported results");
  const section = h("div", {class: "card section", id: "imported-section", hidden: true},
    h("div", {class: "toolbar"}, h("strong", {}, "Imported results"),
      h("span", {class: "muted small", id: "imported-summary"}), h("span", {class: "grow"}), toggle), wrap);
  let shown = ctx.params.get("imported") === "1" || localStorage.getItem(SHOWN_KEY) === "1";

  async function refresh() {
    const answer = await get("/ui/imported");
    section.hidden = answer.total === 0;
    fill(section.querySelector("#imported-summary"),
      `${answer.total} result${answer.total === 1 ? "" : "s"} from earlier experiments or files; not trials of this experiment`);
    toggle.textContent = shown ? "Hide imported results" : `Show imported results (${answer.total})`;
    wrap.hidden = !shown;
    if (!shown) return;
    fill(table,
      h("thead", {}, h("tr", {}, h("th", {}, "Source"), h("th", {class: "num"}, "Metric"),
        answer.parameterKeys.map((k) => h("th", {}, k)))),
      h("tbody", {}, answer.rows.map((r) => h("tr", {class: "imported-row", dataset: {source: r.source || ""}},
        h("td", {}, r.source ? `warm start: ${r.source}` : "imported"),
        h("td", {class: "num"}, formatNumber(r.metric)),
        answer.parameterKeys.map((k) => h("td", {}, formatValue((r.parameter || {})[k])))))));
  }
  toggle.addEventListener("click", () => {
    shown = !shown;
    try { localStorage.setItem(SHOWN_KEY, shown ? "1" : "0"); } catch { /* private mode */ }
    refresh();
  });
  return {element: section, refresh};
}
