"""Objectives of a multi-objective experiment (private; numpy-free, so the manager, the config
and the tuners share one definition).

An objective names a metric key of the final result dict and its direction.  A final result
*fits* the objectives when it is a dict holding every named key with a finite number;
:func:`objective_values` returns those numbers or raises :class:`ObjectiveValueError`
naming the key that is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import NniError

__all__ = ["Objective", "ObjectiveValueError", "parse_objectives", "objective_values", "MULTI_OBJECTIVE_TUNERS"]

#: Built-in tuner names that accept several objectives (Random ignores results altogether).
MULTI_OBJECTIVE_TUNERS = ("MOTPE", "NSGA2", "Random")


@dataclass(frozen=True)
class Objective:
    """One objective: the ``metric`` key of the final result and whether to ``minimize`` or ``maximize`` it."""

    metric: str
    mode: str = "minimize"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"metric must be a non-empty string, got {self.metric!r}")
        mode = getattr(self.mode, "value", self.mode)   # nni.utils.OptimizeMode works too
        if not isinstance(mode, str) or mode.lower() not in ("minimize", "maximize"):
            raise ValueError(f"mode must be 'minimize' or 'maximize', got {self.mode!r}")
        object.__setattr__(self, "mode", mode.lower())

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "mode": self.mode}


class ObjectiveValueError(NniError, ValueError):
    """A final result that does not fit the objectives; ``key`` names the wrong metric (None: not a dict)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_objectives(objectives: Any, what: str = "objectives") -> list[Objective]:
    """Objectives from ``[{'metric': ..., 'mode': ...}, ...]`` (or :class:`Objective` objects).

    Raises ValueError naming the entry (``objectives[1].mode``) that is wrong.  At least one
    objective is needed and metric names must be distinct.
    """
    if isinstance(objectives, (str, bytes)) or not isinstance(objectives, Iterable):
        raise ValueError(f"{what} must be a list of {{metric, mode}} entries, got {objectives!r}")
    out: list[Objective] = []
    for i, entry in enumerate(objectives):
        if isinstance(entry, Objective):
            out.append(entry)
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"{what}[{i}] must be a mapping with 'metric' and 'mode', got {entry!r}")
        unknown = sorted(set(entry) - {"metric", "mode"})
        if unknown:
            raise ValueError(f"{what}[{i}]: unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"valid fields: 'metric', 'mode'")
        if "metric" not in entry:
            raise ValueError(f"{what}[{i}].metric is required")
        metric = entry["metric"]
        if not isinstance(metric, str) or not metric.strip():
            raise ValueError(f"{what}[{i}].metric must be a non-empty string, got {metric!r}")
        mode = entry.get("mode", "minimize")
        mode = getattr(mode, "value", mode)
        if not isinstance(mode, str) or mode.lower() not in ("minimize", "maximize"):
            raise ValueError(f"{what}[{i}].mode must be 'minimize' or 'maximize', got {mode!r}")
        out.append(Objective(metric, mode.lower()))
    if not out:
        raise ValueError(f"{what} must hold at least one {{metric, mode}} entry")
    seen: set[str] = set()
    for i, o in enumerate(out):
        if o.metric in seen:
            raise ValueError(f"{what}[{i}].metric {o.metric!r} is given twice")
        seen.add(o.metric)
    return out


def objective_values(value: Any, objectives: list[Objective]) -> list[float]:
    """The finite number of every objective in a final result, in objective order.

    ``value`` is the metric as reported (a dict, or its JSON text).  A plain number is
    accepted for a single objective named ``default`` (NNI's scalar convention).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ObjectiveValueError(None, f"final result is not JSON: {value[:80]!r}") from None
    if not isinstance(value, Mapping):
        if len(objectives) == 1 and objectives[0].metric == "default" and _number(value):
            value = {"default": value}
        else:
            names = ", ".join(repr(o.metric) for o in objectives)
            raise ObjectiveValueError(None, f"final result must be a dict holding {names}, got {value!r}")
    out = []
    for o in objectives:
        if o.metric not in value:
            raise ObjectiveValueError(o.metric, f"final result lacks objective {o.metric!r}")
        v = value[o.metric]
        if not _number(v):
            raise ObjectiveValueError(o.metric, f"objective {o.metric!r} must be a number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ObjectiveValueError(o.metric, f"objective {o.metric!r} is not finite: {v!r}")
        out.append(float(v))
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
