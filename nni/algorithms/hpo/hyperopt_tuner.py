"""NNI's ``HyperoptTuner`` interface (TPE, random search, anneal) without hyperopt.

``algorithm_name='tpe'`` is hyperopt's classic TPE (independent Parzen estimators, good
group ``ceil(gamma * sqrt(n))`` capped at 25), ``'random_search'`` samples priors,
and ``'anneal'`` samples around a good past point with a neighbourhood that shrinks
as observations accumulate (simulated-annealing style).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.search_space._flat import Dim, is_active

from ._base import BaseTuner, random_vector, sample_prior
from ._parzen import canonical_array, forgetting_weights, prior_of, propose_independent
from .tpe_tuner import TpeArguments

__all__ = ["HyperoptTuner", "anneal_propose", "classic_tpe_propose", "classic_n_good"]

#: hyperopt's ``gamma_cap``: the good group never has more members than this.
_GAMMA_CAP = 25


def classic_n_good(n: int, gamma: float) -> int:
    """Size of hyperopt's good group among ``n`` observations: ``ceil(gamma * sqrt(n))``, at most 25.

    hyperopt's ``tpe.py`` (``ap_split_trials``): ``n_below = min(int(np.ceil(gamma *
    np.sqrt(len(l_vals)))), gamma_cap)``; NNI 2.x's TPE ran on it (3 good points of 100).
    """
    return max(1, min(int(math.ceil(gamma * math.sqrt(n))), _GAMMA_CAP))


def classic_tpe_propose(dims: list[Dim], X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                        args: TpeArguments) -> np.ndarray:
    """hyperopt's classic TPE: one Parzen estimator per parameter, good group of :func:`classic_n_good`."""
    order = np.argsort(y, kind="stable")
    n_good = classic_n_good(len(y), args.gamma)
    good = np.sort(order[:n_good])   # time order, for linear forgetting
    bad = np.sort(order[n_good:])
    w_good = forgetting_weights(len(good), args.linear_forgetting)
    w_bad = forgetting_weights(len(bad), args.linear_forgetting)
    return propose_independent(dims, X[good], w_good, X[bad], w_bad, rng, args.n_ei_candidates, args.prior_weight)

_ALGORITHMS = ("tpe", "random_search", "anneal")
_LIARS = {"min": "best", "max": "worst", "mean": "mean"}


def anneal_propose(dims: list[Dim], X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                   avg_best_idx: float = 2.0, shrink_coef: float = 0.1) -> np.ndarray:
    """Perturb a good past point; the neighbourhood shrinks like ``1 / (1 + shrink_coef * n)``."""
    n = len(y)
    if n == 0:
        return random_vector(dims, rng)
    order = np.argsort(y, kind="stable")
    rank = min(int(rng.geometric(1.0 / (1.0 + avg_best_idx))) - 1, n - 1)
    base = X[order[rank]]
    shrink = 1.0 / (1.0 + shrink_coef * n)
    vec = np.full(len(dims), np.nan)
    for dim in dims:
        if not is_active(dim, vec):
            continue
        j = dim.index
        b = base[j]
        if np.isnan(b):
            vec[j] = sample_prior(dim, rng, 1)[0]
        elif dim.categorical:
            vec[j] = rng.integers(dim.size) if rng.random() < shrink else b
        else:
            _, psig, low, high = prior_of(dim)
            x = rng.normal(b, psig * shrink)
            if math.isfinite(low):
                # reflect into the bounds, then clip for safety
                span = high - low
                x = low + abs(((x - low) + span) % (2 * span) - span)
                x = min(max(x, low), high)
            vec[j] = canonical_array(dim, np.array([x]))[0]
    return vec


class HyperoptTuner(BaseTuner):
    """Parameters
    ----------
    algorithm_name
        ``'tpe'``, ``'random_search'`` or ``'anneal'``.
    optimize_mode
        ``'minimize'`` (default) or ``'maximize'``.
    parallel_optimize
        Impute pending trials with a constant liar (TPE only) so parallel suggestions differ.
    constant_liar_type
        ``'min'`` (impute the best loss seen), ``'max'`` (the worst) or ``'mean'``.
    seed
        Seed for reproducible suggestions.
    """

    _repeated_in_nni2 = True   # NNI 2.x's hyperopt-based version (multi-phase experiments)

    def __init__(self, algorithm_name: str, optimize_mode: Any = "minimize", parallel_optimize: bool = False,
                 constant_liar_type: str = "min", seed: Any = None) -> None:
        if algorithm_name not in _ALGORITHMS:
            raise ValueError(f"algorithm_name must be one of {', '.join(map(repr, _ALGORITHMS))}, "
                             f"got {algorithm_name!r}")
        if constant_liar_type not in _LIARS:
            raise ValueError(f"constant_liar_type must be one of 'min', 'max', 'mean', got {constant_liar_type!r}")
        if not isinstance(parallel_optimize, bool):
            raise ValueError(f"parallel_optimize must be true or false, got {parallel_optimize!r}")
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self.algorithm_name = algorithm_name
        # NNI's Anneal repeats points once a finite space is used up; tpe/random end it
        self._exhaustive = algorithm_name != "anneal"
        self.parallel_optimize = parallel_optimize
        self.constant_liar_type = constant_liar_type
        liar = _LIARS[constant_liar_type] if parallel_optimize else None
        # TPE_legacy is hyperopt's classic TPE: one independent Parzen estimator per parameter.
        self._tpe_args = TpeArguments(constant_liar_type=liar, multivariate=False, n_startup_jobs=20, gamma=0.25)

    def _propose(self) -> np.ndarray:
        if self.algorithm_name == "random_search":
            return random_vector(self._dims, self._rng)
        if self.algorithm_name == "anneal":
            X, y, _ = self._observations(None)
            return anneal_propose(self._dims, X, y, self._rng)
        X, y, n_done = self._observations(self._tpe_args.constant_liar_type)
        if n_done < self._tpe_args.n_startup_jobs:
            return random_vector(self._dims, self._rng)
        return classic_tpe_propose(self._dims, X, y, self._rng, self._tpe_args)
