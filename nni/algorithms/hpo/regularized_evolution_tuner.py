"""Regularized (aging) evolution (NNI's ``RegularizedEvolutionTuner``, Real et al. 2019).

The first ``population_size`` proposals are random.  Afterwards each proposal draws
``sample_size`` members of the population at random and copies the best of them with one
parameter mutated (see :func:`evolution_tuner.mutate`).  Every result joins the
population as its youngest member and, once the population is full, the *oldest*
member is dropped, whatever its score: good parameters survive only by being re-found,
which keeps the search from collapsing on one lucky result.

As in NNI, the tuner also takes NNI's classic NAS search spaces (``layer_choice``,
``input_choice``, ``mutable_layer``; see :mod:`nni.search_space._nas`) and gives trials
their architecture in NNI's format (``{"_value": ..., "_idx": ...}``, ``chosen_layer`` /
``chosen_inputs``); NAS and ordinary parameters may be mixed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from nni.search_space import _nas

from ._base import BaseTuner, random_vector
from ._constraints import ConstrainedTuner
from ._population import check_int, mutate

__all__ = ["RegularizedEvolutionTuner"]


class RegularizedEvolutionTuner(ConstrainedTuner, BaseTuner):   # ConstrainedTuner: feasible results rank first
    """Aging evolution: sample ``sample_size``, mutate the best, drop the oldest.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    population_size
        Individuals kept (the most recent results); also the number of random proposals
        made before evolution starts.
    sample_size
        Members drawn for each tournament (at most ``population_size``).
    seed
        Makes the proposals reproducible.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", population_size: int = 100, sample_size: int = 25,
                 seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self.population_size = check_int("population_size", population_size, 1)
        self.sample_size = check_int("sample_size", sample_size, 1)
        if self.sample_size > self.population_size:
            raise ValueError(f"sample_size ({sample_size}) must not exceed population_size ({population_size})")
        self._population: deque[int] = deque()   # history row indices, oldest first
        self._nas_space: dict | None = None       # the NNI NAS space, when one is used

    def update_search_space(self, search_space: dict) -> None:
        """Take an NNI search space, classic NAS types included."""
        from nni.search_space import validate_search_space
        validate_search_space(search_space, allow_nas=True)
        self._nas_space = dict(search_space) if _nas.has_nas(search_space) else None
        super().update_search_space(_nas.internal_space(search_space) if self._nas_space else search_space)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next individual (NAS parameters in NNI's format)."""
        params = super().generate_parameters(parameter_id, **kwargs)
        return _nas.to_nni(self._nas_space, params) if self._nas_space else params

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        """Record a result; a NAS individual is matched by its parameter id (or translated back)."""
        if self._nas_space and parameter_id not in self._pending:
            try:
                parameters = _nas.from_nni(self._nas_space, parameters)
            except ValueError:
                return
        super().receive_trial_result(parameter_id, parameters, value, **kwargs)

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Prior results; NAS parameters in NNI's format are translated first."""
        if self._nas_space:
            rows = []
            for entry in data or []:
                try:
                    rows.append({**entry, "parameter": _nas.from_nni(self._nas_space, entry["parameter"])})
                except (ValueError, KeyError, TypeError):
                    continue
            data = rows
        super().import_data(data)

    def _on_space_updated(self) -> None:
        n = len(self._y)
        self._population = deque(range(max(0, n - self.population_size), n))

    def _add_observation(self, params: dict, vec: np.ndarray, loss: float) -> None:
        super()._add_observation(params, vec, loss)
        self._population.append(len(self._y) - 1)
        while len(self._population) > self.population_size:
            self._population.popleft()   # aging: the oldest dies, not the worst

    def _propose(self) -> np.ndarray:
        if len(self._population) + len(self._pending) < self.population_size or not self._population:
            return random_vector(self._dims, self._rng)
        k = min(self.sample_size, len(self._population))
        picks = self._rng.choice(len(self._population), size=k, replace=False)
        rows = [self._population[int(i)] for i in picks]
        parent = min(rows, key=lambda r: (self._y[r], r))
        X = self._X.reshape(len(self._y), len(self._dims))
        return mutate(self._dims, X[parent], self._rng)
