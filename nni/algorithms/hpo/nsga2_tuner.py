"""NSGA-II (``NSGA2``), after Deb et al., "A fast and elitist multiobjective genetic algorithm:
NSGA-II" (IEEE TEC 2002), on the tuners' internal vectors so every search-space type works.

* **Population.**  The first ``population_size`` suggestions are random.  After that the
  parents are the NSGA-II survivors among *every* completed trial, chosen again each time a
  result arrives: whole fronts (non-domination rank) in order, the last one cut by crowding
  distance (larger first).  This is the steady-state (mu + 1) form of NSGA-II's elitist
  (mu + lambda) survival: no trial waits for a generation to finish, so parallel trials
  and results arriving in any order need nothing special, and every suggestion uses all
  that is known.  On the benchmark it beat generation-by-generation updates at 100-200
  trials (docs/benchmarks.md).
* **Offspring.**  Two parents by binary tournament (lower rank, then larger crowding
  distance); with ``crossover_prob`` they are crossed: numeric parameters by simulated
  binary crossover (``eta_c``) in the internal space (log space for log types), categorical
  ones by taking either parent's value with ``swapping_prob``.  Each active parameter is then
  mutated with ``mutation_prob`` (default ``1 / number of parameters``): numeric ones by
  polynomial mutation (``eta_m``), categorical ones to another option.  A nested choice that
  changes draws its sub-space's values from the prior.
* **Constraints** (the config's ``constraints``, or the classArg: ``{metric, max, min}``
  entries or metric names whose value must be ``<= 0``).  Feasible trials beat infeasible
  ones; among infeasible ones the smaller total violation wins (Deb's constrained
  domination).  A missing constraint value counts as infinitely violated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.search_space._flat import Dim, is_active

from ._base import random_vector, sample_prior
from ._multi_objective import MultiObjectiveTuner
from ._constraints import constrained_ranks
from ._pareto import crowding_distance
from ._population import check_int, check_number, fill_inactive

__all__ = ["NSGA2Tuner"]


def select_population(F: np.ndarray, violation: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NSGA-II survival: indices of ``size`` rows (whole fronts, then the last front by crowding
    distance), with each chosen row's rank and crowding distance."""
    ranks = constrained_ranks(F, violation)
    fronts = [np.flatnonzero(ranks == r) for r in range(int(ranks.max()) + 1 if len(F) else 0)]
    return select_from_fronts(F, fronts, size)


