"""Shared machinery of the built-in tuners (private).

Handles the search space, history (completed and pending trials as internal vectors),
optimize mode, seeding, NaN/inf metrics, ``import_data`` and de-duplication: where the
whole space is finite no parameter set is proposed twice while unused points remain.
Once every point has been used, an *exhaustive* tuner (Random, TPE, GridSearch: NNI's
ones that end a finite space) raises :class:`NoMoreTrialError`; the others go on
proposing (repeats allowed), as NNI's Anneal, Evolution, GP, Metis, SMAC, ... do.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from typing import Any

import numpy as np

from nni.errors import NoMoreTrialError
from nni.search_space import validate_search_space
from nni.search_space._flat import Dim, decode, encode, enumerate_space, flatten, is_active, space_size
from nni.tuner import Tuner
from nni.utils import OptimizeMode, extract_scalar_reward

_logger = logging.getLogger(__name__)

#: Finite spaces up to this size are enumerated when random proposals keep colliding.
_ENUMERATE_LIMIT = 200_000


def parse_optimize_mode(mode: Any, default: str | None = "minimize") -> OptimizeMode:
    if mode is None:
        mode = default
    if isinstance(mode, OptimizeMode):
        return mode
    if isinstance(mode, str):
        for m in OptimizeMode:
            if m.value == mode.lower():
                return m
    raise ValueError(f"optimize_mode must be 'minimize' or 'maximize', got {mode!r}")


def parse_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return seed


def params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


def to_vector(dims: list[Dim], xs: list) -> np.ndarray:
    return np.array([np.nan if x is None else float(x) for x in xs], dtype=float)


def sample_prior(dim: Dim, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` internal values drawn from a dim's prior."""
    if dim.categorical:
        return rng.integers(0, dim.size, size=n).astype(float)
    if dim.normal:
        return rng.normal(dim.mu, dim.sigma, size=n)
    return rng.uniform(dim.low, dim.high, size=n)


def canonical(dims: list[Dim], vec: np.ndarray) -> np.ndarray:
    """Round numeric values to what the trial receives (q steps, clipping) and mask inactive dims."""
    out = vec.copy()
    for dim in dims:
        if not is_active(dim, out):
            out[dim.index] = np.nan
        elif not dim.categorical:
            out[dim.index] = dim.encode_numeric(dim.decode_numeric(float(out[dim.index])))
    return out


def random_vector(dims: list[Dim], rng: np.random.Generator) -> np.ndarray:
    vec = np.array([sample_prior(d, rng, 1)[0] for d in dims], dtype=float)
    return canonical(dims, vec)


