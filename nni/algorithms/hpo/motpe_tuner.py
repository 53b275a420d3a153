"""Multi-objective TPE (``MOTPE``), after Ozaki et al., "Multiobjective tree-structured Parzen
estimator for computationally expensive optimization problems" (GECCO 2020).

TPE needs a "good" and a "bad" group.  With several objectives there is no single order, so
the observations are sorted by non-domination rank (the Pareto front first, then the front
of what is left, ...), and the good group is filled front by front up to ``ceil(gamma * n)``
(no cap: a front keeps growing and all of it is good).  When a front does not fit whole,
its points are removed one at a time, each time the one adding least hypervolume, so the
kept ones spread along the front.  Each good
point is weighted by its hypervolume contribution within the good group (points that
extend the front count more).  Then, as in TPE, Parzen estimators ``l(x)`` of the good and
``g(x)`` of the bad group are fitted (the project's estimators from ``_parzen``; by default
one per parameter, parents before nested children, as Optuna does with several objectives;
``multivariate: true`` uses the joint estimator), candidates are drawn from ``l`` and the one
with the largest ``l(x) / g(x)`` is proposed.

Parallel trials: a pending trial joins the bad group (a constant liar that says "this
region is taken"), so concurrent suggestions spread out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import random_vector
from ._constraints import constrained_split, constrained_weights
from ._multi_objective import MultiObjectiveTuner
from ._pareto import hypervolume_contributions, non_dominated_sort
from ._parzen import JointParzen, forgetting_weights, propose_independent

__all__ = ["MOTPETuner"]


def _reference_point(F: np.ndarray) -> np.ndarray:
    """A reference point just beyond the worst value of every (minimised) objective."""
    low, high = F.min(axis=0), F.max(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return high + 0.1 * span


def _normalized(F: np.ndarray) -> np.ndarray:
    low, high = F.min(axis=0), F.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (F - low) / span


#: Samples of the Monte Carlo contributions used with 3+ objectives (exact ones cost too much per
#: suggestion there: a large front and one 3-D hypervolume per point per removal).
_MC_SAMPLES = 8192


def _contributions(G: np.ndarray, ref: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    if G.shape[1] <= 2 or rng is None:
        return hypervolume_contributions(G, ref)
    return _mc_owner_counts(G, ref, rng)[1]


def _mc_owner_counts(G: np.ndarray, ref: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Samples x points dominance matrix and each point's estimated exclusive contribution."""
    low = G.min(axis=0)
    S = rng.uniform(low, ref, size=(_MC_SAMPLES, G.shape[1]))
    # one objective at a time: no samples x points x objectives temporary, no reduction over
    # its short last axis (several times faster than np.all(..., axis=2), the same matrix)
    D = S[:, 0, None] >= G[None, :, 0]
    for j in range(1, G.shape[1]):
        D &= S[:, j, None] >= G[None, :, j]
    only = D.sum(axis=1) == 1
    return D, (D & only[:, None]).sum(axis=0).astype(float)


def _drop_least_contributing(G: np.ndarray, keep_n: int, rng: np.random.Generator | None) -> list[int]:
    """Indices of ``keep_n`` rows of the front ``G``, removing the least-contributing one at a time."""
    keep = list(range(len(G)))
    ref = np.full(G.shape[1], 1.1)
    if G.shape[1] <= 2 or rng is None:
        while len(keep) > keep_n:
            keep.pop(int(np.argmin(hypervolume_contributions(G[keep], ref))))
        return keep
    # 3+ objectives: one shared set of samples; a sample owned by exactly one point is that point's
    D, excl = _mc_owner_counts(G, ref, rng)
    alive = np.ones(len(G), bool)
    counts = D.sum(axis=1)
    for _ in range(len(G) - keep_n):
        # ties (e.g. no sample owned): the first such point goes
        i = int(np.argmin(np.where(alive, excl, np.inf)))
        alive[i] = False
        # kept up to date instead of recounted (samples x points per removal): the samples
        # i shared with exactly one other point now belong to that point alone
        counts -= D[:, i]
        now_single = np.flatnonzero(D[:, i] & (counts == 1))
        if now_single.size:
            excl += (D[now_single] & alive).sum(axis=0)
    return [int(i) for i in np.flatnonzero(alive)]


