"""The manager's side of multi-objective experiments (private): which tuners may run, what a
final result must hold, what the tuner and assessor receive, and the Pareto front read model
shared by the REST route, ``nnictl`` on a stopped experiment and the Python API.

See docs/multi_objective.md.  Experiments without ``objectives`` never reach this module.
"""

from __future__ import annotations

import json
from typing import Any

from .._objectives import (
    MULTI_OBJECTIVE_TUNERS,
    Objective,
    ObjectiveValueError,
    objective_values,
    parse_objectives,
)

__all__ = ["experiment_objectives", "refuse_tuner", "check_final", "assessor_view", "pareto_front_rows",
           "hypervolume_history"]


def experiment_objectives(config: Any) -> list[Objective] | None:
    """The config's objectives (a canonical config or its JSON dict), or None."""
    raw = config.get("objectives") if isinstance(config, dict) else getattr(config, "objectives", None)
    return parse_objectives(raw) if raw else None


def refuse_tuner(tuner: Any) -> str | None:
    """Why ``tuner`` cannot run a multi-objective experiment, or None when it can.

    A tuner can when its class says so (``multi_objective = True``, as MOTPE and NSGA2 do) or
    when it is the built-in Random tuner, which never looks at results.
    """
    from ..algorithms.hpo.random_tuner import RandomTuner
    if getattr(tuner, "multi_objective", False) or type(tuner) is RandomTuner:
        return None
    return (f"tuner {type(tuner).__name__} optimises one metric but the experiment has several objectives "
            f"(objectives); use one of {', '.join(MULTI_OBJECTIVE_TUNERS)}, or give a custom tuner class "
            f"the attribute multi_objective = True")


def check_final(value: Any, objectives: list[Objective]) -> tuple[dict | None, str]:
    """``(value for the tuner, '')`` for a final result that fits, else ``(None, why)``.

    The tuner gets the reported dict; ``default`` is added (the first objective) when the
    trial did not report it, so tuners that read NNI's scalar (Random) work unchanged.
    """
    try:
        values = objective_values(value, objectives)
    except ObjectiveValueError as exc:
        return None, f"final result not given to the tuner: {exc}"
    fed = dict(value) if isinstance(value, dict) else {objectives[0].metric: values[0]}
    fed.setdefault("default", values[0])
    return fed, ""


def assessor_view(history: list[Any], objectives: list[Objective]) -> list[Any]:
    """Intermediate results as the assessor sees them: the first objective's number where a
    result is a dict holding it, else the result unchanged."""
    metric = objectives[0].metric
    return [h[metric] if isinstance(h, dict) and metric in h else h for h in history]


def _fitting_rows(store: Any, objectives: list[Objective]) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """Export rows whose final result holds every objective, in result order, and their values."""
    from .read_model import export_rows
    rows, points = [], []
    for row in export_rows(store):
        value = row["value"]
        while isinstance(value, str):   # stored as the trial's JSON text (NNI may encode twice)
            try:
                value = json.loads(value)
            except ValueError:
                break
        try:
            values = objective_values(value, objectives)
        except ObjectiveValueError:
            continue
        rows.append({**row, "objectives": dict(zip((o.metric for o in objectives), values))})
        points.append(values)
    return rows, points


#: Points of the hypervolume history (evenly spaced over the results), to keep it cheap.
HISTORY_POINTS = 50


def hypervolume_history(store: Any, config: dict | None = None) -> dict[str, Any] | None:
    """Hypervolume of the front after the first n fitting results, for up to 50 values of n.

    The reference point is the worst value of each objective over all results, moved 10 %
    of its range further (so every result counts); it moves as results arrive, so compare
    values within one answer.  None when the experiment has no objectives.
    """
    import numpy as np

    from ..algorithms.hpo._pareto import hypervolume, to_minimization
    objectives = experiment_objectives(config if config is not None else store.get_meta("config", {}))
    if objectives is None:
        return None
    _, points = _fitting_rows(store, objectives)
    modes = [o.mode for o in objectives]
    if not points:
        return {"reference": None, "points": []}
    M = to_minimization(points, modes)
    low, high = M.min(axis=0), M.max(axis=0)
    ref_min = high + 0.1 * np.where(high > low, high - low, 1.0)
    n = len(M)
    m = min(n, HISTORY_POINTS)
    steps = sorted({max(1, round(n * (i + 1) / m)) for i in range(m)})
    history = [{"results": k, "hypervolume": hypervolume(M[:k], ref_min, n_samples=20_000)} for k in steps]
    sign = np.array([-1.0 if m == "maximize" else 1.0 for m in modes])
    return {"reference": (ref_min * sign).tolist(), "points": history}


def pareto_front_rows(store: Any, config: dict | None = None) -> list[dict[str, Any]] | None:
    """The non-dominated final results in export-data form plus ``objectives`` (metric -> value),
    or None when the experiment has no objectives.  Results that do not fit are left out."""
    from ..algorithms.hpo._pareto import non_dominated_mask
    objectives = experiment_objectives(config if config is not None else store.get_meta("config", {}))
    if objectives is None:
        return None
    rows, points = _fitting_rows(store, objectives)
    if not rows:
        return []
    mask = non_dominated_mask(points, [o.mode for o in objectives])
    return [r for r, keep in zip(rows, mask) if keep]