def python_value(x: Any) -> Any:
    """Convert numpy scalars nested anywhere in parameters into Python values."""
    if isinstance(x, dict):
        return {k: python_value(v) for k, v in x.items()}
    if isinstance(x, list):
        return [python_value(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


class BaseTuner(Tuner):
    """Common state; subclasses implement :meth:`_propose` (return an internal vector)."""

    #: Whether the tuner needs an optimize mode (minimize when None) to rank results.
    _default_mode: str | None = "minimize"
    #: Whether a used-up finite space ends the experiment (else repeats are proposed).
    _exhaustive: bool = True
    #: Whether NNI 2.x's version of the tuner proposed repeats of a used-up finite space (its
    #: hyperopt-based TPE, Random and Anneal did): multi-phase experiments, which exist only in
    #: NNI 2.x, get that behaviour back (see :meth:`repeat_when_used_up`).
    _repeated_in_nni2: bool = False
    #: Whether ``import_data(data, partial=True)`` takes results that lack some of the space's
    #: parameters (ones added since: a warm start's older results, docs/warm_start.md); the
    #: tuner then models those parameters from its other observations (TPE: the parameter's
    #: prior in that observation's component). A plain ``import_data`` skips such rows (NNI).
    takes_partial_results: bool = False

    def repeat_when_used_up(self) -> None:
        """Propose repeats instead of ending once a finite space is used up (multi-phase, as NNI 2.x)."""
        if self._repeated_in_nni2:
            self._exhaustive = False

    def __init__(self, optimize_mode: Any = None, seed: Any = None) -> None:
        self.optimize_mode = parse_optimize_mode(optimize_mode, self._default_mode or "minimize")
        self.seed = parse_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self.search_space: dict | None = None
        self._dims: list[Dim] = []
        self._size: float = math.inf
        self._history: list[tuple[dict, float]] = []   # (params, loss) of completed trials
        self._X = np.zeros((0, 0))
        self._y = np.zeros(0)
        self._pending: dict[Any, tuple[dict, np.ndarray]] = {}
        self._seen: set[str] = set()
        self._all_points: list | None = None

    # ---- search space ----------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        validate_search_space(search_space)
        self.search_space = copy.deepcopy(search_space)
        self._dims = flatten(self.search_space)
        self._size = space_size(self._dims)
        self._all_points = None
        # re-encode history against the new space; drop what no longer fits
        history, self._history = self._history, []
        rows, losses = [], []
        seen: set[str] = set()
        for params, loss in history:
            try:
                vec = to_vector(self._dims, encode(self._dims, params))
            except ValueError:
                continue
            self._history.append((params, loss))
            rows.append(vec)
            losses.append(loss)
            seen.add(params_key(decode(self._dims, list(vec))))
        self._X = np.array(rows, dtype=float).reshape(len(rows), len(self._dims))
        self._y = np.array(losses, dtype=float)
        pending = self._pending
        self._pending = {}
        for pid, (params, _) in pending.items():
            try:
                vec = to_vector(self._dims, encode(self._dims, params))
            except ValueError:
                continue
            self._pending[pid] = (params, vec)
            seen.add(params_key(decode(self._dims, list(vec))))
        self._seen = seen
        self._on_space_updated()

    def _on_space_updated(self) -> None:
        pass

    @property
    def is_finite(self) -> bool:
        return self._size != math.inf

    # ---- proposals -------------------------------------------------------------------------
    def _propose(self) -> np.ndarray:
        raise NotImplementedError

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.search_space is None:
            raise RuntimeError(f"{type(self).__name__}: update_search_space() must be called "
                               f"before generate_parameters()")
        if self.is_finite and len(self._seen) >= self._size:
            if self._exhaustive:
                raise NoMoreTrialError(f"Search space fully explored: all {int(self._size)} parameter sets used")
            return self._emit(parameter_id, canonical(self._dims, self._propose()))
        vec = None
        for attempt in range(60):
            cand = self._propose() if attempt < 8 else random_vector(self._dims, self._rng)
            cand = canonical(self._dims, cand)
            key = params_key(decode(self._dims, list(cand)))
            if key not in self._seen:
                vec = cand
                break
            if not self.is_finite and attempt >= 8:
                vec = cand  # continuous space: an exact repeat is harmless and astronomically rare
                break
        if vec is None:
            vec = self._pick_unused()
        return self._emit(parameter_id, vec)

    def _pick_unused(self) -> np.ndarray:
        if self._size > _ENUMERATE_LIMIT:
            return canonical(self._dims, random_vector(self._dims, self._rng))
        if self._all_points is None:
            self._all_points = [to_vector(self._dims, xs) for xs in enumerate_space(self._dims)]
        unused = [v for v in self._all_points if params_key(decode(self._dims, list(v))) not in self._seen]
        if not unused:
            raise NoMoreTrialError(f"Search space fully explored: all {int(self._size)} parameter sets used")
        return unused[int(self._rng.integers(len(unused)))]

    def _emit(self, parameter_id: Any, vec: np.ndarray) -> dict:
        params = python_value(decode(self._dims, list(vec)))
        self._seen.add(params_key(params))
        self._pending[parameter_id] = (params, vec)
        return params

    # ---- results ---------------------------------------------------------------------------
    def _loss(self, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        try:
            reward = extract_scalar_reward(value)
        except RuntimeError:
            if isinstance(value, float) or value is None:
                return math.inf
            raise
        if not math.isfinite(reward):
            return math.inf  # NaN / inf metrics count as the worst observation
        return -reward if self.optimize_mode is OptimizeMode.Maximize else reward

    # The history as arrays. Rows are appended into buffers that double when full, so
    # importing n results costs O(n), not O(n**2) (a copy per row); ``_X``/``_y`` are
    # views of the filled part and assigning them replaces the buffers.
    @property
    def _X(self) -> np.ndarray:
        return self._x_buf[:self._n_obs]

    @_X.setter
    def _X(self, value: np.ndarray) -> None:
        self._x_buf = np.array(value, dtype=float)
        self._n_obs = len(self._x_buf)

    @property
    def _y(self) -> np.ndarray:
        return self._y_buf[:self._n_obs]

    @_y.setter
    def _y(self, value: np.ndarray) -> None:
        self._y_buf = np.array(value, dtype=float)
        self._n_obs = len(self._y_buf)

    def _add_observation(self, params: dict, vec: np.ndarray | None, loss: float) -> None:
        n, d = self._n_obs, len(self._dims)
        if vec is None or len(vec) != d:
            # made for an earlier search space (a run given out before `update searchspace`):
            # encoded again, or left out when it does not fit the new space
            try:
                vec = to_vector(self._dims, encode(self._dims, params))
            except ValueError as exc:
                _logger.info("%s: result not used for the model: %s", type(self).__name__, exc)
                return
        self._history.append((params, loss))
        if self._x_buf.ndim != 2 or self._x_buf.shape[1] != d or len(self._x_buf) <= n or len(self._y_buf) <= n:
            capacity = max(16, 2 * (n + 1))
            x_buf, y_buf = np.zeros((capacity, d)), np.zeros(capacity)
            x_buf[:n] = self._x_buf[:n].reshape(n, d)
            y_buf[:n] = self._y_buf[:n]
            self._x_buf, self._y_buf = x_buf, y_buf
        self._x_buf[n] = vec
        self._y_buf[n] = loss
        self._n_obs = n + 1
        self._seen.add(params_key(decode(self._dims, list(vec))))

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        self._observe(parameter_id, parameters, self._loss(value))

    def _observe(self, parameter_id: Any, parameters: dict, loss: Any) -> None:
        """Record ``loss`` for a parameter set: the vector it was generated as, or (a set this
        tuner did not generate) the set encoded again; one that does not fit the space is skipped."""
        entry = self._pending.pop(parameter_id, None)
        if entry is not None:
            params, vec = entry
        else:
            try:
                vec = to_vector(self._dims, encode(self._dims, parameters))
            except ValueError as exc:
                _logger.warning("%s: ignoring result of parameter %s: %s", type(self).__name__, parameter_id, exc)
                return
            params = parameters
        self._add_observation(params, vec, loss)

    def receive_customized_trial_result(self, parameter_id: Any, parameters: dict, value: Any,
                                        **kwargs: Any) -> None:
        self.receive_trial_result(parameter_id, parameters, value, **kwargs)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        # a failed trial's parameters stay "seen": failures are usually deterministic
        self._pending.pop(parameter_id, None)

    def import_data(self, data: list[dict[str, Any]], partial: bool = False) -> None:
        if self.search_space is None:
            raise RuntimeError(f"{type(self).__name__}: update_search_space() must be called before import_data()")
        imported = 0
        for i, entry in enumerate(data or []):
            if not isinstance(entry, dict) or "parameter" not in entry or "value" not in entry:
                _logger.info("import_data: skipping entry #%d: needs 'parameter' and 'value' keys", i)
                continue
            params = entry["parameter"]
            try:
                xs = encode(self._dims, params, missing_ok=partial and self.takes_partial_results)
            except ValueError as exc:
                _logger.info("import_data: skipping entry #%d: does not fit the search space: %s", i, exc)
                continue
            try:
                loss = self._loss(entry["value"])
            except RuntimeError as exc:
                _logger.info("import_data: skipping entry #%d: %s", i, exc)
                continue
            vec = to_vector(self._dims, xs)
            # One private copy (the caller may reuse its rows), shared by the history and the
            # hook: neither changes it, and a 100,000-row resume would hold a second copy.
            params = copy.deepcopy(params)
            self._add_observation(params, vec, loss)
            self._on_imported(params, vec, loss)
            imported += 1
        _logger.info("import_data: imported %d of %d entries", imported, len(data or []))
        if imported and self.seed is not None:
            # A resumed experiment rebuilds its tuner with the same seed and imports its history;
            # without this it would replay the proposals it made before (still reproducible).
            self._rng = np.random.default_rng([self.seed, len(self._y)])

    def _on_imported(self, params: dict, vec: np.ndarray, loss: float) -> None:
        """Called for each row ``import_data`` accepted, after it joined the history (a hook)."""

    # ---- helpers for model-based tuners -------------------------------------------------------
    def _observations(self, liar: str | None) -> tuple[np.ndarray, np.ndarray, int]:
        """Completed observations plus pending ones imputed with a constant liar."""
        X, y = self._X.reshape(len(self._y), len(self._dims)), self._y
        n_done = len(y)
        if liar and self._pending and n_done:
            finite = y[np.isfinite(y)]
            if finite.size:
                lie = {"best": finite.min(), "worst": finite.max(), "mean": finite.mean()}[liar]
                P = np.array([vec for _, vec in self._pending.values()], dtype=float)
                X = np.vstack([X, P])
                y = np.concatenate([y, np.full(len(P), lie)])
        return X, y, n_done
