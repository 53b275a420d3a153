"""Flattened, tuner-friendly view of a validated search space (private; numpy-free).

A space becomes a list of :class:`Dim`, parents before children.  Each dimension has
an *internal* value:

* categorical dims (``choice``, ``randint`` with at most ``CATEGORICAL_RANDINT_MAX``
  values, and a uniform-family range with ``low == high``, which is a constant): the
  option index ``0 .. size-1``;
* numeric dims: a float in the sampling space (the log of the value for log types;
  randint with a huge range is numeric on ``[lower - 0.5, upper - 0.5]``).

A dimension nested in a choice option is *active* only when its parent is active and
the parent's index equals ``parent_option``; inactive dims have internal value ``None``
(tuners use NaN).  :func:`decode` turns internal values into NNI-format parameters,
:func:`encode` does the reverse (for ``import_data``) and rejects values that do not fit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from . import is_nested_option

CATEGORICAL_RANDINT_MAX = 1024
# A finite numeric dim with more values than this is never listed, only counted (and
# sampled as a range); listing 10**6 floats costs ~0.1 s and ~30 MB.
ENUMERATE_MAX = 1_000_000


@dataclass
class Dim:
    index: int
    name: str                      # key inside its containing dict
    path: tuple                    # display path, e.g. ("model", "svm", "C")
    type: str
    value: list
    parent: int | None = None      # index of the choice dim this one is nested in
    parent_option: int | None = None
    categorical: bool = False
    size: int = 0                  # number of categories
    lower: int = 0                 # randint lower bound
    nested: tuple = ()             # choice: which options are sub-spaces
    log: bool = False
    normal: bool = False
    low: float = 0.0               # internal bounds (uniform family / big randint)
    high: float = 0.0
    mu: float = 0.0                # internal mean / sigma (normal family)
    sigma: float = 1.0
    q: float | None = None
    clip: tuple | None = None      # bounds of the final value (uniform family)
    integer: bool = False          # big randint handled numerically
    constant: float | None = None  # uniform family with low == high: one categorical value
    children: list = field(default_factory=list)

    @property
    def bounded(self) -> bool:
        return not self.normal

    @property
    def display(self) -> str:
        return "/".join(str(p) for p in self.path)

    # ---- internal value -> parameter value -------------------------------------------------
    def finalize(self, v: float) -> Any:
        """Map a value in the original space to what the trial receives."""
        if self.q is not None:
            v = round(v / self.q) * self.q
        if self.clip is not None:
            v = min(max(v, self.clip[0]), self.clip[1])
        if self.integer:
            return int(min(max(round(v), self.lower), self.lower + self.size - 1))
        return float(v)

    def decode_numeric(self, x: float) -> Any:
        v = math.exp(x) if self.log else x
        return self.finalize(v)

    def encode_numeric(self, v: float) -> float:
        if self.log:
            if v <= 0:
                v = (self.q or 1e-12) / 2
            return math.log(v)
        return float(v)

    # ---- finiteness ------------------------------------------------------------------------
    def count(self) -> float:
        """How many distinct values this dim can take (``math.inf`` when continuous).

        Worked out arithmetically, never by listing: ``randint [0, 2**63]`` or a
        ``quniform`` with 10**12 steps costs nothing (choice options are counted by
        :func:`space_size`, which also walks nested sub-spaces).
        """
        if self.categorical or self.integer:
            return self.size
        if self.q is None or self.clip is None:
            return math.inf
        k_lo, k_hi = self._q_steps()
        steps = k_hi - k_lo + 1
        if steps <= ENUMERATE_MAX:
            return len(self._q_values(k_lo, k_hi))
        # Every step value strictly inside the bounds is distinct; the ones rounded
        # outside them are clipped onto a bound.
        lo, hi = self.clip
        inside = max(0, math.ceil(hi / self.q) - math.floor(lo / self.q) - 1)
        return inside + 2 if hi > lo else 1

    def finite_values(self) -> list | None:
        """Internal values of a finite dim, or None when it is continuous *or* has more than
        ``ENUMERATE_MAX`` values (callers then sample it as a numeric range)."""
        if self.categorical:
            return list(range(self.size))
        if self.integer:
            if self.size > ENUMERATE_MAX:
                return None
            return [float(self.lower + i) for i in range(self.size)]
        if self.q is None or self.clip is None:
            return None
        k_lo, k_hi = self._q_steps()
        if k_hi - k_lo + 1 > ENUMERATE_MAX:
            return None
        return [self.encode_numeric(v) for v in self._q_values(k_lo, k_hi)]

    def _q_steps(self) -> tuple[int, int]:
        assert self.q is not None and self.clip is not None
        lo, hi = self.clip
        return round(lo / self.q), round(hi / self.q)

    def _q_values(self, k_lo: int, k_hi: int) -> list:
        seen: dict = {}
        for k in range(k_lo, k_hi + 1):
            seen.setdefault(self.finalize(k * self.q), None)
        return list(seen)


def flatten(space: dict) -> list[Dim]:
    """Flatten a *validated* search space into dims (parents before children)."""
    dims: list[Dim] = []
    _flatten(space, (), None, None, dims)
    return dims


def _flatten(space: dict, prefix: tuple, parent: int | None, option: int | None, dims: list[Dim]) -> None:
    for name, spec in space.items():
        if prefix and name == "_name":
            continue
        type_, value = spec["_type"], list(spec["_value"])
        dim = Dim(index=len(dims), name=name, path=prefix + (name,), type=type_, value=value,
                  parent=parent, parent_option=option)
        if parent is not None:
            dims[parent].children.append(dim.index)
        _configure(dim)
        dims.append(dim)
        if type_ == "choice":
            for i, opt in enumerate(value):
                if is_nested_option(opt):
                    _flatten(opt, dim.path + (opt["_name"],), dim.index, i, dims)


def _configure(dim: Dim) -> None:
    t, v = dim.type, dim.value
    if t == "choice":
        dim.categorical = True
        dim.size = len(v)
        dim.nested = tuple(is_nested_option(o) for o in v)
        return
    if t == "randint":
        dim.lower = math.ceil(v[0])
        dim.size = math.ceil(v[1]) - dim.lower
        if dim.size <= CATEGORICAL_RANDINT_MAX:
            dim.categorical = True
        else:
            dim.integer = True
            dim.low, dim.high = dim.lower - 0.5, dim.lower + dim.size - 0.5
        return
    if "normal" not in t and v[0] == v[1]:
        # NNI accepts a degenerate range; a one-value categorical keeps every tuner's
        # numeric model (bounds, scaling) free of a zero-width dimension.
        dim.categorical = True
        dim.size = 1
        dim.constant = float(v[0])
        return
    dim.log = "log" in t
    dim.q = float(v[2]) if t.startswith("q") else None
    if "normal" in t:
        dim.normal = True
        dim.mu, dim.sigma = float(v[0]), float(v[1])
    else:
        dim.clip = (float(v[0]), float(v[1]))
        dim.low, dim.high = float(v[0]), float(v[1])
        if dim.log:
            dim.low, dim.high = math.log(dim.low), math.log(dim.high)


def is_active(dim: Dim, xs: Sequence) -> bool:
    """Whether ``dim`` is active given internal values of its ancestors (None/NaN = inactive)."""
    if dim.parent is None:
        return True
    px = xs[dim.parent]
    if px is None or px != px:  # None or NaN
        return False
    return int(px) == dim.parent_option


def decode(dims: list[Dim], xs: Sequence) -> dict:
    """Internal values (indexable by dim index; None/NaN for inactive) -> NNI parameters."""
    root: dict = {}
    containers: dict = {}
    for dim in dims:
        x = xs[dim.index]
        if x is None or x != x or not is_active(dim, xs):
            continue
        target = root if dim.parent is None else containers[(dim.parent, dim.parent_option)]
        if dim.categorical:
            i = int(x)
            if dim.type == "randint":
                target[dim.name] = dim.lower + i
            elif dim.constant is not None:
                target[dim.name] = dim.constant
            elif dim.nested[i]:
                sub = {"_name": dim.value[i]["_name"]}
                target[dim.name] = sub
                containers[(dim.index, i)] = sub
            else:
                target[dim.name] = copy.deepcopy(dim.value[i])
        else:
            target[dim.name] = dim.decode_numeric(float(x))
    return root


def encode(dims: list[Dim], params: Any, fill: Any = None, *, missing_ok: bool = False) -> list:
    """NNI parameters -> internal values (None for inactive). Raises ValueError saying what does not fit.

    With ``fill`` (a function of a dim giving an internal value), a missing value or one
    that does not fit is replaced by ``fill(dim)`` instead (carrying parameters over to a
    changed search space).

    ``missing_ok``: a parameter the set lacks (one added to the space since: a warm start's
    older results) is None, as an inactive one, instead of an error; so are the dims nested in it.
    """
    if not isinstance(params, dict):
        raise ValueError(f"parameters must be a dict, got {type(params).__name__}")
    return _encode(dims, params, fill, missing_ok)


def _encode(dims: list[Dim], params: dict, fill: Any, missing_ok: bool = False) -> list:
    xs: list = [None] * len(dims)
    containers: dict = {}
    for dim in dims:
        if not is_active(dim, xs):
            continue
        if missing_ok and fill is None:
            source = params if dim.parent is None else containers[(dim.parent, dim.parent_option)]
            if dim.name not in source:
                continue
        if fill is None:
            _encode_one(dim, params, xs, containers)
            continue
        try:
            _encode_one(dim, params, xs, containers)
        except (ValueError, KeyError, TypeError):
            x = fill(dim)
            xs[dim.index] = int(x) if dim.categorical else float(x)
            if dim.type == "choice" and dim.nested[int(x)]:
                containers[(dim.index, int(x))] = {}   # its sub-space is filled too
    return xs


def _encode_one(dim: Dim, params: dict, xs: list, containers: dict) -> None:
    source = params if dim.parent is None else containers[(dim.parent, dim.parent_option)]
    if dim.name not in source:
        raise ValueError(f"parameter {dim.display!r} is missing")
    v = source[dim.name]
    if dim.type == "choice":
        idx = _choice_index(dim, v)
        xs[dim.index] = idx
        if dim.nested[idx]:
            containers[(dim.index, idx)] = v
    elif dim.type == "randint":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            raise ValueError(f"parameter {dim.display!r}: randint needs an integer, got {v!r}")
        v = int(v)
        if not dim.lower <= v < dim.lower + dim.size:
            raise ValueError(f"parameter {dim.display!r}: {v} is outside "
                             f"[{dim.lower}, {dim.lower + dim.size})")
        xs[dim.index] = v - dim.lower if dim.categorical else float(v)
    else:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"parameter {dim.display!r}: expected a finite number, got {v!r}")
        if dim.constant is not None:
            if not math.isclose(v, dim.constant, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(f"parameter {dim.display!r}: {v} is not the constant {dim.constant}")
            xs[dim.index] = 0
            return
        if dim.clip is not None:
            lo, hi = dim.clip
            tol = 1e-9 * max(1.0, abs(lo), abs(hi))
            if not lo - tol <= v <= hi + tol:
                raise ValueError(f"parameter {dim.display!r}: {v} is outside [{lo}, {hi}]")
        if dim.log and v <= 0 and dim.q is None:
            raise ValueError(f"parameter {dim.display!r}: {dim.type} needs a positive value, got {v}")
        # canonicalize (q rounding, clipping) so equal points compare equal
        xs[dim.index] = dim.encode_numeric(dim.finalize(float(v)))


def _choice_index(dim: Dim, v: Any) -> int:
    if isinstance(v, dict) and "_name" in v:
        for i, opt in enumerate(dim.value):
            if dim.nested[i] and opt["_name"] == v["_name"]:
                return i
        raise ValueError(f"parameter {dim.display!r}: no nested option named {v['_name']!r}")
    for i, opt in enumerate(dim.value):
        if not dim.nested[i] and type(opt) is type(v) and opt == v:
            return i
    for i, opt in enumerate(dim.value):
        if not dim.nested[i] and opt == v and isinstance(opt, bool) == isinstance(v, bool):
            return i
    raise ValueError(f"parameter {dim.display!r}: {v!r} is not one of the choices {dim.value!r}")


# ---- finite spaces ------------------------------------------------------------------------

def space_size(dims: list[Dim]) -> float:
    """Number of distinct parameter sets (``math.inf`` when a dim is continuous)."""
    return _container_size(dims, None)


def _container_size(dims: list[Dim], key: tuple | None) -> float:
    total: float = 1
    for dim in dims:
        if (None if dim.parent is None else (dim.parent, dim.parent_option)) != key:
            continue
        if dim.type == "choice":
            n: float = sum(_container_size(dims, (dim.index, i)) if dim.nested[i] else 1
                           for i in range(dim.size))
        else:
            n = dim.count()
        total *= n
    return total


def enumerate_space(dims: list[Dim], values_of=None) -> Iterator[list]:
    """Yield internal value lists for every point of the space.

    ``values_of(dim)`` gives the internal values to try for a dim (default: all of a
    finite dim's values); a dim is skipped (None) when inactive.
    """
    values_of = values_of or (lambda d: d.finite_values())
    cached = {}

    def rec(i: int, xs: list) -> Iterator[list]:
        if i == len(dims):
            yield list(xs)
            return
        dim = dims[i]
        if not is_active(dim, xs):
            xs[i] = None
            yield from rec(i + 1, xs)
            return
        if i not in cached:
            cached[i] = values_of(dim)
        for x in cached[i]:
            xs[i] = x
            yield from rec(i + 1, xs)
        xs[i] = None

    yield from rec(0, [None] * len(dims))


__all__ = ["Dim", "flatten", "decode", "encode", "is_active", "space_size", "enumerate_space",
           "CATEGORICAL_RANDINT_MAX", "ENUMERATE_MAX"]
