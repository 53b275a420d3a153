"""NNI-format search spaces: loading and validation.

A search space maps parameter names to ``{"_type": T, "_value": V}`` specs.  This
module is deliberately free of numpy: the config and CLI code import it.

Supported types (NNI semantics):

* ``choice``: one of the listed options; an option that is a dict with a ``_name``
  key is a nested sub-space, sampled as ``{"_name": name, <param>: value, ...}``
* ``randint [lower, upper)``: an int (both bounds must be ints, as in NNI)
* ``uniform [low, high]``, ``loguniform [low, high]`` (low > 0)
* ``quniform / qloguniform [low, high, q]``: ``clip(round(x / q) * q, low, high)``

For the uniform family ``low == high`` is accepted, as NNI does: the parameter is the
constant ``low``.  An empty ``randint [a, a]`` stays refused (it has no value at all).
``choice`` options must be JSON values (the store, the REST API and the trial all carry
them as JSON).
* ``normal [mu, sigma]``, ``lognormal [mu, sigma]`` (``exp`` of a normal), and their
  quantized forms ``qnormal / qlognormal [mu, sigma, q]``

As in NNI, quantized types yield floats (``round(x / q) * q`` with a float ``q``);
use ``randint`` or ``choice`` where the trial needs a Python int.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
from typing import Any

from ..errors import NniError

__all__ = ["SearchSpaceError", "load_search_space", "validate_search_space", "SEARCH_SPACE_TYPES"]

#: Every ``_type`` NNI defines, with the number of items its ``_value`` needs (None: any, non-empty).
SEARCH_SPACE_TYPES: dict[str, int | None] = {
    "choice": None,
    "randint": 2,
    "uniform": 2,
    "quniform": 3,
    "loguniform": 2,
    "qloguniform": 3,
    "normal": 2,
    "qnormal": 3,
    "lognormal": 2,
    "qlognormal": 3,
}

_ARG_NAMES = {
    "randint": "[lower, upper]",
    "uniform": "[low, high]",
    "quniform": "[low, high, q]",
    "loguniform": "[low, high]",
    "qloguniform": "[low, high, q]",
    "normal": "[mu, sigma]",
    "qnormal": "[mu, sigma, q]",
    "lognormal": "[mu, sigma]",
    "qlognormal": "[mu, sigma, q]",
}


class SearchSpaceError(NniError, ValueError):
    """The search space (or the file holding it) is not a valid NNI search space."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fail(path: str, message: str) -> SearchSpaceError:
    return SearchSpaceError(f"search space parameter {path!r}: {message}")


