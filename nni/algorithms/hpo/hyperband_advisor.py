"""Hyperband (NNI's ``Hyperband`` advisor, Li et al. 2018), as a tuner.

Every parameter set carries the key ``TRIAL_BUDGET``: the resource (epochs, samples,
...) the trial should spend.  With ``s_max = floor(log_eta(R))`` one *iteration* runs
the brackets ``s = s_max, s_max - 1, ..., 0``.  Bracket ``s`` starts
``n = ceil((s_max + 1) * eta**s / (s + 1))`` random configurations at budget
``r = R * eta**-s``; rung ``i`` runs ``floor(n * eta**-i)`` configurations at budget
``floor(r * eta**i)``, the best ones of rung ``i - 1`` (successive halving).  For
``R=27, eta=3`` an iteration runs rungs of (27, 9, 3, 1), (12, 4, 1), (6, 2) and (4)
configurations at budgets (1, 3, 9, 27), (3, 9, 27), (9, 27) and (27).  Iterations
repeat (fresh configurations) until the experiment's trial or time limit, as in NNI.

``exec_mode='serial'`` runs one bracket at a time; ``'parallelism'`` (default) starts
the next bracket's configurations whenever no promoted configuration is waiting to run.
While a rung waits for results the tuner gives nothing (:class:`nni.NoMoreTrialError`);
the manager asks again after the next result.  A trial that ends without a final result
(failed, killed, stopped by an assessor) is ranked by its last intermediate result, as in
NNI, or counts as the worst result of its rung if it reported none, so it cannot stall
the bracket.  Results are read with the experiment's ``optimize_mode``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nni.errors import NoMoreTrialError

from nni.search_space._flat import decode, encode

from ._base import BaseTuner, params_key, python_value, random_vector, to_vector
from ._population import carry_over, check_int, refuse_reserved, strip_keys

__all__ = ["Hyperband"]

_logger = logging.getLogger(__name__)

_EPS = 1e-9
BUDGET_KEY = "TRIAL_BUDGET"


@dataclass
class _Slot:
    """One run of one configuration in one rung."""

    params: dict                 # the configuration, without TRIAL_BUDGET
    vec: np.ndarray
    bracket: "_Bracket"
    rung: int
    parameter_id: Any = None
    loss: float | None = None
    ran_with: dict | None = None   # the configuration given out, when the space changed since
    last_intermediate: float | None = None   # loss of the run's last intermediate result


@dataclass
class _Bracket:
    """A successive-halving bracket: ``sizes[i]`` configurations at ``budgets[i]`` in rung i."""

    number: int                  # order of creation (0, 1, ...)
    s: int
    sizes: list[int]
    budgets: list[Any]
    rungs: list[list[_Slot]] = field(default_factory=list)

    def rung_complete(self, i: int) -> bool:
        rung = self.rungs[i] if i < len(self.rungs) else []
        return len(rung) == self.sizes[i] and all(slot.loss is not None for slot in rung)

    @property
    def complete(self) -> bool:
        return len(self.rungs) == len(self.sizes) and self.rung_complete(len(self.sizes) - 1)


class Hyperband(BaseTuner):
    """Hyperband: brackets of successive halving over ``TRIAL_BUDGET``.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    R
        The largest budget a trial gets (``TRIAL_BUDGET`` of the last rung).
    eta
        Only the best ``1/eta`` of a rung are promoted, with ``eta`` times the budget.
    exec_mode
        ``'parallelism'`` (default) or ``'serial'`` (one bracket at a time).
    seed
        Makes the sampled configurations reproducible.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", R: int = 60, eta: int = 3,
                 exec_mode: str = "parallelism", seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self.R = check_int("R", R, 1)
        self.eta = check_int("eta", eta, 2)
        if exec_mode not in ("parallelism", "serial"):
            raise ValueError(f"exec_mode must be 'parallelism' or 'serial', got {exec_mode!r}")
        self.exec_mode = exec_mode
        self.s_max = int(math.floor(math.log(self.R) / math.log(self.eta) + _EPS))
        self._init_state()

    def _init_state(self) -> None:
        self._brackets: list[_Bracket] = []
        self._queue: list[_Slot] = []           # slots waiting to be given to a trial
        self._running: dict[Any, _Slot] = {}     # parameter id -> slot given out
        self._next_s = self.s_max
        self._iteration = 0
        self._imported: list[tuple[float, str, dict, np.ndarray]] = []
        self._imported_used: set[str] = set()

    # ---- schedule ------------------------------------------------------------------------
    def _bracket_schedule(self, s: int) -> tuple[list[int], list[Any]]:
        """(configurations per rung, budget per rung) of bracket ``s``."""
        n = int(math.ceil((self.s_max + 1) * self.eta ** s / (s + 1) - _EPS))
        r = self.R / self.eta ** s
        sizes = [int(math.floor(n / self.eta ** i + _EPS)) for i in range(s + 1)]
        budgets = [int(math.floor(r * self.eta ** i + _EPS)) for i in range(s + 1)]
        return sizes, budgets

    def brackets_schedule(self) -> list[tuple[int, list[int], list[Any]]]:
        """``(s, configurations per rung, budget per rung)`` of every bracket of one iteration."""
        return [(s, *self._bracket_schedule(s)) for s in range(self.s_max, -1, -1)]

    # ---- search space --------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        """Validate and use the space; it must not define ``TRIAL_BUDGET`` itself."""
        refuse_reserved(search_space, (BUDGET_KEY,), type(self).__name__)
        had_space = self.search_space is not None
        super().update_search_space(search_space)
        if had_space:
            self._carry_over()

    def _carry_over(self) -> None:
        """Move every configuration of the brackets to the new space (``nnictl update searchspace``).

        Values that still fit are kept, new parameters are drawn from their prior; a run
        already given out keeps what it ran with for its result, and its promotion runs in
        the new space.  (NNI's advisor crashes here: its queued vectors keep the old length.)
        """
        slots = {id(slot): slot for bracket in self._brackets for rung in bracket.rungs for slot in rung}
        slots.update({id(slot): slot for slot in self._queue})
        slots.update({id(slot): slot for slot in self._running.values()})
        for slot in slots.values():
            if slot.parameter_id is not None and slot.ran_with is None:
                slot.ran_with = slot.params
            slot.vec = carry_over(self._dims, slot.params, self._rng)
            slot.params = python_value(self._decode(slot.vec))
        self._imported = [(loss, key, params, carry_over(self._dims, params, self._rng))
                          for loss, key, params, _ in self._imported]

    # ---- proposals -----------------------------------------------------------------------
    def _new_config(self, budget: Any) -> np.ndarray:
        """A fresh configuration for the first rung of a bracket (random in Hyperband)."""
        return random_vector(self._dims, self._rng)

    def _start_bracket(self) -> None:
        if self._next_s < 0:
            self._next_s = self.s_max
            self._iteration += 1
        s = self._next_s
        self._next_s -= 1
        sizes, budgets = self._bracket_schedule(s)
        bracket = _Bracket(len(self._brackets), s, sizes, budgets, rungs=[[]])
        self._brackets.append(bracket)
        # Imported results warm-start new brackets: their best unused configurations take up
        # to half of the first rung, the rest is sampled.
        warm = []
        for _, key, params, vec in sorted(self._imported, key=lambda t: t[0]):
            if len(warm) >= sizes[0] // 2:
                break
            if key not in self._imported_used:
                self._imported_used.add(key)
                warm.append((params, vec))
        for params, vec in warm:
            bracket.rungs[0].append(_Slot(params, vec, bracket, 0))
        while len(bracket.rungs[0]) < sizes[0]:
            vec = self._new_config(budgets[0])
            params = python_value(self._decode(vec))
            bracket.rungs[0].append(_Slot(params, vec, bracket, 0))
        self._queue.extend(bracket.rungs[0])
        _logger.info("%s: bracket s=%d (iteration %d) starts %d configurations at budget %s",
                     type(self).__name__, s, self._iteration, sizes[0], budgets[0])

    def _decode(self, vec: np.ndarray) -> dict:
        return decode(self._dims, list(vec))

    def _may_start_bracket(self) -> bool:
        if self.exec_mode == "parallelism":
            return True
        return not self._brackets or self._brackets[-1].complete

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next configuration with its ``TRIAL_BUDGET``; NoMoreTrialError while a rung waits."""
        if self.search_space is None:
            raise RuntimeError(f"{type(self).__name__}: update_search_space() must be called "
                               f"before generate_parameters()")
        if not self._queue:
            if not self._may_start_bracket():
                raise NoMoreTrialError(f"{type(self).__name__}: waiting for the results of the current rung")
            self._start_bracket()
        slot = self._queue.pop(0)
        slot.parameter_id = parameter_id
        self._running[parameter_id] = slot
        budget = slot.bracket.budgets[slot.rung]
        return {**slot.params, BUDGET_KEY: budget}

    # ---- results -------------------------------------------------------------------------
    def _add_observation(self, params: dict, vec: np.ndarray, loss: float) -> None:
        params = strip_keys(params, (BUDGET_KEY,))
        super()._add_observation(params, vec, loss)

    def _on_imported(self, params: dict, vec: np.ndarray, loss: float) -> None:
        # the best imported configurations warm-start new brackets
        params = strip_keys(params, (BUDGET_KEY,))
        self._imported.append((loss, params_key(params), params, vec))

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        """Record the result of a configuration at its budget; promote when its rung is complete."""
        loss = self._loss(value)
        slot = self._running.get(parameter_id)
        if slot is None:
            _logger.info("%s: result of unknown parameter id %s kept as history only", type(self).__name__,
                         parameter_id)
            try:
                vec = to_vector(self._dims, encode(self._dims, parameters))
            except ValueError:
                return
            self._add_observation(parameters, vec, loss)
            return
        if slot.loss is not None:
            return   # a second result for the same run (never expected) does not re-rank
        slot.loss = loss
        params = slot.params if slot.ran_with is None else slot.ran_with
        vec = slot.vec if slot.ran_with is None else None   # None: encoded again for the current space
        self._add_observation({**params, BUDGET_KEY: slot.bracket.budgets[slot.rung]}, vec, loss)
        self._maybe_promote(slot.bracket, slot.rung)

    def receive_intermediate_result(self, parameter_id: Any, value: Any) -> None:
        """An intermediate result of a run: it ranks the run if no final result comes (NNI's rule).

        NNI's advisor ranks a configuration by its latest metric:
        ``set_config_perf(int(i), data['parameter_id'], data['sequence'], value)`` for each
        PERIODICAL one, replaced by the FINAL one (``sys.maxsize``) when it comes.
        """
        slot = self._running.get(parameter_id)
        if slot is None or slot.loss is not None:
            return
        try:
            loss = self._loss(value)
        except RuntimeError:
            return
        if math.isfinite(loss):
            slot.last_intermediate = loss

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        """A run without a final result is ranked by its last intermediate result (none: the worst)."""
        slot = self._running.pop(parameter_id, None)
        if slot is None or slot.loss is not None:
            return
        slot.loss = slot.last_intermediate if slot.last_intermediate is not None else math.inf
        self._maybe_promote(slot.bracket, slot.rung)

    def _maybe_promote(self, bracket: _Bracket, i: int) -> None:
        if not bracket.rung_complete(i) or i + 1 >= len(bracket.sizes) or len(bracket.rungs) > i + 1:
            return
        ranked = sorted(range(len(bracket.rungs[i])), key=lambda j: (bracket.rungs[i][j].loss, j))
        keep = [bracket.rungs[i][j] for j in ranked[:bracket.sizes[i + 1]]]
        promoted = [_Slot(s.params, s.vec, bracket, i + 1) for s in keep]
        bracket.rungs.append(promoted)
        # promoted runs go first: they finish brackets (and bring the best results) sooner
        self._queue[0:0] = promoted
        _logger.info("%s: bracket s=%d rung %d complete, %d promoted to budget %s", type(self).__name__,
                     bracket.s, i, len(promoted), bracket.budgets[i + 1])
