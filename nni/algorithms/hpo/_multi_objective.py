"""Shared machinery of the multi-objective tuners (private).

:class:`MultiObjectiveTuner` extends :class:`BaseTuner` (search space, de-duplication,
``import_data``, seeding) with a matrix of objective values: every completed observation
has one row of ``self._F`` holding its objectives *minimised* (maximised ones negated).

The objectives come from the ``objectives`` classArg or, in an experiment, from the config
field ``objectives`` through :meth:`set_objectives`, which the manager calls before
``update_search_space``.  A result that lacks an objective or holds a non-finite value is
not learned from (the manager does not feed such results; this guards direct use).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nni._objectives import Objective, ObjectiveValueError, objective_values, parse_objectives

from ._base import BaseTuner
from ._constraints import parse_tuner_constraints, violation_of
from ._pareto import ParetoLayers

_logger = logging.getLogger(__name__)


class MultiObjectiveTuner(BaseTuner):
    """Base of tuners that optimise several objectives at once (``MOTPE``, ``NSGA2``).

    ``receive_trial_result`` expects the final result as a dict holding every objective's
    metric.  The metrics of ``constraints`` are read from the same dict; ``_completed`` gives
    each observation's total violation (docs/constraints.md).
    """

    #: Tells the manager this tuner takes a dict of every objective (see ``set_objectives``).
    multi_objective = True

    def __init__(self, objectives: Any = None, seed: Any = None, constraints: Any = None) -> None:
        super().__init__(optimize_mode="minimize", seed=seed)
        self.objectives: list[Objective] | None = None
        if objectives is not None:
            self.set_objectives(objectives)
        self.constraints = parse_tuner_constraints(constraints)   # names (<= 0) or {metric, max, min}
        # _y[i] (BaseTuner's loss column) holds the row of _F/_C of observation i, so that
        # update_search_space, which drops rows that no longer fit, keeps the pairing
        self._F_rows: list[np.ndarray] = []
        self._C_rows: list[float] = []   # each observation's total constraint violation (0: feasible)
        self._F_all = np.zeros((0, 0))   # _F_rows stacked (extended as rows arrive)
        # The fronts of the completed observations, updated one result at a time (a full
        # re-sort per suggestion cost O(n^2)); _layered: the _F row of each observation in it
        self._layers: ParetoLayers | None = None
        self._layered = np.zeros(0, dtype=int)

    # ---- objectives ----------------------------------------------------------------------
    def set_objectives(self, objectives: Any) -> None:
        """Set the objectives (``[{'metric': ..., 'mode': ...}]`` or :class:`Objective` objects)."""
        parsed = parse_objectives(objectives)
        if self.objectives is not None and self._F_rows and parsed != self.objectives:
            raise ValueError(f"{type(self).__name__}: objectives cannot change once results were received")
        self.objectives = parsed

    def set_constraints(self, constraints: Any) -> None:
        """Set the constraints (config ``constraints``; see nni/_constraints.py)."""
        self.constraints = parse_tuner_constraints(constraints)

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives or []]

    def _sign(self) -> np.ndarray:
        return np.array([-1.0 if o.mode == "maximize" else 1.0 for o in self.objectives or []])

    def _loss(self, value: Any) -> float:
        """Parse a result into a new objective row; returns its row number (see ``__init__``)."""
        if self.objectives is None:
            raise RuntimeError(f"{type(self).__name__} needs objectives: set 'objectives' in the experiment "
                               f"config (or the tuner's classArgs)")
        try:
            vals = objective_values(value, self.objectives)
        except ObjectiveValueError as exc:
            raise RuntimeError(str(exc)) from None
        self._F_rows.append(np.asarray(vals, dtype=float) * self._sign())
        self._C_rows.append(violation_of(value, self.constraints))   # total violation (nni/_constraints.py)
        return float(len(self._F_rows) - 1)

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        try:
            row = self._loss(value)
        except RuntimeError as exc:
            if self.objectives is None:
                raise
            _logger.warning("%s: not learning from parameter %s: %s", type(self).__name__, parameter_id, exc)
            self._pending.pop(parameter_id, None)
            return
        self._observe(parameter_id, parameters, row)

    # ---- views for subclasses --------------------------------------------------------------
    def _completed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, F, violation) of the completed observations: internal vectors, minimised
        objectives, total constraint violation (0 = feasible)."""
        n = len(self._y)
        X = self._X.reshape(n, len(self._dims))
        rows = self._y.astype(int)
        k = len(self.objectives or [])
        if len(self._F_all) != len(self._F_rows):
            extra = np.array(self._F_rows[len(self._F_all):], dtype=float).reshape(-1, k)
            self._F_all = np.vstack([self._F_all.reshape(-1, k), extra])
        F = self._F_all[rows].reshape(n, k)
        viol = np.array([self._C_rows[i] for i in rows], dtype=float).reshape(n)
        return X, F, viol

    def _fronts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """:meth:`_completed` and the observations' indices front by front, best first, as
        :func:`_pareto.constrained_ranks` orders them: feasible ones by Pareto dominance, then
        infeasible ones by their total violation (smaller first)."""
        X, F, viol = self._completed()
        n = len(F)
        rows = self._y.astype(int)
        m = len(self._layered)
        if self._layers is None or m > n or not np.array_equal(rows[:m], self._layered):
            # first use, or update_search_space dropped observations: start again
            self._layers, m = ParetoLayers(F.shape[1]), 0
        ok = (viol <= 0) & ~np.isnan(F).any(axis=1)
        new = np.arange(m, n)
        new = new[ok[new]]
        # in lexicographic order a point never dominates one added before it: no cascades
        for i in new[np.lexsort(F[new].T[::-1])] if len(new) > 1 else new:
            self._layers.add(int(i), F[i])
        self._layered = rows.copy()
        fronts = self._layers.fronts()
        nan_rows = np.flatnonzero((viol <= 0) & np.isnan(F).any(axis=1))
        if nan_rows.size:
            fronts.append(nan_rows)
        bad = np.flatnonzero(viol > 0)
        if bad.size:
            levels, which = np.unique(viol[bad], return_inverse=True)
            fronts += [bad[which.reshape(-1) == j] for j in range(len(levels))]
        return X, F, viol, fronts
