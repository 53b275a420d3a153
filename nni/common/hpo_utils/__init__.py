"""NNI's ``nni.common.hpo_utils``: search-space helpers that users' tuners import.

* :func:`validate_search_space` (NNI's signature: returns a bool, logs the reason, raises
  only with ``raise_exception=True``; uses nni-ng's stricter checks);
* :func:`format_search_space` / :func:`deformat_parameters` / :func:`format_parameters`:
  NNI's "internal" flat format, keyed by the parameter's path tuple, with choices and
  randints as indices and log types on the log scale;
* :class:`ParameterSpec`, :class:`OptimizeMode`, :class:`Deduplicator`.

numpy-free; importing it does not load the tuners.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, NamedTuple, Optional, Tuple

from nni.errors import NoMoreTrialError
from nni.utils import OptimizeMode

__all__ = ["Deduplicator", "OptimizeMode", "ParameterSpec", "deformat_parameters", "format_parameters",
           "format_search_space", "validate_search_space"]

_logger = logging.getLogger(__name__)


def validate_search_space(search_space: Any, support_types: Optional[list] = None,
                          raise_exception: bool = False) -> bool:
    """True when ``search_space`` is valid (and uses only ``support_types``, if given).

    As in NNI, an invalid space is logged and ``False`` returned unless
    ``raise_exception`` is set (then ``ValueError`` is raised).
    """
    from nni.search_space import SearchSpaceError, validate_search_space as validate
    try:
        validate(search_space)
        if support_types is not None:
            for name, spec in search_space.items():
                if spec["_type"] not in support_types:
                    raise SearchSpaceError(f"search space {name!r} has unsupported type {spec['_type']!r} "
                                           f"(supported: {', '.join(support_types)})")
    except SearchSpaceError as exc:
        if raise_exception:
            raise
        _logger.error("%s", exc)
        return False
    return True


class ParameterSpec(NamedTuple):
    """One parameter of a formatted search space (NNI's fields).

    For log types ``low``/``high``/``mu``/``sigma`` describe the logarithm of the value.
    """

    name: str
    type: str
    values: list
    key: Tuple[Any, ...]
    categorical: bool
    size: Optional[int] = None
    low: Optional[float] = None
    high: Optional[float] = None
    normal_distributed: Optional[bool] = None
    mu: Optional[float] = None
    sigma: Optional[float] = None
    q: Optional[float] = None
    clip: Optional[Tuple[float, float]] = None
    log_distributed: Optional[bool] = None

    def is_activated_in(self, partial_parameters: dict) -> bool:
        """Whether this (maybe nested) parameter is active given its ancestors' values."""
        if len(self.key) < 2 or isinstance(self.key[-2], str):
            return True
        return partial_parameters.get(self.key[:-2]) == self.key[-2]

    def is_nested(self) -> bool:
        """Whether this parameter lives inside an option of a nested choice."""
        return any(isinstance(k, int) for k in self.key)


def _is_nested_choices(values: list) -> bool:
    return bool(values) and all(isinstance(v, dict) and "_name" in v for v in values)


def format_search_space(search_space: dict) -> dict:
    """The space as ``{key tuple: ParameterSpec}``, parents before children."""
    out: dict = {}
    _format(search_space, (), out)
    return out


def _format(space: dict, parent: tuple, out: dict) -> None:
    for name, spec in space.items():
        if name == "_name":
            continue
        key = parent + (name,)
        out[key] = _spec(key, spec["_type"], list(spec["_value"]))
        if spec["_type"] == "choice" and _is_nested_choices(spec["_value"]):
            for index, sub in enumerate(spec["_value"]):
                _format(sub, key + (index,), out)


def _spec(key: tuple, type_: str, values: list) -> ParameterSpec:
    fields: dict[str, Any] = {"name": key[-1], "type": type_, "values": values, "key": key,
                              "categorical": type_ in ("choice", "randint")}
    if type_ == "choice":
        fields["size"] = len(values)
    elif type_ == "randint":
        fields["size"] = math.ceil(float(values[1])) - math.ceil(float(values[0]))
    else:
        q = float(values[2]) if type_.startswith("q") else None
        log = "log" in type_
        fields.update(q=q, log_distributed=log)
        if "normal" in type_:
            fields.update(normal_distributed=True, mu=float(values[0]), sigma=float(values[1]))
        else:
            low, high = float(values[0]), float(values[1])
            fields.update(normal_distributed=False, clip=(low, high) if q is not None else None)
            fields.update(low=math.log(low) if log else low, high=math.log(high) if log else high)
    return ParameterSpec(**fields)


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") and not isinstance(x, (int, float)) else x


def deformat_parameters(formatted_parameters: dict, formatted_search_space: dict) -> dict:
    """Internal values (indices, log-scale numbers) -> the parameters a trial receives."""
    out: dict = {}
    for key, x in formatted_parameters.items():
        spec = formatted_search_space[key]
        if spec.categorical:
            x = int(x)
            if spec.type == "randint":
                _assign(out, key, int(math.ceil(float(spec.values[0])) + x))
            elif _is_nested_choices(spec.values):
                _assign(out, key + ("_name",), spec.values[x]["_name"])
            else:
                _assign(out, key, spec.values[x])
        else:
            x = float(_plain(x))
            if spec.log_distributed:
                x = math.exp(x)
            if spec.q is not None:
                x = round(x / spec.q) * spec.q
            if spec.clip:
                x = min(max(x, spec.clip[0]), spec.clip[1])
            _assign(out, key, x)
    return out


def format_parameters(parameters: dict, formatted_search_space: dict) -> dict:
    """Parameters a trial received -> internal values (for imported data / resume)."""
    out: dict = {}
    for key, spec in formatted_search_space.items():
        if not spec.is_activated_in(out):
            continue
        value: Any = parameters
        for part in key:
            if isinstance(part, str):
                value = value[part]
        if spec.categorical:
            if spec.type == "randint":
                out[key] = value - math.ceil(float(spec.values[0]))
            elif _is_nested_choices(spec.values):
                out[key] = [v["_name"] for v in spec.values].index(value["_name"])
            else:
                out[key] = spec.values.index(value)
        else:
            out[key] = math.log(value) if spec.log_distributed else value
    return out


def _assign(params: dict, key: tuple, x: Any) -> None:
    if len(key) == 1:
        params[key[0]] = x
    elif isinstance(key[0], int):
        _assign(params, key[1:], x)
    else:
        _assign(params.setdefault(key[0], {}), key[1:], x)


class Deduplicator:
    """Replaces a repeated parameter set by an unused one (NNI's helper for tuners).

    Call it with formatted parameters; it returns them when new, else the first unused
    point of the grid of the space, and raises :class:`nni.NoMoreTrialError` once every
    point was used.  A space with a continuous parameter never repeats, so it is passed
    through.
    """

    def __init__(self, formatted_search_space: dict) -> None:
        self._space = formatted_search_space
        self._never_dup = any(_never_dup(spec) for spec in formatted_search_space.values())
        self._history: set[str] = set()

    def __call__(self, formatted_parameters: dict) -> dict:
        if self._never_dup or self._add(formatted_parameters):
            return formatted_parameters
        _logger.info("duplicate parameters %s: picking an unused grid point", formatted_parameters)
        for candidate in self._grid():
            if self._add(candidate):
                return candidate
        raise NoMoreTrialError("every point of the search space has been used")

    def _add(self, formatted: dict) -> bool:
        key = json.dumps(deformat_parameters(formatted, self._space), sort_keys=True, default=repr)
        if key in self._history:
            return False
        self._history.add(key)
        return True

    def _grid(self):
        def values(spec: ParameterSpec) -> list:
            if spec.categorical:
                return list(range(spec.size or 0))
            lo, hi = spec.clip  # finite q types only (others are never duplicates)
            k_lo, k_hi = math.ceil(lo / spec.q - 1e-9), math.floor(hi / spec.q + 1e-9)
            points = sorted({min(max(k * spec.q, lo), hi) for k in range(k_lo, k_hi + 1)} | {lo, hi})
            return [math.log(p) if spec.log_distributed else p for p in points]

        def rec(specs: list, partial: dict):
            if not specs:
                yield dict(partial)
                return
            spec, rest = specs[0], specs[1:]
            if not spec.is_activated_in(partial):
                yield from rec(rest, partial)
                return
            for v in values(spec):
                partial[spec.key] = v
                yield from rec(rest, partial)
            partial.pop(spec.key, None)

        yield from rec(list(self._space.values()), {})


def _never_dup(spec: ParameterSpec) -> bool:
    if spec.is_nested() or spec.categorical or spec.q is not None:
        return False
    if spec.normal_distributed:
        return (spec.sigma or 0) > 0
    return (spec.low or 0) < (spec.high or 0)


