"""Grid search (NNI's ``GridSearchTuner``).

Finite dimensions (``choice``, ``randint``, q-types with bounds, nested choices) are
enumerated exactly.  Continuous dimensions are searched on progressively finer grids,
as NNI 3.0 does: first the middle of the range, then the quarter points, then the
eighths, and so on (for normal distributions the grid is taken on the CDF, so the
points follow the distribution).  Each round only proposes combinations that use at
least one point new to that round, so no point is proposed twice.  When the space has
no continuous dimension, :class:`NoMoreTrialError` is raised after the full product.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Iterator

import numpy as np

from nni.errors import NoMoreTrialError
from nni.search_space._flat import Dim, decode, enumerate_space

from ._base import BaseTuner, canonical, params_key, python_value, to_vector

__all__ = ["GridSearchTuner"]

_STD_NORMAL = NormalDist()


def _unit_points(level: int) -> list[float]:
    """Points of a [0, 1] grid up to ``level``: 1/2; 1/4, 3/4; 1/8, 3/8, ..."""
    pts = [(2 * k + 1) / 2 ** (lv + 1) for lv in range(level + 1) for k in range(2 ** lv)]
    return sorted(pts)


def _unit_level(u: float) -> int:
    level = 0
    while (u * 2 ** (level + 1)) % 2 != 1:
        level += 1
    return level


def _to_internal(dim: Dim, u: float) -> float:
    if dim.normal:
        return dim.mu + dim.sigma * _STD_NORMAL.inv_cdf(u)
    return dim.low + u * (dim.high - dim.low)


class GridSearchTuner(BaseTuner):
    """Exhaustive grid search; ``optimize_mode`` is accepted and ignored."""

    _default_mode = None

    def __init__(self, optimize_mode: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=None)
        self._grid: Iterator[list] | None = None

    def _on_space_updated(self) -> None:
        self._grid = self._iterate()

    def _iterate(self) -> Iterator[list]:
        dims = self._dims
        continuous = {d.index for d in dims if d.finite_values() is None}
        epoch = 0
        while True:
            levels: dict[int, dict[float, int]] = {}

            def values_of(dim: Dim, epoch: int = epoch) -> list:
                if dim.index not in continuous:
                    return dim.finite_values()
                lv = levels.setdefault(dim.index, {})
                for u in _unit_points(epoch):
                    lv[_to_internal(dim, u)] = _unit_level(u)
                return list(lv)

            found_cont = False
            for xs in enumerate_space(dims, values_of):
                cont_levels = [levels[i][xs[i]] for i in continuous if xs[i] is not None]
                found_cont = found_cont or bool(cont_levels)
                if epoch and (not cont_levels or max(cont_levels) != epoch):
                    continue
                yield xs
            if not found_cont:
                return
            epoch += 1

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self._grid is None:
            raise RuntimeError("GridSearchTuner: update_search_space() must be called before generate_parameters()")
        for xs in self._grid:
            vec = canonical(self._dims, to_vector(self._dims, xs))
            params = python_value(decode(self._dims, list(vec)))
            if params_key(params) in self._seen:
                continue
            return self._emit(parameter_id, vec)
        raise NoMoreTrialError("Grid search finished: every grid point has been proposed")

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        self._pending.pop(parameter_id, None)

    def _propose(self) -> np.ndarray:  # pragma: no cover - generate_parameters is overridden
        raise NotImplementedError
