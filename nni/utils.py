"""Helpers that NNI exposes at ``nni.utils`` and that tuners and trials rely on."""

from __future__ import annotations

import copy
import math
from enum import Enum
from typing import Any, Iterable, Mapping


class OptimizeMode(Enum):
    """Whether the tuner should look for the largest or the smallest metric."""

    Minimize = "minimize"
    Maximize = "maximize"


def extract_scalar_reward(value: Any, scalar_key: str = "default") -> float:
    """Return the number a tuner optimizes from a reported metric.

    A metric is either a number or a dict holding the number under ``scalar_key``
    (``"default"`` by NNI's convention); other keys are for display only.
    """
    if isinstance(value, bool):
        raise RuntimeError(f"Metric must be a number or a dict with a numeric {scalar_key!r} key, got bool {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping) and scalar_key in value and isinstance(value[scalar_key], (int, float)) \
            and not isinstance(value[scalar_key], bool):
        return float(value[scalar_key])
    raise RuntimeError(
        f"Metric must be a number or a dict with a numeric {scalar_key!r} key, got {value!r}"
    )


def extract_scalar_history(trial_history: Iterable[Any], scalar_key: str = "default") -> list[float]:
    """Apply :func:`extract_scalar_reward` to every intermediate result of a trial."""
    return [extract_scalar_reward(v, scalar_key) for v in trial_history]


def is_finite_metric(value: Any) -> bool:
    """True when ``value`` yields a finite scalar reward (NaN and inf are not fed to tuners)."""
    try:
        return math.isfinite(extract_scalar_reward(value))
    except RuntimeError:
        return False


def merge_parameter(base_params: Any, override_params: Mapping[str, Any]) -> Any:
    """Overwrite ``base_params`` (a dict or an ``argparse.Namespace``) with tuner parameters.

    Values are cast to the type of the base value, as NNI does, so a trial's argparse
    defaults keep their types; a key the base does not have is an error.
    """
    if base_params is None:
        return base_params
    is_dict = isinstance(base_params, dict)
    for key, value in override_params.items():
        if is_dict:
            if key not in base_params:
                raise ValueError(f"Key {key!r} not found in base parameters.")
            current = base_params[key]
        else:
            if not hasattr(base_params, key):
                raise ValueError(f"Key {key!r} not found in base parameters.")
            current = getattr(base_params, key)
        if current is not None and value is not None and type(current) is not type(value):
            try:
                value = type(current)(value)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"Parameter {key!r}: cannot cast {value!r} to {type(current).__name__}"
                ) from exc
        if is_dict:
            base_params[key] = value
        else:
            setattr(base_params, key, value)
    return base_params


# ---- NNI's helpers for tuners written against nni.utils ----------------------------------------

class NodeType:
    """Keys of NNI's search-space and indexed-parameter formats."""

    ROOT = "root"
    TYPE = "_type"
    VALUE = "_value"
    INDEX = "_index"
    NAME = "_name"


class MetricType:
    """The types of metric data a trial sends."""

    FINAL = "FINAL"
    PERIODICAL = "PERIODICAL"
    REQUEST_PARAMETER = "REQUEST_PARAMETER"


def split_index(params: Any) -> Any:
    """Drop the ``{"_index": i, "_value": v}`` wrappers of :func:`json2parameter` output."""
    if isinstance(params, dict):
        if NodeType.INDEX in params:
            return split_index(params[NodeType.VALUE])
        return {key: split_index(value) for key, value in params.items()}
    return params


def convert_dict2tuple(value: Any) -> Any:
    """Turn (nested) dicts into sorted tuples of items, so parameters can be hashed.

    As in NNI, dicts inside ``value`` are converted in place.
    """
    if isinstance(value, dict):
        for key in value:
            value[key] = convert_dict2tuple(value[key])
        return tuple(sorted(value.items()))
    return value