def split_good_bad(F: np.ndarray, n_good: int, rng: np.random.Generator | None = None,
                   fronts: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the good group (by front, ties on the last front broken by hypervolume) and the rest.

    With 3+ objectives and ``rng`` given, hypervolume contributions are Monte Carlo estimates.
    ``fronts``: the rows front by front when the caller keeps them (else ``F`` is sorted here).
    """
    n = len(F)
    n_good = max(1, min(n_good, n))
    G = _normalized(F)
    if fronts is None:
        ranks = non_dominated_sort(G)
        fronts = [np.flatnonzero(ranks == r) for r in range(int(ranks.max()) + 1)]
    good: list[int] = []
    for front in fronts:
        if len(good) + len(front) <= n_good:
            good.extend(front.tolist())
            if len(good) == n_good:
                break
            continue
        # the front overflows: drop its least-contributing points one at a time
        kept = _drop_least_contributing(G[front], n_good - len(good), rng)
        good.extend(front[kept].tolist())
        break
    mask = np.zeros(n, bool)
    mask[good] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def good_weights(F_good: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Weights of the good points: their hypervolume contribution in the good group, scaled to
    a maximum of 1 and floored so that no good point is ignored."""
    if len(F_good) <= 1:
        return np.ones(len(F_good))
    G = _normalized(F_good)
    contrib = _contributions(G, np.full(G.shape[1], 1.1), rng)
    top = contrib.max()
    if not top > 0:
        return np.ones(len(F_good))
    return np.maximum(contrib / top, 0.1)


class MOTPETuner(MultiObjectiveTuner):
    """Multi-objective TPE.

    Parameters
    ----------
    objectives
        ``[{'metric': 'accuracy', 'mode': 'maximize'}, ...]``.  In an experiment the config's
        ``objectives`` field sets them; give them here only to use the tuner on its own.
    seed
        Seed of the random generator; the same seed gives the same suggestions.
    n_startup_jobs
        Random suggestions before the model is used (default 10).
    n_ei_candidates
        Candidates drawn from ``l(x)`` per suggestion (default 24).
    gamma
        Share of the observations in the good group (default 0.1).
    prior_weight
        Weight of the prior component in both estimators (default 1.0).
    constant_liar
        Put pending trials in the bad group (default true).
    multivariate
        Sample all parameters jointly from whole good observations (default: false, each
        parameter on its own, which spreads suggestions along the front better; on the
        benchmark it won on every problem, see docs/benchmarks.md; true when the experiment
        has ``constraints``, where joint sampling found the feasible region far better, see
        docs/constraints.md).
    """

    def __init__(self, objectives: Any = None, seed: Any = None, n_startup_jobs: int = 10,
                 n_ei_candidates: int = 24, gamma: float = 0.1, prior_weight: float = 1.0,
                 constant_liar: bool = True, multivariate: bool | None = None) -> None:
        super().__init__(objectives=objectives, seed=seed)
        for key, v, low in (("n_startup_jobs", n_startup_jobs, 0), ("n_ei_candidates", n_ei_candidates, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{key} must be an int >= {low}, got {v!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma < 1:
            raise ValueError(f"gamma must be a number in (0, 1), got {gamma!r}")
        if isinstance(prior_weight, bool) or not isinstance(prior_weight, (int, float)) or not prior_weight > 0:
            raise ValueError(f"prior_weight must be a positive number, got {prior_weight!r}")
        for key, v in (("constant_liar", constant_liar), ("multivariate", multivariate)):
            if not isinstance(v, bool) and not (key == "multivariate" and v is None):
                raise ValueError(f"{key} must be true or false, got {v!r}")
        self.multivariate = multivariate
        self.n_startup_jobs = n_startup_jobs
        self.n_ei_candidates = n_ei_candidates
        self.gamma = float(gamma)
        self.prior_weight = float(prior_weight)
        self.constant_liar = constant_liar

    def _propose(self) -> np.ndarray:
        n = len(self._y)
        if n < max(1, self.n_startup_jobs) or not len(self.objectives or []):
            return random_vector(self._dims, self._rng)
        X, F, viol, fronts = self._fronts()   # kept up to date, not re-sorted (normalising keeps dominance)
        # no cap at 25 as in single-objective TPE: a front keeps growing and its points all count
        n_good = int(math.ceil(self.gamma * n))
        if self.constraints:   # feasible results first, then infeasible ones by violation
            good, bad = constrained_split(F, viol, n_good, lambda F_, k: split_good_bad(F_, k, self._rng))
        else:
            good, bad = split_good_bad(F, n_good, self._rng, fronts)
        Xb = X[bad]
        wb = forgetting_weights(len(bad), 25)
        if self.constant_liar and self._pending:
            P = np.array([vec for _, vec in self._pending.values()], dtype=float).reshape(-1, len(self._dims))
            Xb = np.vstack([Xb, P])
            wb = np.append(wb, np.ones(len(P)))
        wg = constrained_weights(F[good], viol[good], lambda F_: good_weights(F_, self._rng))
        # default: independent, but joint with constraints (docs/constraints.md: it found the
        # feasible front of C2-DTLZ2 far better, median hypervolume 0.20 against 0.14)
        if not (self.multivariate if self.multivariate is not None else bool(self.constraints)):
            return propose_independent(self._dims, X[good], wg, Xb, wb, self._rng, self.n_ei_candidates,
                                       self.prior_weight)
        lo = JointParzen(self._dims, X[good], wg, self.prior_weight)
        hi = JointParzen(self._dims, Xb, wb, self.prior_weight)
        cand = lo.sample(self._rng, self.n_ei_candidates)
        score = lo.log_pdf(cand) - hi.log_pdf(cand)
        return cand[int(np.argmax(score))]