def _fmt(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def is_nested_option(option: Any) -> bool:
    """True when a choice option is a nested sub-space (a dict with ``_name``)."""
    return isinstance(option, dict) and "_name" in option


def _looks_like_subspace(option: dict) -> bool:
    params = [v for k, v in option.items() if k != "_name"]
    return bool(params) and all(isinstance(v, dict) and "_type" in v for v in params)


def validate_search_space(space: Any, allow_nas: bool = False) -> None:
    """Raise :class:`SearchSpaceError` unless ``space`` is a valid NNI search space.

    ``allow_nas`` also accepts NNI's classic NAS types (``layer_choice``, ``input_choice``,
    ``mutable_layer``) at the top level, for the tuners that take them.
    """
    if not isinstance(space, dict):
        raise SearchSpaceError(
            f"search space must be a dict (JSON object) mapping parameter names to "
            f"{{\"_type\": ..., \"_value\": ...}} specs, got {type(space).__name__}"
        )
    if allow_nas:
        from ._nas import NAS_TYPES, validate_nas_param
        plain = {}
        for name, spec in space.items():
            if isinstance(spec, dict) and spec.get("_type") in NAS_TYPES:
                try:
                    validate_nas_param(name, spec)
                except ValueError as exc:
                    raise SearchSpaceError(str(exc)) from None
            else:
                plain[name] = spec
        space = plain
    _validate_space(space, "")


def _validate_space(space: dict, prefix: str) -> None:
    for name, spec in space.items():
        if prefix and name == "_name":
            continue
        if not isinstance(name, str):
            raise SearchSpaceError(
                f"search space parameter names must be strings, got {name!r} ({type(name).__name__})"
                + (f" under {prefix.rstrip('/')!r}" if prefix else "")
            )
        _validate_param(prefix + name, spec)


def _validate_param(path: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise _fail(path, f"expected a dict like {{\"_type\": \"uniform\", \"_value\": [0, 1]}}, got {_fmt(spec)}")
    missing = [k for k in ("_type", "_value") if k not in spec]
    if missing:
        raise _fail(path, f"missing {' and '.join(repr(k) for k in missing)} (a parameter spec needs both "
                          f"'_type' and '_value'), got keys {sorted(map(str, spec))}")
    type_ = spec["_type"]
    value = spec["_value"]
    if not isinstance(type_, str) or type_ not in SEARCH_SPACE_TYPES:
        close = difflib.get_close_matches(str(type_), list(SEARCH_SPACE_TYPES), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        nas = " (NNI's classic NAS types are taken by RegularizedEvolution only)" \
            if type_ in ("layer_choice", "input_choice", "mutable_layer") else ""
        raise _fail(path, f"unknown _type {type_!r}{hint}; valid types: {', '.join(SEARCH_SPACE_TYPES)}{nas}")
    if not isinstance(value, (list, tuple)):
        raise _fail(path, f"'_value' of {type_!r} must be a list, got {_fmt(value)}")
    if type_ == "choice":
        _validate_choice(path, list(value))
        return

    arity = SEARCH_SPACE_TYPES[type_]
    if len(value) != arity:
        raise _fail(path, f"{type_!r} needs {arity} values {_ARG_NAMES[type_]}, got {_fmt(list(value))}")
    for x in value:
        if not _is_number(x) or not math.isfinite(x):
            raise _fail(path, f"{type_!r} needs finite numbers {_ARG_NAMES[type_]}, got {_fmt(list(value))}")

    if type_ == "randint":
        lower, upper = value
        if not all(isinstance(x, int) for x in value):
            raise _fail(path, f"'randint' needs int bounds [lower, upper] (as NNI), got {_fmt(list(value))}")
        if math.ceil(upper) - math.ceil(lower) < 1:
            raise _fail(path, f"'randint' needs lower < upper (upper is exclusive), got {_fmt(list(value))}")
        return
    if "normal" in type_:
        if value[1] <= 0:
            raise _fail(path, f"{type_!r} needs sigma > 0, got {_fmt(list(value))}")
    else:
        low, high = value[0], value[1]
        if low > high:  # low == high is a constant (NNI accepts it)
            raise _fail(path, f"{type_!r} needs low <= high, got {_fmt(list(value))}")
        if "log" in type_ and low <= 0:
            raise _fail(path, f"{type_!r} needs low > 0, got {_fmt(list(value))}")
    if type_.startswith("q") and value[2] <= 0:
        raise _fail(path, f"{type_!r} needs q > 0, got {_fmt(list(value))}")


def _validate_choice(path: str, options: list) -> None:
    if not options:
        raise _fail(path, "'choice' needs a non-empty list of options, got []")
    any_nested = any(is_nested_option(o) for o in options)
    names: dict[Any, int] = {}
    for i, option in enumerate(options):
        try:
            json.dumps(option, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _fail(path, f"choice option #{i} is not a JSON value ({exc}), got {option!r}") from None
        if not isinstance(option, dict):
            continue
        if "_name" not in option:
            if any_nested or _looks_like_subspace(option):
                raise _fail(path, f"nested choice option #{i} has no '_name' key "
                                  f"(every nested sub-space needs a unique '_name'), got {_fmt(option)}")
            continue
        opt_name = option["_name"]
        if isinstance(opt_name, bool) or not isinstance(opt_name, (str, int, float)):
            raise _fail(path, f"nested choice option #{i}: '_name' must be a string, got {_fmt(opt_name)}")
        if opt_name in names:
            raise _fail(path, f"nested choice options #{names[opt_name]} and #{i} have the same "
                              f"'_name' {opt_name!r}; names must be unique within one choice")
        names[opt_name] = i
        _validate_space(option, f"{path}/{opt_name}/")


def load_search_space(source: Any) -> dict:
    """Return a search space from a dict (deep-copied) or a JSON/YAML file path.

    ``.yaml``/``.yml`` files are parsed as YAML, anything else (``.json`` too) as JSON
    and then YAML, as NNI does: a JSON file with a trailing comma still loads.  The result is not validated: call :func:`validate_search_space`.
    """
    if isinstance(source, dict):
        return copy.deepcopy(source)
    if not isinstance(source, (str, os.PathLike)):
        raise SearchSpaceError(f"search space must be a dict or a path to a JSON/YAML file, "
                               f"got {type(source).__name__}")
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise SearchSpaceError(f"search space file {path!r} not found "
                               f"(resolved to {os.path.abspath(path)!r})") from None
    except OSError as exc:
        raise SearchSpaceError(f"cannot read search space file {path!r}: {exc}") from exc

    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        parsers = [_parse_yaml]
    else:
        parsers = [_parse_json, _parse_yaml]
    errors = []
    for parser in parsers:
        try:
            data = parser(text)
            break
        except Exception as exc:  # noqa: BLE001 - parse errors of either library
            errors.append(f"{parser.__name__[7:]}: {exc}")
    else:
        raise SearchSpaceError(f"cannot parse search space file {path!r}: " + "; ".join(errors))
    if not isinstance(data, dict):
        raise SearchSpaceError(f"search space file {path!r} must contain an object mapping parameter names "
                               f"to specs, got {type(data).__name__}")
    return data


def _parse_json(text: str) -> Any:
    return json.loads(text)


def _parse_yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)
