// Constraints (config `constraints`, docs/constraints.md) in the trials table: a "Feasible"
// column, sortable by violation. The server works feasibility out (GET /ui/trials gives each
// row `feasible`, `violation` and `constraintMissing` when the experiment has constraints) and
// filters it (`feasible=no`, `violation>2`); this module only draws it.

import { formatNumber, h } from "../dom.js";

/** Whether the answer of /ui/trials comes from an experiment with constraints. */
export function constrained(answer) {
  return answer.trials.some((t) => "feasible" in t);
}

/** The column's header (`header(label, sortKey, numeric)` is the table's own). */
export function feasibilityHeader(answer, header) {
  return constrained(answer) ? header("Feasible", "violation", true) : null;
}

/** One row's cell: "yes", "no (violation 2.5)", "no (metric missing)", or empty before a result. */
export function feasibilityCell(answer, t) {
  if (!constrained(answer)) return null;
  let text = "";
  let title = null;
  if (t.feasible === true) text = "yes";
  else if (t.feasible === false && t.constraintMissing) {
    text = "no (metric missing)";
    title = "the final result lacks a constraint metric: infeasible (see the trial's message)";
  } else if (t.feasible === false) {
    text = `no (violation ${formatNumber(t.violation)})`;
    title = "total violation of the constraints (0 = feasible)";
  }
  return h("td", {class: t.feasible === false ? "num infeasible" : "num", dataset: {col: "feasible"}, title}, text);
}
