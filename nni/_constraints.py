"""Constraints of an experiment (private; numpy-free, so the config, the manager, the tuners and
the readers share one definition of feasibility).

A constraint names a metric key of the final result dict and a bound: ``max`` (the value must
be ``<=`` it), ``min`` (``>=``) or both.  :func:`feasibility` reads a final result against the
constraints and returns a :class:`Feasibility`: each constraint's reported value and the
*total violation*, the sum over the constraints of how far the value lies outside its bound
(0: feasible).  A constraint metric that is missing or not a finite number makes the result
infeasible with an infinite violation, so it ranks after every result that reported its values.

Violations of different constraints are added in their own units, as Optuna's
``constraints_func`` and Deb's constrained domination do: the sum only orders infeasible
results among themselves (a feasible result always comes first).

See docs/constraints.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["Constraint", "Feasibility", "parse_constraints", "feasibility", "CONSTRAINED_TUNERS",
           "missing_note", "violation_sql", "SQL_MISSING"]

#: Built-in tuner names that honour constraints (Random never looks at results, so it does trivially).
CONSTRAINED_TUNERS = ("TPE", "MOTPE", "NSGA2", "GP", "GPTuner", "Random", "Evolution",
                      "RegularizedEvolution", "RegularizedEvolutionTuner")


@dataclass(frozen=True)
class Constraint:
    """``metric`` of the final result must be ``<= max`` and/or ``>= min``."""

    metric: str
    max: float | None = None
    min: float | None = None

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the bounds (0 when it satisfies them)."""
        over = value - self.max if self.max is not None and value > self.max else 0.0
        under = self.min - value if self.min is not None and value < self.min else 0.0
        return float(over + under)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric}
        if self.max is not None:
            out["max"] = self.max
        if self.min is not None:
            out["min"] = self.min
        return out

    def describe(self) -> str:
        """``latency_ms <= 10``, ``0.9 <= accuracy``, ``1 <= x <= 2``."""
        if self.max is not None and self.min is not None:
            return f"{self.min:g} <= {self.metric} <= {self.max:g}"
        if self.max is not None:
            return f"{self.metric} <= {self.max:g}"
        return f"{self.metric} >= {self.min:g}"


@dataclass(frozen=True)
class Feasibility:
    """A final result read against the constraints."""

    values: dict[str, float | None] = field(default_factory=dict)   # metric -> value (None: missing)
    violation: float = 0.0                                          # total; inf when a value is missing
    missing: tuple[str, ...] = ()                                   # constraint metrics not reported as numbers

    @property
    def feasible(self) -> bool:
        return self.violation <= 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``violation`` None when infinite: JSON has no infinity)."""
        return {"feasible": self.feasible,
                "violation": self.violation if math.isfinite(self.violation) else None,
                "constraints": dict(self.values),
                **({"missing": list(self.missing)} if self.missing else {})}


_FIELDS = ("metric", "max", "min")


def parse_constraints(raw: Any, what: str = "constraints") -> list[Constraint]:
    """Constraints from ``[{'metric': ..., 'max': ..., 'min': ...}, ...]``.

    An entry may also be a :class:`Constraint` or a bare metric name, which means ``max: 0``
    (the form NSGA2's ``constraints`` classArg has always taken).  Raises ValueError naming
    the entry (``constraints[1].max``) that is wrong.  An empty list means no constraints.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise ValueError(f"{what} must be a list of {{metric, max, min}} entries, got {raw!r}")
    out: list[Constraint] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, Constraint):
            out.append(entry)
            continue
        if isinstance(entry, str) and entry.strip():
            out.append(Constraint(entry, max=0.0))
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"{what}[{i}] must be a mapping like {{metric: latency_ms, max: 10}}, got {entry!r}")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{what}[{i}]: unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"valid fields: 'metric', 'max', 'min'")
        metric = entry.get("metric")
        if not isinstance(metric, str) or not metric.strip():
            raise ValueError(f"{what}[{i}].metric must be a non-empty string, got {metric!r}")
        bounds: dict[str, float | None] = {}
        for key in ("max", "min"):
            v = entry.get(key)
            if v is not None and (not _number(v) or not math.isfinite(float(v))):
                raise ValueError(f"{what}[{i}].{key} must be a finite number, got {v!r}")
            bounds[key] = None if v is None else float(v)
        if bounds["max"] is None and bounds["min"] is None:
            raise ValueError(f"{what}[{i}] ({metric!r}) needs a bound: 'max' (value <= max), 'min' (value >= min) "
                             f"or both")
        if bounds["max"] is not None and bounds["min"] is not None and bounds["min"] > bounds["max"]:
            raise ValueError(f"{what}[{i}] ({metric!r}): min {bounds['min']:g} is above max {bounds['max']:g}; "
                             f"no value can satisfy it")
        out.append(Constraint(metric, max=bounds["max"], min=bounds["min"]))
    seen: set[str] = set()
    for i, c in enumerate(out):
        if c.metric in seen:
            raise ValueError(f"{what}[{i}].metric {c.metric!r} is given twice; put 'min' and 'max' in one entry")
        seen.add(c.metric)
    return out


