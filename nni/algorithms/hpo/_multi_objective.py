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
        self._C_rows: list[float] = []

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
        F = np.array([self._F_rows[i] for i in rows], dtype=float).reshape(n, k)
        viol = np.array([self._C_rows[i] for i in rows], dtype=float).reshape(n)
        return X, F, viol
