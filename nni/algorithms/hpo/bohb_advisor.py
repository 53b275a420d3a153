"""BOHB (NNI's ``BOHB`` advisor, Falkner et al. 2018): Hyperband with a KDE model.

The schedule is Hyperband's (see :mod:`hyperband_advisor`) with budgets from
``min_budget`` to ``max_budget``: ``s_max = floor(log_eta(max_budget / min_budget))``,
bracket ``s`` starts ``ceil((s_max + 1) * eta**s / (s + 1))`` configurations at budget
``max_budget * eta**-s`` and rung ``i`` runs the best ``floor(n * eta**-i)`` at budget
``max_budget * eta**(i - s)`` (an int when it is a whole number).  Each parameter set
carries that budget as ``TRIAL_BUDGET``.  Brackets follow each other as in Hyperband's
``'parallelism'`` mode.

New configurations come from a model instead of random sampling: results are kept per
budget and, on the largest budget with at least ``min_points_in_model + 2`` results,
the best ``top_n_percent`` form the *good* set and the others the *bad* set.  A kernel
density estimate (Gaussian kernels on numeric parameters scaled to their range,
Aitchison-Aitken kernels on categorical ones; bandwidths by Scott's rule, at least
``min_bandwidth``) is fitted to each.  ``num_samples`` candidates are drawn around good
points (numeric bandwidths multiplied by ``bandwidth_factor``; a categorical keeps the
good point's option with probability 1 - bandwidth, as NNI) and the one maximizing
``good(x) / bad(x)`` is proposed.  A ``random_fraction`` of configurations, and all of
them while no budget has enough results, are sampled at random.  Parameters inside a
nested ``choice`` only count where their option is selected.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nni.search_space._flat import Dim

from ._base import random_vector
from ._population import check_int, check_number, fill_inactive
from .hyperband_advisor import _EPS, BUDGET_KEY, Hyperband

__all__ = ["BOHB"]

_logger = logging.getLogger(__name__)


def _scale(dim: Dim) -> tuple[float, float]:
    """(offset, width) mapping a numeric dim's internal value to the model's unit scale."""
    if dim.normal:
        return dim.mu, dim.sigma
    return dim.low, max(dim.high - dim.low, 1e-12)


class _KDE:
    """Product-kernel density over internal vectors (NaN = inactive, ignored per dim)."""

    def __init__(self, dims: list[Dim], X: np.ndarray, min_bandwidth: float) -> None:
        self.dims = dims
        self.X = X.copy()
        n, d = X.shape
        self.bw = np.zeros(d)
        for dim in dims:
            col = X[:, dim.index]
            col = col[~np.isnan(col)]
            scott = max(len(col), 1) ** (-1.0 / (d + 4))
            if dim.categorical:
                # Aitchison-Aitken: probability mass bw spread over the other options
                self.bw[dim.index] = min(max(min_bandwidth, 0.5 * scott), 1.0 - 1.0 / max(dim.size, 2))
            else:
                off, width = _scale(dim)
                u = (col - off) / width
                std = float(np.std(u)) if len(u) > 1 else 0.0
                self.bw[dim.index] = max(min_bandwidth, 1.06 * std * scott if std > 0 else 0.5 * scott)

    def pdf(self, C: np.ndarray) -> np.ndarray:
        """Density at each row of ``C`` (m x d)."""
        m = C.shape[0]
        logk = np.zeros((m, self.X.shape[0]))
        for dim in self.dims:
            c = C[:, dim.index][:, None]
            x = self.X[:, dim.index][None, :]
            both = ~(np.isnan(c) | np.isnan(x))
            bw = self.bw[dim.index]
            if dim.categorical:
                k = np.where(c == x, 1.0 - bw, bw / max(dim.size - 1, 1))
            else:
                off, width = _scale(dim)
                z = ((c - off) / width - (x - off) / width) / bw
                k = np.exp(-0.5 * z * z) / (bw * math.sqrt(2 * math.pi))
            logk += np.where(both, np.log(np.maximum(np.nan_to_num(k, nan=1.0), 1e-300)), 0.0)
        return np.exp(logk).mean(axis=1)


class BOHB(Hyperband):
    """Hyperband schedule over ``TRIAL_BUDGET`` with a KDE model proposing configurations.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    min_budget, max_budget
        Smallest and largest ``TRIAL_BUDGET`` (``0 < min_budget <= max_budget``).
    eta
        Only the best ``1/eta`` of a rung are promoted, with ``eta`` times the budget.
    min_points_in_model
        Results needed on a budget before its model is used (default: parameters + 1).
    top_n_percent
        Percentage of results (per budget) that form the good density.
    num_samples
        Candidates drawn from the good density per proposal.
    random_fraction
        Fraction of configurations sampled at random (exploration).
    bandwidth_factor
        Widens the kernels when drawing candidates.
    min_bandwidth
        Smallest kernel bandwidth, so the model never collapses to a point.
    seed
        Makes the proposals reproducible.
    """

    def __init__(self, optimize_mode: Any = "maximize", min_budget: float = 1, max_budget: float = 3, eta: int = 3,
                 min_points_in_model: int | None = None, top_n_percent: int = 15, num_samples: int = 64,
                 random_fraction: float = 1 / 3, bandwidth_factor: float = 3, min_bandwidth: float = 1e-3,
                 seed: Any = None) -> None:
        min_budget = check_number("min_budget", min_budget, 0, math.inf, low_open=True, high_open=True)
        max_budget = check_number("max_budget", max_budget, 0, math.inf, low_open=True, high_open=True)
        if min_budget > max_budget:
            raise ValueError(f"min_budget ({min_budget:g}) must not exceed max_budget ({max_budget:g})")
        self.min_budget, self.max_budget = min_budget, max_budget
        self.min_points_in_model = (None if min_points_in_model is None
                                    else check_int("min_points_in_model", min_points_in_model, 1))
        self.top_n_percent = check_number("top_n_percent", top_n_percent, 0, 100, low_open=True, high_open=True)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.random_fraction = check_number("random_fraction", random_fraction, 0, 1)
        self.bandwidth_factor = check_number("bandwidth_factor", bandwidth_factor, 0, math.inf, low_open=True,
                                             high_open=True)
        self.min_bandwidth = check_number("min_bandwidth", min_bandwidth, 0, math.inf, low_open=True, high_open=True)
        # R is only used by Hyperband's own schedule, which is overridden; the budgets below are ours.
        super().__init__(optimize_mode=optimize_mode, R=1, eta=eta, exec_mode="parallelism", seed=seed)
        self.s_max = int(math.floor(math.log(max_budget / min_budget) / math.log(self.eta) + _EPS))
        self._next_s = self.s_max
        self._obs_budget: list[float] = []

    def _bracket_schedule(self, s: int) -> tuple[list[int], list[Any]]:
        n = int(math.ceil((self.s_max + 1) * self.eta ** s / (s + 1) - _EPS))
        sizes = [int(math.floor(n / self.eta ** i + _EPS)) for i in range(s + 1)]
        budgets: list[Any] = []
        for i in range(s + 1):
            b = self.max_budget / self.eta ** (s - i)
            budgets.append(int(round(b)) if abs(b - round(b)) < 1e-9 * max(1.0, b) else b)
        return sizes, budgets

    # ---- observations per budget ----------------------------------------------------------
    def _on_space_updated(self) -> None:
        # re-encoded history may have dropped rows; budgets are re-read from the stored params
        self._obs_budget = [self._budget_of(params) for params, _ in self._history]

    def _budget_of(self, params: Any) -> float:
        b = params.get(BUDGET_KEY) if isinstance(params, dict) else None
        if isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b):
            return float(b)
        return float(self.max_budget)   # results without a budget count as full-budget runs

    def _add_observation(self, params: dict, vec: np.ndarray | None, loss: float) -> None:
        budget = self._budget_of(params)
        before = len(self._history)
        super()._add_observation(params, vec, loss)
        if len(self._history) == before:
            return   # a result that does not fit a changed search space is not used
        # keep the budget next to the stored params so a space update can rebuild the list
        self._history[-1] = ({**self._history[-1][0], BUDGET_KEY: budget}, loss)
        self._obs_budget.append(budget)

    # ---- the model -----------------------------------------------------------------------
    def _model_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(good rows, bad rows) on the largest budget with enough results, or None."""
        d = len(self._dims)
        n_min = self.min_points_in_model if self.min_points_in_model is not None else d + 1
        X = self._X.reshape(len(self._y), d)
        budgets = np.array(self._obs_budget)
        for b in sorted(set(self._obs_budget), reverse=True):
            idx = np.flatnonzero(np.isclose(budgets, b))
            if len(idx) < n_min + 2:
                continue
            order = idx[np.argsort(self._y[idx], kind="stable")]
            n_good = max(n_min, int(self.top_n_percent * len(idx) / 100))
            n_bad = max(n_min, int((100 - self.top_n_percent) * len(idx) / 100))
            good, bad = order[:n_good], order[n_good:n_good + n_bad]
            if len(bad) == 0:
                continue
            return X[good], X[bad]
        return None

    def _new_config(self, budget: Any) -> np.ndarray:
        if not self._dims:
            return random_vector(self._dims, self._rng)
        rows = self._model_rows()
        if rows is None or self._rng.random() < self.random_fraction:
            return random_vector(self._dims, self._rng)
        good, bad = rows
        kde_good = _KDE(self._dims, good, self.min_bandwidth)
        kde_bad = _KDE(self._dims, bad, self.min_bandwidth)
        cands = np.array([self._sample_near(good[int(self._rng.integers(len(good)))], kde_good.bw)
                          for _ in range(self.num_samples)])
        score = np.maximum(kde_good.pdf(cands), 1e-32) / np.maximum(kde_bad.pdf(cands), 1e-32)
        return cands[int(np.argmax(score))]

    def _sample_near(self, point: np.ndarray, bw: np.ndarray) -> np.ndarray:
        out = point.copy()
        for dim in self._dims:
            x = out[dim.index]
            if np.isnan(x):
                continue   # inactive in this point: drawn from the prior if it becomes active
            if dim.categorical:
                # NNI (hpbandster's config generator): ``if np.random.rand() < (1-bw):
                # vector.append(int(m))`` - the good option is kept with 1 - bw, and the
                # bandwidth factor widens numeric kernels only.
                if self._rng.random() < min(bw[dim.index], 1.0):
                    out[dim.index] = float(self._rng.integers(dim.size))
            else:
                w = min(bw[dim.index] * self.bandwidth_factor, 1.0)
                off, width = _scale(dim)
                v = x + self._rng.normal(0.0, w) * width
                if dim.bounded:
                    for _ in range(10):   # truncated normal by rejection, then clipped
                        if dim.low <= v <= dim.high:
                            break
                        v = x + self._rng.normal(0.0, w) * width
                    v = min(max(v, dim.low), dim.high)
                out[dim.index] = v
        return fill_inactive(self._dims, out, self._rng)