def json2space(x: Any, oldy: Any = None, name: str = NodeType.ROOT) -> list[str]:
    """Names of the parameters of a search space, in NNI's ``root[key]-type`` notation.

    With ``oldy`` (a :func:`json2parameter` result) only the options chosen there are
    walked into.  Evolution-style tuners use the names as keys of ``is_rand``.
    """
    names: list[str] = []
    if isinstance(x, dict):
        if NodeType.TYPE in x:
            name = f"{name}-{x[NodeType.TYPE]}"
            if x[NodeType.TYPE] == "choice":
                if oldy is not None:
                    index = oldy[NodeType.INDEX]
                    names += json2space(x[NodeType.VALUE][index], oldy[NodeType.VALUE], name=f"{name}[{index}]")
                else:
                    names += json2space(x[NodeType.VALUE], None, name=name)
            names.append(name)
        else:
            for key in x:
                names += json2space(x[key], oldy[key] if oldy else None, f"{name}[{key}]")
    elif isinstance(x, list):
        for i, item in enumerate(x):
            if isinstance(item, dict) and NodeType.NAME not in item:
                raise RuntimeError("'_name' key is not found in this nested search space.")
            names += json2space(item, oldy[i] if oldy else None, f"{name}[{i}]")
    return names


def json2parameter(x: Any, is_rand: Mapping[str, bool], random_state: Any, oldy: Any = None,
                   Rand: bool = False, name: str = NodeType.ROOT) -> Any:  # noqa: N803 - NNI's name
    """Draw parameters for the names ``is_rand`` marks (keep ``oldy``'s values for the others).

    Choices come out as ``{"_index": i, "_value": v}`` (see :func:`split_index`); other
    types are drawn with :mod:`nni.parameter_expressions` and ``random_state``.
    """
    if isinstance(x, dict):
        if NodeType.TYPE in x:
            type_, value = x[NodeType.TYPE], x[NodeType.VALUE]
            name = f"{name}-{type_}"
            Rand = Rand or bool(is_rand[name])
            if not Rand:
                return copy.deepcopy(oldy)
            if type_ == "choice":
                index = int(random_state.randint(len(value)))
                return {NodeType.INDEX: index,
                        NodeType.VALUE: json2parameter(value[index], is_rand, random_state, None, Rand,
                                                       name=f"{name}[{index}]")}
            from . import parameter_expressions
            return getattr(parameter_expressions, type_)(*(list(value) + [random_state]))
        return {key: json2parameter(x[key], is_rand, random_state, oldy[key] if oldy else None, Rand,
                                    f"{name}[{key}]") for key in x}
    if isinstance(x, list):
        result = []
        for i, item in enumerate(x):
            if isinstance(item, dict) and NodeType.NAME not in item:
                raise RuntimeError("'_name' key is not found in this nested search space.")
            result.append(json2parameter(item, is_rand, random_state, oldy[i] if oldy else None, Rand,
                                         f"{name}[{i}]"))
        return result
    return copy.deepcopy(x)


class ClassArgsValidator:
    """Checks the ``classArgs`` of a tuner/assessor before it is built (NNI's interface).

    Subclass it and override :meth:`validate_class_args`; raise any exception to refuse.
    A registered algorithm names its validator in its meta (``classArgsValidator``) and
    nni-ng runs it when an experiment starts.  :meth:`choices` and :meth:`range` return
    checks usable with the ``schema`` package (``Schema({...}).validate(kwargs)``), as
    NNI's do; without ``schema`` installed they return plain callables that raise
    ``ValueError``.
    """

    def validate_class_args(self, **kwargs: Any) -> None:
        """Raise an exception when ``kwargs`` (the classArgs) are invalid."""

    def choices(self, key: str, *args: Any) -> Any:
        """A check that the value of ``key`` is one of ``args``."""
        message = f"{key} should be in [{args}]!"
        return _check(lambda n: n in args, message)

    def range(self, key: str, keyType: type, start: Any, end: Any) -> Any:  # noqa: N803 - NNI's name
        """A check that the value of ``key`` is a ``keyType`` within ``[start, end]``."""
        type_message = f"{key} should be {keyType.__name__} type!"
        range_message = f"{key} should be in range of ({start}, {end})!"
        try:
            from schema import And
        except ImportError:
            def check(n: Any) -> bool:
                if not isinstance(n, keyType):
                    raise ValueError(type_message)
                if not start <= n <= end:
                    raise ValueError(range_message)
                return True
            return check
        return And(And(keyType, error=type_message), And(lambda n: start <= n <= end, error=range_message))

    def path(self, key: str) -> Any:
        """A check that the value of ``key`` is a path that exists."""
        import os
        return _check(lambda p: isinstance(p, str) and os.path.exists(p), f"{key} should be an existing path!")


def _check(predicate: Any, message: str) -> Any:
    try:
        from schema import And
    except ImportError:
        def check(value: Any) -> bool:
            if not predicate(value):
                raise ValueError(message)
            return True
        return check
    return And(predicate, error=message)
