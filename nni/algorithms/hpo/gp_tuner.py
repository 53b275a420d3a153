"""Gaussian-process Bayesian optimization (NNI's ``GPTuner``), on numpy.

The first ``cold_start_num`` proposals are random.  After that a Matern GP (see
``_gp.GaussianProcess``) is fitted to all results in the unit cube (log dims on their log
scale; with ``input_warping``, each range warped by a learned Kumaraswamy CDF), and the
next point maximizes the utility (``'ei'``, ``'ucb'`` or ``'poi'``): ``selection_num_warm_up``
random points are scored, then the best of them plus random starts
(``selection_num_starting_points`` in all) are refined by a local search.
Running trials are imputed (``BATCH_LIE``: the mean result, a constant liar) so parallel
proposals spread out; the kernel's hyperparameters are fitted on real results only.

Search space: ``choice`` of numbers, ``randint``, ``uniform``, ``quniform``, ``loguniform``,
``qloguniform``; nested spaces, non-numeric choices and normal-family types are refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import BaseTuner, random_vector
from ._constraints import ConstrainedTuner
from ._gp import GaussianProcess, UnitSpace, check_numeric_space, maximize, utility, yeo_johnson

__all__ = ["GPTuner"]

_UTILITIES = ("ei", "ucb", "poi")
#: Adam steps of a hyperparameter fit that starts from the previous one (the first takes 40)
WARM_FIT_STEPS = 10
#: best results the acquisition's local search also starts from
SEEDED_STARTS = 5
#: rounds of that local search
LOCAL_ROUNDS = 20
#: what running trials are imputed with: "believer" (the model's own prediction: Kriging
#: believer), "best", "mean" or "worst" (a constant liar), or None (ignored)
BATCH_LIE: str | None = "mean"
#: fit the GP to power-transformed results (see _gp.yeo_johnson) instead of the raw ones
OUTPUT_WARP = True
#: EI's incumbent is the best posterior mean at a result (not the best result)
PLUG_IN_INCUMBENT = True


def _unit_key(u: np.ndarray) -> bytes:
    """A snapped unit point as a set key (discrete coordinates snap to exact grid values;
    + 0.0 makes -0.0 and 0.0 one key)."""
    return (np.asarray(u, dtype=float) + 0.0).tobytes()


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
        Random points scored per proposal (default 2000; NNI: 100000, ~0.4 s per proposal
        at 100 results against ~25 ms).
    selection_num_starting_points
        Starting points of the local search per proposal (default 20; NNI: 250); the 5
        best results are starting points too.
    input_warping
        Warp every range (``uniform``, ``randint``, the quantized and log types; not a
        ``choice``) by a Kumaraswamy CDF ``1 - (1 - u^a)^b`` learned with the kernel (default
        False): for a loss that changes fast near one end of a range and slowly elsewhere.
        Measured in docs/benchmarks.md (issue 28): it won shekel4 but lost levy5 and
        rastrigin4s, and did not move Bayesmark's DT-breast, so it is off by default.
    seed
        Random seed; the same seed gives the same proposals.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", utility: str = "ei", kappa: float = 5, xi: float = 0,
                 nu: float = 2.5, alpha: float = 1e-6, cold_start_num: int = 10,
                 selection_num_warm_up: int = 2000, selection_num_starting_points: int = 20,
                 input_warping: bool = False, seed: Any = None) -> None:
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
        if not isinstance(input_warping, bool):
            raise ValueError(f"input_warping must be true or false, got {input_warping!r}")
        self.input_warping = input_warping
        self._gp = GaussianProcess(nu=self.nu, alpha=alpha)   # validates nu and alpha
        self._space: UnitSpace | None = None
        self._model_cache: tuple | None = None

    def update_search_space(self, search_space: dict) -> None:
        """Accept a flat numeric space; raise ValueError naming the parameter otherwise."""
        from nni.search_space import validate_search_space
        from nni.search_space._flat import flatten
        validate_search_space(search_space)
        check_numeric_space(flatten(search_space), "GPTuner")
        super().update_search_space(search_space)

    def _on_space_updated(self) -> None:
        self._space = UnitSpace(self._dims)
        # ranges (uniform, randint, quantized and log ones) are warped; a choice's values are not
        # (their unit positions are an order, not a scale a warp could learn from a few points)
        warp = np.array([dim.type != "choice" for dim in self._dims]) if self.input_warping else None
        self._gp = GaussianProcess(nu=self.nu, alpha=self.alpha, warp=warp)
        self._model_cache = None

    def _propose(self) -> np.ndarray:
        X, y, n_done = self._observations(None)   # results only: pending trials are believed below
        if n_done < max(1, self.cold_start_num) or not np.isfinite(y).any():
            return random_vector(self._dims, self._rng)
        assert self._space is not None
        # A proposal that repeats an earlier one is asked again (BaseTuner) with nothing changed:
        # the model fitted for the first ask is reused, only the acquisition search reruns.
        key = (len(y), tuple(self._pending), getattr(self, "_v_version", 0))
        if self._model_cache is None or self._model_cache[0] != key:
            self._model_cache = (key, *self._fit_model(X, y))
        _, gp, U, y, best, xi = self._model_cache

        def acq(U: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(U)
            return utility(self.utility, mu, sd, best, self.kappa, xi)

        # Scoring a point costs O(n^2); with many results the point counts shrink so that a
        # proposal stays around a second (the defaults are unchanged up to ~1,000 results).
        n = len(y)
        warm_up = min(self.selection_num_warm_up, max(1000, int(2e9 / n ** 2)))
        starts = min(self.selection_num_starting_points, max(20, int(5e7 / n ** 2)))
        # the local search also starts from the best results: EI peaks near them once the
        # model has found a basin, and random points rarely land that close
        order = np.argsort(y, kind="stable")[:SEEDED_STARTS]
        u = maximize(acq, self._space, self._rng, warm_up, starts, rounds=LOCAL_ROUNDS, seeds=U[order])
        if self.is_finite and len(self._seen) < self._size:
            # On a finite space (every parameter an integer or a choice) the acquisition's peak
            # is often a parameter set already evaluated or running (the model, fitted with
            # noise, still rates the best result highest).  BaseTuner answered such a repeat with
            # up to 8 more searches and then a random set: most of kNN-wine's proposals were
            # random.  Search again with taken sets scored -inf; only if every point scored was
            # taken, a random unseen set.  (A used-up finite space gets the plain peak, a repeat,
            # as NNI.  With a continuous parameter only an unmoved seed of the local search
            # repeats a point: that stays BaseTuner's rare re-ask.)
            taken = self._taken(U)
            if _unit_key(u) in taken:
                def acq_unseen(V: np.ndarray) -> np.ndarray:
                    value = acq(V)
                    value[[_unit_key(row) in taken for row in V]] = -np.inf
                    return value
                u = maximize(acq_unseen, self._space, self._rng, warm_up, starts, rounds=LOCAL_ROUNDS,
                             seeds=U[order])
                if _unit_key(u) in taken:
                    return self._pick_unused()
        return self._space.from_unit(u)

    def _taken(self, U: np.ndarray) -> set[bytes]:
        """Keys of the unit points of the results (``U``) and of the running trials."""
        assert self._space is not None
        keys = {_unit_key(row) for row in U}
        if self._pending:
            P = self._space.to_unit(np.array([vec for _, vec in self._pending.values()], dtype=float))
            keys.update(_unit_key(row) for row in P)
        return keys

    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> tuple[GaussianProcess, np.ndarray, np.ndarray, float, float]:
        """The GP for the next proposal: fitted to the results, conditioned on the running trials'
        imputed results; with the unit points, the (warped) results, the best and ``xi`` in its units."""
        assert self._space is not None
        U = self._space.to_unit(X)
        y = self._finite(y)
        raw_sd = float(y.std()) or 1.0
        if OUTPUT_WARP:
            y = yeo_johnson(y)
        gp = self._gp.fit(U, y, warm_steps=WARM_FIT_STEPS)
        # The incumbent EI improves on: the best posterior mean at a result, not the best noisy
        # result.  With noise the lowest result is mostly luck; EI measured from it sees no
        # improvement anywhere but where the model knows nothing (the corners), and the search
        # turned random (docs/benchmarks.md, DT-breast).  Without noise the two are the same.
        best = float(gp.predict_mean(U).min()) if PLUG_IN_INCUMBENT else float(gp.ys.min())
        if self._pending and BATCH_LIE:
            # Running trials get an imputed result, so that the next proposal goes elsewhere
            # instead of to the same optimum of the acquisition.  The hyperparameters stay those
            # fitted on real results; only the posterior is conditioned on the imputed ones.
            P = self._space.to_unit(np.array([vec for _, vec in self._pending.values()], dtype=float))
            if BATCH_LIE == "believer":   # Kriging believer: what the model predicts there
                lies, _ = gp.predict(P, raw=True)
            else:
                lies = np.full(len(P), {"best": y.min(), "mean": y.mean(), "worst": y.max()}[BATCH_LIE])
            gp.condition(np.vstack([U, P]), np.concatenate([y, lies]))
        xi = self.xi / (raw_sd if OUTPUT_WARP else gp.y_std)   # the warped results have unit variance
        return gp, U, y, best, xi

    @staticmethod
    def _finite(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float).copy()
        finite = np.isfinite(y)
        y[~finite] = y[finite].max() if finite.any() else 0.0
        return y
