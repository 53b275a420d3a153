"""Grid search (NNI's ``GridSearchTuner``), in NNI's order.

Categorical dimensions (``choice``, ``randint``) are enumerated in full.  Every other
dimension - continuous *and* quantized (``quniform``, ``qloguniform``, ``qnormal``, ...) -
is searched as NNI 3.0 does: on the unit interval of its CDF (the range itself for the
uniform family, the normal CDF for the normal family), the first "epoch" takes the middle
point 1/2, and each later epoch halves every interval still worth halving and appends the
midpoints (1/4, 3/4; then 1/8, 3/8, ...), so a limited budget covers the whole range
coarse-to-fine.  An interval is only halved while its two ends give different parameter
values (after the log, the ``q`` rounding and the clipping), and a midpoint is only added
when its value is not in the grid yet: a quantized dimension stops refining once every
value it can reach is in the grid, so ``quniform``/``qnormal`` grids end instead of
doubling forever.
Within an epoch, parameter sets are listed with the last dimension varying fastest, and
those made only of points of earlier epochs are skipped (NNI's ``epoch_bar``); a set whose
rounded parameters were already proposed is skipped too.

Beyond NNI (two NNI bugs): NNI adds a midpoint only when its value differs from both
interval ends, and the ends 0 and 1 are never grid points, so a q-type's bounds are never
proposed - ``quniform(2, 3, 1)`` never gives 3, although NNI's own documented example
lists it in the second epoch; here the midpoint is added when its value is new, which
gives that documented order.  And NNI ends the search after the first epoch that adds no
point, although halving can still find values later (``qnormal(0, 1, 1)`` stops at -1, 0,
1 in NNI; its tails hold -2, 2, ...); here refining goes on while some interval is still
divisible, listing parameter sets only for epochs that added a point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Iterator

import numpy as np

from nni.errors import NoMoreTrialError
from nni.search_space._flat import Dim, decode, is_active

from ._base import BaseTuner, canonical, params_key, python_value, to_vector

__all__ = ["GridSearchTuner"]

_STD_NORMAL = NormalDist()


def _to_internal(dim: Dim, u: float) -> float:
    """Internal value at CDF position ``u`` (the normal family's ends are -inf / +inf)."""
    if dim.normal:
        if u <= 0.0:
            return -math.inf
        if u >= 1.0:
            return math.inf
        return dim.mu + dim.sigma * _STD_NORMAL.inv_cdf(u)
    return dim.low + u * (dim.high - dim.low)


def _real(dim: Dim, u: float) -> float:
    """The parameter value the trial would receive at ``u`` (infinite ends stay infinite, as NNI)."""
    x = _to_internal(dim, u)
    if math.isinf(x):
        return x
    return float(dim.decode_numeric(x))


@dataclass
class _Axis:
    """One dimension's grid: its values in the order they were added, and what is left to halve."""

    dim: Dim
    values: list[float]                    # internal values (categorical: option indices)
    divisions: list[tuple[float, float]] = field(default_factory=list)   # CDF intervals
    bar: int = 0                           # values before this index belong to earlier epochs
    reached: set[float] = field(default_factory=set)   # parameter values of ``values``

    def refine(self) -> bool:
        """Halve the divisible intervals; True when a new value was added."""
        added = False
        divisions: list[tuple[float, float]] = []
        for lo, hi in self.divisions:
            mid = (lo + hi) / 2
            if not lo < mid < hi:
                continue   # float precision reached (a normal tail)
            at_lo, at_mid, at_hi = _real(self.dim, lo), _real(self.dim, mid), _real(self.dim, hi)
            if at_mid not in self.reached:
                self.values.append(_to_internal(self.dim, mid))
                self.reached.add(at_mid)
                added = True
            if at_lo < at_mid:
                divisions.append((lo, mid))
            if at_mid < at_hi:
                divisions.append((mid, hi))
        self.divisions = divisions
        return added


def _axis(dim: Dim) -> _Axis:
    finite = dim.finite_values() if (dim.categorical or dim.integer) else None
    if finite is not None:
        return _Axis(dim, list(finite))
    axis = _Axis(dim, [_to_internal(dim, 0.5)], reached={_real(dim, 0.5)})
    for lo, hi in ((0.0, 0.5), (0.5, 1.0)):
        if _real(dim, lo) < _real(dim, hi):
            axis.divisions.append((lo, hi))
    return axis


class GridSearchTuner(BaseTuner):
    """Exhaustive grid search; ``optimize_mode`` is accepted and ignored."""

    _default_mode = None

    def __init__(self, optimize_mode: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=None)
        self._grid: Iterator[list] | None = None

    def _on_space_updated(self) -> None:
        self._grid = self._iterate()

    def _iterate(self) -> Iterator[list]:
        axes = [_axis(d) for d in self._dims]
        first = True
        while True:
            yield from self._epoch(axes, first)
            first = False
            for axis in axes:
                axis.bar = len(axis.values)
            # refine until an epoch adds a point, or nothing is divisible any more
            while True:
                added = [axis.refine() for axis in axes]
                if any(added):
                    break
                if not any(axis.divisions for axis in axes):
                    return

    @staticmethod
    def _epoch(axes: list[_Axis], first: bool) -> Iterator[list]:
        """Parameter sets of one epoch, last dimension fastest; old-only ones skipped (NNI's order)."""
        n = len(axes)
        xs: list = [None] * n
        new_at: list[bool] = [False] * n

        def rec(i: int) -> Iterator[list]:
            if i == n:
                if first or any(new_at):
                    yield list(xs)
                return
            axis = axes[i]
            if not is_active(axis.dim, xs):
                xs[i], new_at[i] = None, False
                yield from rec(i + 1)
                return
            for k, x in enumerate(axis.values):
                xs[i], new_at[i] = x, k >= axis.bar
                yield from rec(i + 1)
            xs[i], new_at[i] = None, False

        yield from rec(0)

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
