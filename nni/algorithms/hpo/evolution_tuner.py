"""Naive evolution (NNI's ``EvolutionTuner``).

The first ``population_size`` proposals are random.  Afterwards each proposal is a
*tournament of two*: two members of the population are drawn at random and the better
one is copied with exactly one of its active parameters changed (a categorical value to
another option, a numeric one redrawn from its prior).  When the changed parameter is a
nested ``choice``, the parameters of the newly selected sub-space are drawn at random.
Each result joins the population; when it grows past ``population_size`` the worse of
two randomly drawn members is removed, so good individuals tend to survive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import BaseTuner, random_vector
from ._constraints import ConstrainedTuner
from ._population import check_int, mutate

__all__ = ["EvolutionTuner"]


class EvolutionTuner(ConstrainedTuner, BaseTuner):   # ConstrainedTuner: feasible results rank first
    """Naive evolution with a tournament of two and single-parameter mutation.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    population_size
        Number of individuals kept; also the number of initial random proposals.
    seed
        Makes the proposals reproducible.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", population_size: int = 32, seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self.population_size = check_int("population_size", population_size, 1)
        self._population: list[int] = []   # row indices into the history (self._X / self._y)

    def _on_space_updated(self) -> None:
        # history rows were re-encoded (some dropped): rebuild from the most recent ones
        n = len(self._y)
        self._population = list(range(max(0, n - self.population_size), n))

    def _add_observation(self, params: dict, vec: np.ndarray, loss: float) -> None:
        super()._add_observation(params, vec, loss)
        self._population.append(len(self._y) - 1)
        while len(self._population) > self.population_size:
            # reverse tournament: the worse of two random members dies
            i, j = self._rng.choice(len(self._population), size=2, replace=False)
            a, b = self._population[i], self._population[j]
            loser = i if self._y[a] > self._y[b] else j
            self._population.pop(int(loser))

    def _propose(self) -> np.ndarray:
        if len(self._population) + len(self._pending) < self.population_size or not self._population:
            return random_vector(self._dims, self._rng)
        if len(self._population) == 1:
            parent = self._population[0]
        else:
            i, j = self._rng.choice(len(self._population), size=2, replace=False)
            a, b = self._population[i], self._population[j]
            parent = a if self._y[a] <= self._y[b] else b
        X = self._X.reshape(len(self._y), len(self._dims))
        return mutate(self._dims, X[parent], self._rng)
