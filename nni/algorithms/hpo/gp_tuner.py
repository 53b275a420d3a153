"""Gaussian-process Bayesian optimization (NNI's ``GPTuner``), on numpy.

The first ``cold_start_num`` proposals are random.  After that a Matern GP (see
``_gp.GaussianProcess``) is fitted to all results in the unit cube (log dims on their log
scale), and the next point maximizes the utility (``'ei'``, ``'ucb'`` or ``'poi'``):
``selection_num_warm_up`` random points are scored, then the best of them plus random
starts (``selection_num_starting_points`` in all) are refined by a local search.
Running trials are imputed with the best result so far (constant liar) so parallel
proposals spread out.

Search space: ``choice`` of numbers, ``randint``, ``uniform``, ``quniform``, ``loguniform``,
``qloguniform``; nested spaces, non-numeric choices and normal-family types are refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import BaseTuner, random_vector
from ._constraints import ConstrainedTuner
from ._gp import GaussianProcess, UnitSpace, check_numeric_space, maximize, utility

__all__ = ["GPTuner"]

_UTILITIES = ("ei", "ucb", "poi")


def _number(name: str, value: Any, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0) or (nonneg and value < 0):
        what = "a positive" if positive else "a non-negative" if nonneg else "a finite"
        raise ValueError(f"{name} must be {what} number, got {value!r}")
    return float(value)


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class GPTuner(ConstrainedTuner, BaseTuner):   # ConstrainedTuner: feasible results rank first
    """Bayesian optimization with a Gaussian process.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    utility
        Acquisition: ``'ei'`` (expected improvement, default), ``'ucb'`` (upper confidence
        bound) or ``'poi'`` (probability of improvement).
    kappa
        Exploration weight of ``'ucb'`` (default 5).
    xi
        Improvement margin of ``'ei'`` and ``'poi'``, in units of the metric (default 0).
    nu
        Matern smoothness: 0.5, 1.5, 2.5 (default) or ``inf`` (squared exponential).
    alpha
        Smallest noise variance on the kernel diagonal (default 1e-6, standardized units);
        the GP fits a larger one when the results are noisy.
    cold_start_num
        Random proposals before the GP is used (default 10).
    selection_num_warm_up
        Random points scored per proposal (default 100000).
    selection_num_starting_points
        Starting points of the local search per proposal (default 250).
    seed
        Random seed; the same seed gives the same proposals.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", utility: str = "ei", kappa: float = 5, xi: float = 0,
                 nu: float = 2.5, alpha: float = 1e-6, cold_start_num: int = 10,
                 selection_num_warm_up: int = 100000, selection_num_starting_points: int = 250,
                 seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        if utility not in _UTILITIES:
            raise ValueError(f"utility must be one of 'ei', 'ucb', 'poi', got {utility!r}")
        self.utility = utility
        self.kappa = _number("kappa", kappa, nonneg=True)
        self.xi = _number("xi", xi, nonneg=True)
        self.nu = float(nu) if isinstance(nu, (int, float)) and not isinstance(nu, bool) else nu
        self.alpha = alpha
        self.cold_start_num = _count("cold_start_num", cold_start_num, 0)
        self.selection_num_warm_up = _count("selection_num_warm_up", selection_num_warm_up, 1)
        self.selection_num_starting_points = _count("selection_num_starting_points",
                                                    selection_num_starting_points, 1)
        self._gp = GaussianProcess(nu=self.nu, alpha=alpha)   # validates nu and alpha
        self._space: UnitSpace | None = None

    def update_search_space(self, search_space: dict) -> None:
        """Accept a flat numeric space; raise ValueError naming the parameter otherwise."""
        from nni.search_space import validate_search_space
        from nni.search_space._flat import flatten
        validate_search_space(search_space)
        check_numeric_space(flatten(search_space), "GPTuner")
        super().update_search_space(search_space)

    def _on_space_updated(self) -> None:
        self._space = UnitSpace(self._dims)
        self._gp = GaussianProcess(nu=self.nu, alpha=self.alpha)

    def _propose(self) -> np.ndarray:
        X, y, n_done = self._observations("best")
        if n_done < max(1, self.cold_start_num) or not np.isfinite(y).any():
            return random_vector(self._dims, self._rng)
        assert self._space is not None
        gp = self._gp.fit(self._space.to_unit(X), y)
        best = float(gp.ys.min())
        xi = self.xi / gp.y_std

        def acq(U: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(U)
            return utility(self.utility, mu, sd, best, self.kappa, xi)

        # Scoring a point costs O(n^2); with many results the point counts shrink so that a
        # proposal stays around a second (they are unchanged up to ~140 results).
        n = len(y)
        warm_up = min(self.selection_num_warm_up, max(1000, int(2e9 / n ** 2)))
        starts = min(self.selection_num_starting_points, max(20, int(5e7 / n ** 2)))
        u = maximize(acq, self._space, self._rng, warm_up, starts)
        return self._space.from_unit(u)
