"""Metis-style tuner (NNI's ``MetisTuner``), a faithful-in-spirit simplification on numpy.

What it does, per proposal (losses; 'maximize' is negated internally):

1. **Cold start**: the first ``cold_start_num`` proposals are random.
2. **Re-sampling** (unless ``no_resampling``): a GP (``_gp.GaussianProcess``) is fitted to
   all results and every observation is checked against its leave-one-out prediction.  A
   point among the better half of results whose value is more than 3 leave-one-out standard
   deviations away from the prediction is an *outlier*: it is proposed once more, so a
   noisy lucky (or unlucky) result is measured again.  Each point is re-sampled at most once.
3. **Candidates** (unless ``no_candidates``): the *exploitation* candidate minimizes the
   GP's posterior mean; the *exploration* candidate maximizes its posterior standard
   deviation (it is only searched with probability ``exploration_probability``).  Both
   searches use ``selection_num_starting_points`` starting points; the candidate with the
   larger expected improvement under the GP is proposed.  NNI's Metis also draws
   candidates from a Gaussian mixture of good and bad points; that part is left out (the
   TPE tuner covers that idea).
4. With ``no_candidates`` and no outlier, the proposal is random.

Search space: ``choice`` of numbers, ``randint``, ``uniform``, ``quniform``, ``loguniform``,
``qloguniform``; others are refused at ``update_search_space``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import BaseTuner, params_key, random_vector
from ._gp import GaussianProcess, UnitSpace, check_numeric_space, maximize, utility
from .gp_tuner import _count, _number

__all__ = ["MetisTuner"]

_WARM_UP = 2000   # random points scored before each local search (the searches are cheap: mean / sd only)


class MetisTuner(BaseTuner):
    """GP-based tuner balancing exploitation, exploration and re-sampling of outliers.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    no_resampling
        Do not re-propose outliers (default True).
    no_candidates
        Skip the exploitation/exploration candidates; propose random points (default False).
    selection_num_starting_points
        Starting points of each candidate search (default 600).
    cold_start_num
        Random proposals before the GP is used (default 10).
    exploration_probability
        Probability that the exploration candidate is searched and considered (default 0.9).
    seed
        Random seed; the same seed gives the same proposals.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", no_resampling: bool = True, no_candidates: bool = False,
                 selection_num_starting_points: int = 600, cold_start_num: int = 10,
                 exploration_probability: float = 0.9, seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        for name, flag in (("no_resampling", no_resampling), ("no_candidates", no_candidates)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be true or false, got {flag!r}")
        self.no_resampling = no_resampling
        self.no_candidates = no_candidates
        self.selection_num_starting_points = _count("selection_num_starting_points",
                                                    selection_num_starting_points, 1)
        self.cold_start_num = _count("cold_start_num", cold_start_num, 0)
        p = _number("exploration_probability", exploration_probability, nonneg=True)
        if p > 1:
            raise ValueError(f"exploration_probability must be in [0, 1], got {exploration_probability!r}")
        self.exploration_probability = p
        self._gp = GaussianProcess(nu=2.5, alpha=1e-6)
        self._space: UnitSpace | None = None
        self._resampled: set[str] = set()

    def update_search_space(self, search_space: dict) -> None:
        """Accept a flat numeric space; raise ValueError naming the parameter otherwise."""
        from nni.search_space import validate_search_space
        from nni.search_space._flat import flatten
        validate_search_space(search_space)
        check_numeric_space(flatten(search_space), "MetisTuner")
        super().update_search_space(search_space)

    def _on_space_updated(self) -> None:
        self._space = UnitSpace(self._dims)
        self._gp = GaussianProcess(nu=2.5, alpha=1e-6)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """Re-propose an outlier when re-sampling is on and one is found, else a new point."""
        if self.search_space is not None and not self.no_resampling:
            vec = self._outlier()
            if vec is not None:
                # a deliberate repeat: bypass the base class's de-duplication
                return self._emit(parameter_id, vec)
        return super().generate_parameters(parameter_id, **kwargs)

    def _fit(self) -> GaussianProcess | None:
        X, y, n_done = self._observations("best")
        if n_done < max(2, self.cold_start_num) or not np.isfinite(y).any():
            return None
        assert self._space is not None
        return self._gp.fit(self._space.to_unit(X), y)

    def _outlier(self) -> np.ndarray | None:
        n = len(self._y)
        if n < max(3, self.cold_start_num):
            return None
        X = self._X.reshape(n, len(self._dims))
        assert self._space is not None
        gp = self._gp.fit(self._space.to_unit(X), self._y)
        mu, sd = gp.loo()
        z = np.abs(gp.ys - mu) / sd
        good = gp.ys <= np.median(gp.ys)
        # the posterior may hold a subset of a long history (_gp.POSTERIOR_MAX): its rows
        # map back to observations through gp.kept
        index = gp.kept if gp.kept is not None else np.arange(n)
        for j in np.argsort(-z):
            if z[j] <= 3 or not good[j]:
                continue
            i = int(index[j])
            key = params_key(self._history[i][0])
            if key in self._resampled:
                continue
            self._resampled.add(key)
            return X[i].copy()
        return None

    def _propose(self) -> np.ndarray:
        if self.no_candidates:
            return random_vector(self._dims, self._rng)
        gp = self._fit()
        if gp is None:
            return random_vector(self._dims, self._rng)
        assert self._space is not None
        best = float(gp.ys.min())
        starts = self.selection_num_starting_points
        # the mean costs O(n) per point, the sd O(n^2): with many results the searches get
        # fewer points (as GPTuner's; unchanged up to ~290 results)
        m = len(gp.X)
        sd_starts = min(starts, max(20, int(5e7 / m ** 2)))
        mean_starts = min(starts, max(100, int(3e5 / m)))   # the mean: O(n) per point
        u_exploit = maximize(lambda U: -gp.predict_mean(U), self._space, self._rng, _WARM_UP, mean_starts)
        cands = [u_exploit]
        if self._rng.random() < self.exploration_probability:
            sd_warm_up = min(_WARM_UP, max(500, int(5e8 / m ** 2)))
            cands.append(maximize(lambda U: gp.predict(U)[1], self._space, self._rng, sd_warm_up, sd_starts))
        # the candidate with the larger expected improvement wins (Metis' "information gain")
        C = np.vstack(cands)
        mu, sd = gp.predict(C)
        ei = utility("ei", mu, sd, best, 0.0, 0.0)
        return self._space.from_unit(C[int(np.argmax(ei))])
