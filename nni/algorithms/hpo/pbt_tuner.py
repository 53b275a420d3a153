"""Population Based Training (NNI's ``PBTTuner``, Jaderberg et al. 2017).

A population of ``population_size`` members trains generation by generation.  Every
parameter set carries two extra keys:

* ``load_checkpoint_dir``: where the trial should load its model from (if a checkpoint
  is there; in generation 0 it is the same directory as ``save_checkpoint_dir``, empty);
* ``save_checkpoint_dir``: where the trial must save its model at the end.

Directories are ``<all_checkpoint_dir>/<member>/<generation>`` and are created by the
tuner.  ``all_checkpoint_dir`` defaults to the experiment's ``checkpoint/`` directory,
which the manager gives its algorithms (``nni.recoverable.checkpoint_directory()``, NNI's
``$NNI_CHECKPOINT_DIRECTORY``; else ``~/nni/checkpoint/<experiment id>``).

Generation 0 is random (or the best imported configurations, see ``import_data``).
When every member of a generation has a result (a trial that ends without one counts
as the worst), the members are ranked: the bottom ``fraction`` *exploit* a random member
of the top ``fraction`` (they load its checkpoint and take its hyperparameters) and
*explore* (each hyperparameter is redrawn from its prior with probability
``resample_probability``, otherwise it moves one step up or down, as in NNI: a
``uniform``/``loguniform`` by ``factor`` x its range (in log space for log types), a
``normal`` by ``factor`` x sigma, a q-type by one ``q``, a ``randint`` by 1 - kept in
range - and a choice among numbers to a neighbouring option).  The other members continue from their own checkpoint with the
same hyperparameters.  While a generation runs the tuner gives nothing
(:class:`nni.NoMoreTrialError`); the manager asks again after each result.  Generations
continue until the experiment's trial or time limit.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nni.errors import NoMoreTrialError
from nni.recoverable import checkpoint_directory
from nni.search_space._flat import decode, encode, is_active

from ._base import BaseTuner, params_key, python_value, random_vector, sample_prior, to_vector
from ._population import carry_over, check_int, check_number, fill_inactive, refuse_reserved, strip_keys

__all__ = ["PBTTuner"]

_logger = logging.getLogger(__name__)

LOAD_KEY = "load_checkpoint_dir"
SAVE_KEY = "save_checkpoint_dir"
_DIR_KEYS = (LOAD_KEY, SAVE_KEY)


@dataclass
class _Member:
    vec: np.ndarray
    params: dict               # hyperparameters only
    load_dir: str
    save_dir: str
    parameter_id: Any = None
    given: bool = False
    loss: float | None = None
    ran_with: dict | None = None   # the configuration given out, when the space changed since


def default_checkpoint_dir() -> str:
    """The experiment's checkpoint directory (``nni.recoverable.checkpoint_directory``: given by the
    manager, or ``$NNI_CHECKPOINT_DIRECTORY``), else ``~/nni/checkpoint/<experiment id>``."""
    given = checkpoint_directory()
    if given:
        return given
    return os.path.join(os.path.expanduser("~"), "nni", "checkpoint", os.environ.get("NNI_EXP_ID", "default"))


class PBTTuner(BaseTuner):
    """Population Based Training over checkpoint directories.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    all_checkpoint_dir
        Root of the members' checkpoint directories (default: see module docs).
    population_size
        Members per generation (trials per generation).
    factor
        Perturbation size: a continuous number moves by ``factor`` x its range (or sigma).
    resample_probability
        Probability that an exploring hyperparameter is redrawn from its prior instead.
    fraction
        Share of the population that is replaced (bottom) / copied (top) each generation.
    seed
        Makes the proposals reproducible.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", all_checkpoint_dir: str | None = None,
                 population_size: int = 10, factor: float = 0.2, resample_probability: float = 0.25,
                 fraction: float = 0.2, seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        if all_checkpoint_dir is not None and not isinstance(all_checkpoint_dir, (str, os.PathLike)):
            raise ValueError(f"all_checkpoint_dir must be a directory path or None, got {all_checkpoint_dir!r}")
        self.all_checkpoint_dir = None if all_checkpoint_dir is None else os.fspath(all_checkpoint_dir)
        self.population_size = check_int("population_size", population_size, 2)
        self.factor = check_number("factor", factor, 0, 1, high_open=True)
        self.resample_probability = check_number("resample_probability", resample_probability, 0, 1)
        self.fraction = check_number("fraction", fraction, 0, 0.5, low_open=True)
        self.generation = 0
        self._members: list[_Member] = []
        self._by_id: dict[Any, _Member] = {}
        self._imported: list[tuple[float, dict, np.ndarray]] = []

    # ---- space, directories --------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        """Validate and use the space; it must not define the checkpoint keys."""
        refuse_reserved(search_space, _DIR_KEYS, "PBTTuner")
        had_space = self.search_space is not None
        super().update_search_space(search_space)
        if had_space:
            # ``nnictl update searchspace``: members move to the new space (values that fit are
            # kept, new parameters drawn); a running member's result is its old configuration's
            for m in self._members:
                if m.given and m.ran_with is None:
                    m.ran_with = m.params
                m.vec = carry_over(self._dims, m.params, self._rng)
                m.params = python_value(decode(self._dims, list(m.vec)))
            self._imported = [(loss, params, carry_over(self._dims, params, self._rng))
                              for loss, params, _ in self._imported]
        if self.all_checkpoint_dir is None:
            # resolved here, not in __init__, so the manager's per-experiment variable is seen
            self.all_checkpoint_dir = default_checkpoint_dir()

    def _dir(self, member: int, generation: int) -> str:
        assert self.all_checkpoint_dir is not None
        return os.path.join(self.all_checkpoint_dir, str(member), str(generation))

    def _member(self, index: int, vec: np.ndarray, load_dir: str | None) -> _Member:
        save = self._dir(index, self.generation)
        return _Member(vec, python_value(decode(self._dims, list(vec))), load_dir or save, save)

    # ---- generations ---------------------------------------------------------------------
    def _first_generation(self) -> None:
        ranked = sorted(self._imported, key=lambda t: t[0])
        seen: set[str] = set()
        self._members = []
        for _, params, vec in ranked:
            if len(self._members) >= self.population_size:
                break
            if params_key(params) not in seen:
                seen.add(params_key(params))
                member = self._member(len(self._members), vec, None)
                member.params = params   # exactly what was imported (no float round trip)
                self._members.append(member)
        while len(self._members) < self.population_size:
            self._members.append(self._member(len(self._members), random_vector(self._dims, self._rng), None))

    def _next_generation(self) -> None:
        old = self._members
        order = sorted(range(len(old)), key=lambda i: (old[i].loss, i))
        cut = min(max(1, int(math.ceil(self.fraction * len(old) - 1e-9))), len(old) // 2)
        top, bottom = order[:cut], set(order[-cut:])
        self.generation += 1
        members = []
        for i, m in enumerate(old):
            if i in bottom:
                src = old[top[int(self._rng.integers(len(top)))]]
                members.append(self._member(i, self._explore(src.vec), src.save_dir))
            else:
                member = self._member(i, m.vec, m.save_dir)
                member.params = m.params   # unchanged hyperparameters, exactly as before
                members.append(member)
        self._members = members
        _logger.info("PBTTuner: generation %d: members %s exploit %s", self.generation,
                     sorted(bottom), [members[i].load_dir for i in sorted(bottom)])

    def _explore(self, vec: np.ndarray) -> np.ndarray:
        out = vec.copy()
        for dim in self._dims:
            if not is_active(dim, out) or np.isnan(out[dim.index]):
                continue
            if self._rng.random() < self.resample_probability:
                out[dim.index] = sample_prior(dim, self._rng, 1)[0]
                continue
            up = self._rng.random() < 0.5
            out[dim.index] = self._step(dim, float(out[dim.index]), up)
        return fill_inactive(self._dims, out, self._rng)

    def _step(self, dim: Any, x: float, up: bool) -> float:
        """NNI's move of one value (internal ``x``) one step up or down, kept in range.

        NNI's ``exploit_and_explore``: a randint moves by 1, a q-type by one ``q``
        (``multi = round(hyper_parameter / q); uv = (multi + 1) * q``), uniform and
        normal by ``(high - low) * factor`` / ``sigma * factor`` (in log space for the
        log types); a choice moves to the neighbouring option (here: only a choice among
        numbers, ordered by value - other options have no order).
        """
        sign = 1.0 if up else -1.0
        if dim.type == "randint":
            current = (dim.lower + int(x)) if dim.categorical else int(round(x))
            new = min(max(current + int(sign), dim.lower), dim.lower + dim.size - 1)
            return float(new - dim.lower) if dim.categorical else float(new)
        if dim.categorical:
            values = dim.value
            ordinal = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if not ordinal or dim.size < 2:
                return x
            ranks = sorted(range(dim.size), key=lambda k: values[k])
            pos = min(max(ranks.index(int(x)) + int(sign), 0), dim.size - 1)
            return float(ranks[pos])
        if dim.q is not None:
            value = (round(dim.decode_numeric(x) / dim.q) + sign) * dim.q
            if dim.log and value <= 0:
                return x   # a log type has no value at or below 0 (NNI: lower bound 1e-10)
            return dim.encode_numeric(dim.finalize(value))
        if dim.normal:
            return x + sign * dim.sigma * self.factor
        return min(max(x + sign * (dim.high - dim.low) * self.factor, dim.low), dim.high)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next member of the current generation; NoMoreTrialError while it runs."""
        if self.search_space is None:
            raise RuntimeError("PBTTuner: update_search_space() must be called before generate_parameters()")
        if not self._members:
            self._first_generation()
        for m in self._members:
            if not m.given:
                m.given = True
                m.parameter_id = parameter_id
                self._by_id[parameter_id] = m
                os.makedirs(m.save_dir, exist_ok=True)
                return {**m.params, LOAD_KEY: m.load_dir, SAVE_KEY: m.save_dir}
        raise NoMoreTrialError(f"PBTTuner: waiting for generation {self.generation} to finish")

    # ---- results -------------------------------------------------------------------------
    def _add_observation(self, params: dict, vec: np.ndarray, loss: float) -> None:
        params = strip_keys(params, _DIR_KEYS)
        super()._add_observation(params, vec, loss)

    def _on_imported(self, params: dict, vec: np.ndarray, loss: float) -> None:
        # before the first generation starts, its members are the best imported results
        self._imported.append((loss, strip_keys(params, _DIR_KEYS), vec))

    def import_data(self, data: list[dict[str, Any]]) -> int | None:  # type: ignore[override]
        """Take earlier results; continue an earlier PBT run where it stopped, as NNI does.

        Every usable entry joins the tuner's history. When entries carry this tuner's
        ``save_checkpoint_dir`` (``.../<member>/<generation>``), the latest generation with a
        result for every member (and whose checkpoint directories exist) becomes the population
        the next generation is bred from, and its number is returned (NNI's return value);
        otherwise None, and generation 0 starts from the best imported configurations.
        """
        super().import_data(data)
        if self._members:
            _logger.warning("PBTTuner: import_data after the first generation started; "
                            "the running population is kept")
            return None
        population = self._last_complete_generation(data or [])
        if population is None:
            return None
        generation, members = population
        self.generation = generation
        self._members = members
        self._next_generation()
        _logger.info("PBTTuner: continuing from generation %d (%d imported entries)", self.generation, len(data))
        return self.generation

    def _last_complete_generation(self, data: list[Any]) -> tuple[int, list[_Member]] | None:
        by_generation: dict[int, list[_Member]] = {}
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("parameter"), dict):
                continue
            params = entry["parameter"]
            save_dir = params.get(SAVE_KEY)
            try:
                generation = int(os.path.basename(os.path.normpath(str(save_dir))))
                hyper = strip_keys(params, _DIR_KEYS)
                vec = to_vector(self._dims, encode(self._dims, hyper))
            except (TypeError, ValueError):
                continue
            value = entry.get("value")
            try:
                loss = self._loss(value) if value not in (None, {}, []) else math.inf
            except RuntimeError:
                loss = math.inf     # as NNI: a result it cannot read ranks as the worst
            if not math.isfinite(loss):
                loss = math.inf
            member = _Member(vec, hyper, str(params.get(LOAD_KEY, save_dir)), str(save_dir),
                             given=True, loss=loss)
            by_generation.setdefault(generation, []).append(member)
        for generation in sorted(by_generation, reverse=True):
            members = by_generation[generation]
            if len(members) < self.population_size:
                continue
            members = members[:self.population_size]
            if not all(os.path.isdir(m.save_dir) for m in members):
                _logger.warning("PBTTuner: generation %d's checkpoint directories are gone; not continued", generation)
                return None
            return generation, members
        return None

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        """Record a member's result; start the next generation when all members have one."""
        loss = self._loss(value)
        member = self._by_id.get(parameter_id)
        if member is None or member.loss is not None:
            return
        member.loss = loss
        if member.ran_with is None:
            self._add_observation(member.params, member.vec, loss)
        else:
            self._add_observation(member.ran_with, None, loss)
        self._check_generation()

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        """A member that ended without a result counts as the worst of its generation."""
        member = self._by_id.pop(parameter_id, None)
        if member is None or member.loss is not None:
            return
        member.loss = math.inf
        self._check_generation()

    def _check_generation(self) -> None:
        if self._members and all(m.given and m.loss is not None for m in self._members):
            self._next_generation()