def select_from_fronts(F: np.ndarray, fronts: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`select_population` from the fronts already known (row indices, best front first):
    only the fronts up to the one that fills the population are looked at."""
    chosen: list[int] = []
    chosen_rank: list[int] = []
    crowd = np.zeros(len(F))
    for r, front in enumerate(fronts):
        if not front.size:
            continue
        crowd[front] = crowding_distance(F[front])
        if len(chosen) + len(front) <= size:
            take = front.tolist()
        else:
            take = front[np.argsort(-crowd[front], kind="stable")][: size - len(chosen)].tolist()
        chosen.extend(take)
        chosen_rank.extend([r] * len(take))
        if len(chosen) >= size:
            break
    idx = np.array(chosen, dtype=int)
    return idx, np.array(chosen_rank, dtype=int), crowd[idx]


def _sbx(a: float, b: float, low: float, high: float, eta: float, rng: np.random.Generator) -> float:
    """One child of simulated binary crossover between ``a`` and ``b`` within [low, high]."""
    if abs(a - b) < 1e-14:
        return a
    y1, y2 = min(a, b), max(a, b)
    u = rng.random()
    if math.isfinite(low) and math.isfinite(high):
        # the bounded variant: the spread distribution is cut at the bounds
        beta = 1.0 + 2.0 * min(y1 - low, high - y2) / (y2 - y1)
        alpha = 2.0 - beta ** -(eta + 1.0)
        if u <= 1.0 / alpha:
            betaq = (u * alpha) ** (1.0 / (eta + 1.0))
        else:
            betaq = (1.0 / (2.0 - u * alpha)) ** (1.0 / (eta + 1.0))
    else:
        betaq = (2 * u) ** (1.0 / (eta + 1.0)) if u <= 0.5 else (1.0 / (2.0 * (1.0 - u))) ** (1.0 / (eta + 1.0))
    if rng.random() < 0.5:
        c = 0.5 * ((y1 + y2) - betaq * (y2 - y1))
    else:
        c = 0.5 * ((y1 + y2) + betaq * (y2 - y1))
    if math.isfinite(low):
        c = min(max(c, low), high)
    return c


def _poly_mutation(x: float, low: float, high: float, eta: float, rng: np.random.Generator) -> float:
    """Polynomial mutation of ``x`` within [low, high]."""
    span = high - low
    if not span > 0:
        return x
    u = rng.random()
    d1, d2 = (x - low) / span, (high - x) / span
    if u < 0.5:
        dq = (2 * u + (1 - 2 * u) * (1 - d1) ** (eta + 1)) ** (1 / (eta + 1)) - 1
    else:
        dq = 1 - (2 * (1 - u) + 2 * (u - 0.5) * (1 - d2) ** (eta + 1)) ** (1 / (eta + 1))
    return min(max(x + dq * span, low), high)


def _bounds(dim: Dim) -> tuple[float, float]:
    if dim.categorical:
        return -0.5, dim.size - 0.5
    if dim.normal:
        return -math.inf, math.inf
    return dim.low, dim.high


class NSGA2Tuner(MultiObjectiveTuner):
    """NSGA-II.

    Parameters
    ----------
    objectives
        ``[{'metric': 'accuracy', 'mode': 'maximize'}, ...]``; set by the experiment config's
        ``objectives`` field, give them here only to use the tuner on its own.
    seed
        Seed of the random generator.
    population_size
        Size of the parent population and number of initial random suggestions (default 24).
    crossover_prob
        Probability that a child is a crossover of two parents rather than a copy of one (default 0.9).
    swapping_prob
        Probability that a categorical parameter comes from the second parent (default 0.5).
    mutation_prob
        Probability that each parameter is mutated (default ``1 / number of parameters``).
    eta_c, eta_m
        Distribution indexes of the simulated binary crossover (default 15) and the
        polynomial mutation (default 20); larger values keep children closer to their parents.
    constraints
        ``[{'metric': ..., 'max': ..., 'min': ...}]`` or metric names that must be ``<= 0``
        (optional; the config's ``constraints`` field sets them in an experiment).
    """

    def __init__(self, objectives: Any = None, seed: Any = None, population_size: int = 24,
                 crossover_prob: float = 0.9, swapping_prob: float = 0.5, mutation_prob: float | None = None,
                 eta_c: float = 15.0, eta_m: float = 20.0, constraints: list | None = None) -> None:
        super().__init__(objectives=objectives, seed=seed, constraints=constraints)
        self.population_size = check_int("population_size", population_size, 2)
        self.crossover_prob = check_number("crossover_prob", crossover_prob, 0, 1)
        self.swapping_prob = check_number("swapping_prob", swapping_prob, 0, 1)
        self.mutation_prob = None if mutation_prob is None else check_number("mutation_prob", mutation_prob, 0, 1)
        self.eta_c = check_number("eta_c", eta_c, 0, 1e6, low_open=True)
        self.eta_m = check_number("eta_m", eta_m, 0, 1e6, low_open=True)
        self._parents: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._parents_at = -1   # number of completed trials when the parents were chosen

    def _on_space_updated(self) -> None:
        self._parents, self._parents_at = None, -1

    def _on_imported(self, params: dict, vec: np.ndarray, loss: float) -> None:
        self._parents, self._parents_at = None, -1

    # ---- population ------------------------------------------------------------------------
    def _current_parents(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        n = len(self._y)
        if n == 0:
            return None
        if n != self._parents_at:
            _, F, _, fronts = self._fronts()
            idx, ranks, crowd = select_from_fronts(F, fronts, self.population_size)
            self._parents = (idx, ranks, crowd)
            self._parents_at = n
        return self._parents

    def _tournament(self, ranks: np.ndarray, crowd: np.ndarray) -> int:
        if len(ranks) == 1:
            return 0
        i, j = self._rng.choice(len(ranks), size=2, replace=False)
        if ranks[i] != ranks[j]:
            return int(i if ranks[i] < ranks[j] else j)
        if crowd[i] != crowd[j]:
            return int(i if crowd[i] > crowd[j] else j)
        return int(i if self._rng.random() < 0.5 else j)

    # ---- proposals -------------------------------------------------------------------------
    def _propose(self) -> np.ndarray:
        n_done = len(self._y)
        if n_done + len(self._pending) < self.population_size or n_done == 0:
            return random_vector(self._dims, self._rng)
        idx, ranks, crowd = self._current_parents()
        X = self._X.reshape(n_done, len(self._dims))
        a = X[idx[self._tournament(ranks, crowd)]]
        if self._rng.random() < self.crossover_prob and len(idx) > 1:
            b = X[idx[self._tournament(ranks, crowd)]]
            child = self._crossover(a, b)
        else:
            child = a.copy()
        return self._mutate(child)

    def _crossover(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        child = np.full(len(self._dims), np.nan)
        for dim in self._dims:   # parents before children: a nested dim follows its parent's pick
            if not is_active(dim, child):
                continue
            j = dim.index
            xa, xb = a[j], b[j]
            if np.isnan(xa) or np.isnan(xb):
                child[j] = xb if np.isnan(xa) else xa   # NaN in both: drawn by fill_inactive
                continue
            if dim.categorical:
                child[j] = xb if self._rng.random() < self.swapping_prob else xa
            else:
                low, high = _bounds(dim)
                child[j] = _sbx(float(xa), float(xb), low, high, self.eta_c, self._rng)
        return fill_inactive(self._dims, child, self._rng)

    def _mutate(self, vec: np.ndarray) -> np.ndarray:
        out = vec.copy()
        active = [d for d in self._dims if is_active(d, out)]
        p = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(1, len(active))
        changed = False
        for dim in self._dims:
            j = dim.index
            # a NaN here belongs to a sub-space that a mutated choice just opened: drawn below
            if not is_active(dim, out) or np.isnan(out[j]) or self._rng.random() >= p:
                continue
            if dim.categorical:
                if dim.size < 2:
                    continue
                cur = int(out[j])
                out[j] = float((cur + 1 + int(self._rng.integers(dim.size - 1))) % dim.size)
                for child in self._dims:   # the old option's sub-space is gone, the new one drawn
                    if child.parent is not None and not is_active(child, out):
                        out[child.index] = np.nan
            elif dim.normal:
                out[j] = sample_prior(dim, self._rng, 1)[0]
            else:
                out[j] = _poly_mutation(float(out[j]), dim.low, dim.high, self.eta_m, self._rng)
            changed = True
        return fill_inactive(self._dims, out, self._rng) if changed else out
