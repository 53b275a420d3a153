// Every experiment on this machine (NNI's "All experiments"): from the registry that nnictl
// uses, with each one's status, trial counts and best metric read from its own store.
// Running ones link to their own manager's UI; this one's row is marked.

import { get } from "../api.js";
import { fill, formatNumber, formatTime, h, statusChip } from "../dom.js";

export function create(ctx) {
  const table = h("table", {id: "experiments-table"});
  const note = h("div", {class: "note"});
  fill(ctx.root, h("div", {class: "card section"}, h("h1", {}, "Experiments on this machine"),
    h("div", {class: "table-wrap"}, table), note));

  return {
    minInterval: 5000,
    async refresh() {
      const answer = await get("/ui/experiments");
      const rows = answer.experiments.map((e) => {
        const done = ["SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED", "SYS_CANCELED"]
          .reduce((sum, s) => sum + (e.counts[s] || 0), 0);
        const link = e.current ? h("a", {href: "#/overview"}, "this one")
          : e.port ? h("a", {href: `http://${location.hostname}:${e.port}/`, target: "_blank", rel: "noopener"}, `port ${e.port}`)
            : h("span", {class: "muted", title: `nnictl view ${e.id} serves it read-only`}, `nnictl view ${e.id}`);
        return h("tr", {class: e.current ? "current-exp" : "", dataset: {id: e.id}},
          h("td", {}, h("code", {}, e.id)),
          h("td", {}, e.name || "–"),
          h("td", {}, statusChip(e.status)),
          h("td", {class: "num", dataset: {col: "trials"}}, `${done} / ${e.maxTrialNumber ?? "∞"}`),
          h("td", {class: "num"}, e.counts.RUNNING || 0),
          h("td", {class: "num"}, e.counts.FAILED || 0),
          h("td", {class: "num", dataset: {col: "best"}}, formatNumber(e.best),
            e.optimizeMode ? h("span", {class: "muted small"}, ` (${e.optimizeMode === "minimize" ? "min" : "max"})`) : null),
          h("td", {}, formatTime(e.startTime)),
          h("td", {}, link));
      });
      fill(table,
        h("thead", {}, h("tr", {}, ["Id", "Name", "Status", "Trials done", "Running", "Failed", "Best metric",
          "Started", "Web UI"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", {colspan: 9, class: "empty"}, "No experiments registered."))));
      note.textContent = `${rows.length} experiments. A stopped one opens with nnictl view ID (read-only), or nnictl resume ID.`;
    },
  };
}