def feasibility(value: Any, constraints: list[Constraint]) -> Feasibility:
    """Read a final result (a dict, or its JSON text, possibly encoded twice) against ``constraints``."""
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            break
    values: dict[str, float | None] = {}
    missing: list[str] = []
    total = 0.0
    for c in constraints:
        v = value.get(c.metric) if isinstance(value, Mapping) else None
        if not _number(v) or not math.isfinite(float(v)):
            values[c.metric] = None
            missing.append(c.metric)
            total = math.inf
            continue
        values[c.metric] = float(v)
        total += c.violation(float(v))
    return Feasibility(values, total, tuple(missing))


def missing_note(result: Feasibility) -> str:
    """The message for a result that lacks constraint metrics ('' when it has them all)."""
    if not result.missing:
        return ""
    names = ", ".join(repr(m) for m in result.missing)
    return (f"final result lacks constraint metric(s) {names} (or they are not finite numbers): the trial "
            f"counts as infeasible; report them in the final result dict, e.g. "
            f"nni.report_final_result({{'default': ..., {result.missing[0]!r}: ...}})")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: What :func:`violation_sql` gives a result that lacks a constraint metric (SQL has no infinity).
SQL_MISSING = 1e308


def violation_sql(constraints: list[Constraint], column: str) -> str:
    """SQLite expression of the total violation of the final result (JSON text) in ``column``:
    NULL without a result, :data:`SQL_MISSING` or more when a constraint metric is missing or
    not a number, else the same sum as :func:`feasibility` (the web UI's filter, sort and best)."""
    def literal(path: str) -> str:
        return "'" + path.replace("'", "''") + "'"

    parts = []
    for c in constraints:
        path = literal('$."' + c.metric + '"')
        value = f"json_extract({column}, {path})"
        terms = []
        if c.max is not None:
            terms.append(f"(CASE WHEN {value} > {c.max!r} THEN {value} - {c.max!r} ELSE 0 END)")
        if c.min is not None:
            terms.append(f"(CASE WHEN {value} < {c.min!r} THEN {c.min!r} - {value} ELSE 0 END)")
        parts.append(f"(CASE WHEN json_type({column}, {path}) IN ('integer', 'real') THEN {' + '.join(terms)}"
                     f" ELSE {SQL_MISSING!r} END)")
    return (f"(CASE WHEN {column} IS NULL THEN NULL"
            f" WHEN NOT json_valid({column}) OR json_type({column}) != 'object' THEN {SQL_MISSING!r}"
            f" ELSE MIN({SQL_MISSING!r}, {' + '.join(parts) or '0'}) END)")
