"""Helpers that NNI exposes at ``nni.utils`` and that tuners and trials rely on."""

from __future__ import annotations

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
