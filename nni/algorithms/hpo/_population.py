"""Helpers shared by the evolution, bandit and population tuners and the assessors (private):
classArg checks, single-parameter mutation, and the extra keys (``TRIAL_BUDGET``, checkpoint
directories) some tuners add to every parameter set."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.search_space._flat import Dim, encode, is_active

from ._base import canonical, random_vector, sample_prior, to_vector


def check_int(name: str, value: Any, minimum: int) -> int:
    """Validate an int classArg (bools are refused) and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_number(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False) -> float:
    """Validate a numeric classArg in [low, high] (ends open when asked) and return it as float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def fill_inactive(dims: list[Dim], vec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw values for dims that became active (NaN) and mask dims that became inactive."""
    out = vec.copy()
    for dim in dims:  # parents come before children, so activity is known in order
        if is_active(dim, out):
            if np.isnan(out[dim.index]):
                out[dim.index] = sample_prior(dim, rng, 1)[0]
        else:
            out[dim.index] = np.nan
    return canonical(dims, out)


def mutate(dims: list[Dim], vec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copy ``vec`` with one active parameter changed (categoricals always to another option)."""
    active = [d for d in dims if is_active(d, vec) and not (d.categorical and d.size < 2)]
    if not active:
        return random_vector(dims, rng)
    dim = active[int(rng.integers(len(active)))]
    out = vec.copy()
    if dim.categorical:
        current = int(out[dim.index])
        out[dim.index] = float((current + 1 + int(rng.integers(dim.size - 1))) % dim.size)
        # the children of the old option become inactive; those of the new one are drawn
        for child in dims:
            if child.parent is not None and not is_active(child, out):
                out[child.index] = np.nan
    else:
        out[dim.index] = sample_prior(dim, rng, 1)[0]
    return fill_inactive(dims, out, rng)


def strip_keys(params: Any, keys: tuple[str, ...]) -> Any:
    """``params`` without the extra top-level keys a tuner adds (TRIAL_BUDGET, checkpoint dirs)."""
    if not isinstance(params, dict):
        return params
    return {k: v for k, v in params.items() if k not in keys}


def refuse_reserved(space: dict, keys: tuple[str, ...], tuner: str) -> None:
    """Refuse a search space that defines a key the tuner adds to every parameter set."""
    clash = [k for k in keys if isinstance(space, dict) and k in space]
    if clash:
        raise ValueError(f"{tuner}: the search space must not define {', '.join(map(repr, clash))}: "
                         f"{tuner} adds {'that key' if len(clash) == 1 else 'those keys'} to every "
                         f"parameter set itself; rename the parameter")


def carry_over(dims: list[Dim], params: Any, rng: np.random.Generator) -> np.ndarray:
    """``params`` as an internal vector of a changed search space: the values that still fit
    are kept, new or no longer fitting parameters are drawn from their prior."""
    xs = encode(dims, params if isinstance(params, dict) else {},
                fill=lambda dim: sample_prior(dim, rng, 1)[0])
    return fill_inactive(dims, to_vector(dims, xs), rng)
