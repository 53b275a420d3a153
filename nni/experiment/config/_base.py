"""Shared machinery of the experiment config classes.

Every config class declares its fields as a tuple of :class:`_Field`. A field has a
snake_case attribute name (Python) and a camelCase key (YAML/JSON), a checker that
type-checks one value and reports errors as ``ConfigError('<path>: <what is wrong>')``,
and optionally a default, a "required" mark and a "this is a filesystem path" mark.

Values are stored as given (type-checked, not normalised); ``canonical_copy()``
normalises them. ``None`` always means "not set".
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping

from ...errors import NniError

__all__ = ["ConfigError", "parse_duration"]


class ConfigError(NniError, ValueError):
    """An invalid experiment config.

    The message starts with the path of the offending field in camelCase
    (``trainingService.gpuIndices: ...``), followed by what was expected and, where
    relevant, the value that was given.
    """


# ---------------------------------------------------------------------------
# names and suggestions


def to_camel(name: str) -> str:
    """``trial_code_directory`` -> ``trialCodeDirectory``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _normalize_name(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def suggest(given: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``given`` (ignoring case and underscores), if any is close."""
    by_norm = {_normalize_name(c): c for c in candidates}
    match = difflib.get_close_matches(_normalize_name(given), list(by_norm), n=1, cutoff=0.6)
    return by_norm[match[0]] if match else None


def join_path(parent: str, key: str) -> str:
    """Field path of ``key`` inside ``parent`` (``''`` is the top level)."""
    return f"{parent}.{key}" if parent else key


def unknown_field_error(path: str, given: str, candidates: Iterable[str]) -> ConfigError:
    """``ConfigError`` for an unknown key, with a "did you mean" hint when one is close."""
    hint = suggest(given, candidates)
    message = f"{join_path(path, given)}: unknown field"
    if hint is not None:
        message += f"; did you mean {hint!r}?"
    else:
        message += f"; valid fields are: {', '.join(sorted(candidates))}"
    return ConfigError(message)


# ---------------------------------------------------------------------------
# durations

_DURATION_UNITS: dict[str, float] = {}
for _unit, _seconds in (
    (("", "s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
):
    for _name in _unit:
        _DURATION_UNITS[_name] = _seconds

_DURATION_RE = re.compile(r"^\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: str | int | float, field: str = "duration") -> float:
    """Parse a duration into seconds.

    Accepts a number of seconds (``int`` or ``float``) or a string made of a number and
    an optional unit: ``'90s'``, ``'30m'``, ``'1h'``, ``'1.5h'``, ``'2d'`` (long forms such
    as ``'10 minutes'`` work too; no unit means seconds). Negative, infinite and NaN
    values are refused. Errors are :class:`ConfigError` messages prefixed with ``field``.
    """
    expected = "expected a duration like '30s', '10m', '1.5h', '2d' or a number of seconds"
    if isinstance(value, bool):
        raise ConfigError(f"{field}: {expected}, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:   # an int beyond a float (10**400): no duration
            raise ConfigError(f"{field}: {expected}, got an integer beyond a float's range") from None
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _DURATION_UNITS:
            raise ConfigError(f"{field}: {expected}, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[unit]
    else:
        raise ConfigError(f"{field}: {expected}, got {value!r}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ConfigError(f"{field}: {expected}, got {value!r}")
    return seconds


# ---------------------------------------------------------------------------
# value checkers: (value, path) -> value, raising ConfigError

Checker = Callable[[Any, str], Any]


def _type_error(path: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {expected}, got {value!r}")


def check_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _type_error(path, "a string", value)
    return value


def check_nonempty_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _type_error(path, "a non-empty string", value)
    return value


def check_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(path, "true or false", value)
    return value


# Far above any machine's process limit; a bound keeps one update from asking the tuner
# for 10**30 parameter sets at once.
MAX_TRIAL_CONCURRENCY = 100_000


def check_positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _type_error(path, "a positive integer", value)
    return value


def check_nonnegative_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _type_error(path, "a non-negative integer", value)
    return value


def check_host_list(value: Any, path: str) -> list[str]:
    """A list of host names or IP addresses (``allowedHosts``); a single string is one host."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(h, str) and h.strip() and not any(c in h for c in "/ @") for h in value):
        raise _type_error(path, "a list of host names or IP addresses (no scheme, path or port)", value)
    return [h.strip() for h in value]


def check_trial_concurrency(value: Any, path: str) -> int:
    check_positive_int(value, path)
    if value > MAX_TRIAL_CONCURRENCY:
        raise ConfigError(f"{path}: expected at most {MAX_TRIAL_CONCURRENCY} concurrent trials, got {value}")
    return value


def check_duration(value: Any, path: str) -> str | int | float:
    if parse_duration(value, path) <= 0:
        raise ConfigError(f"{path}: expected a positive duration, got {value!r}")
    return value


def check_path(value: Any, path: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _type_error(path, "a path", value)
    return value


def check_optional_path(value: Any, path: str) -> str | None:
    """A path, where an empty string means "not set" (NNI's templates write ``searchSpaceFile: ''``)."""
    if value == "":
        return None
    return check_path(value, path)


def check_dict(value: Any, path: str) -> dict:
    if not isinstance(value, Mapping):
        raise _type_error(path, "a mapping", value)
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{path}: keys must be strings, got {key!r}")
    return dict(value)


def parse_gpu_indices(value: Any, path: str) -> list[int]:
    """``[0, 1]``, ``'0,1'`` or ``0`` -> ``[0, 1]`` / ``[0]``."""
    expected = "a list of non-negative integers or a comma-separated string"
    if isinstance(value, bool):
        raise _type_error(path, expected, value)
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")] if value.strip() else []
        if not all(p.isdigit() for p in parts):
            raise _type_error(path, expected, value)
        items = [int(p) for p in parts]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _type_error(path, expected, value)
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
        raise _type_error(path, expected, value)
    return items


def check_gpu_indices(value: Any, path: str) -> Any:
    parse_gpu_indices(value, path)
    return list(value) if isinstance(value, tuple) else value


def make_choice_checker(choices: tuple[str, ...]) -> Checker:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise _type_error(path, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    return check


# ---------------------------------------------------------------------------
# fields and the base class


@dataclass(frozen=True)
class _Field:
    name: str
    check: Checker | None = None  # None: handled by the owning class
    default: Any = None
    required: bool = False
    is_path: bool = False

    @property
    def key(self) -> str:
        return to_camel(self.name)

    def make_default(self) -> Any:
        return copy.deepcopy(self.default)


def resolve_path(value: str, base: str) -> str:
    """Expand ``~`` and make ``value`` absolute against ``base``."""
    expanded = os.path.expanduser(value)
    return os.path.normpath(os.path.join(base, expanded))


class _ConfigBase:
    """Plain config object: declared fields only, camelCase on disk, snake_case in Python."""

    _fields: ClassVar[tuple[_Field, ...]] = ()
    _extra_attrs: ClassVar[frozenset[str]] = frozenset()
    _key_path: ClassVar[str] = ""  # how errors name this object when it has no parent

    def __init__(self, **kwargs: Any) -> None:
        for field in self._fields:
            object.__setattr__(self, field.name, field.make_default())
        if kwargs:
            self._update(kwargs, self._key_path, None)

    # -- attribute guard -----------------------------------------------------

    @classmethod
    def _field_map(cls) -> dict[str, _Field]:
        """Both the snake_case name and the camelCase key map to the field."""
        table: dict[str, _Field] = {}
        for field in cls._fields:
            table[field.name] = field
            table[field.key] = field
        return table

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in self._extra_attrs:
            object.__setattr__(self, name, value)
            return
        if name not in {f.name for f in self._fields}:
            raise self._attribute_error(name)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup failed
        if name.startswith("_"):
            raise AttributeError(name)
        raise self._attribute_error(name)

    def _attribute_error(self, name: str) -> AttributeError:
        names = [f.name for f in self._fields]
        hint = suggest(name, names)
        message = f"{type(self).__name__} has no field {name!r}"
        if hint is not None:
            message += f"; did you mean {hint!r}?"
        return AttributeError(message)

    # -- parsing -------------------------------------------------------------

    def _update(self, data: Mapping[str, Any], path: str, base_path: str | None) -> None:
        """Set fields from a camelCase (or snake_case) mapping, type-checking each value."""
        table = self._field_map()
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"{path or '<top level>'}: keys must be strings, got {key!r}")
            field = table.get(key)
            if field is None:
                raise unknown_field_error(path, key, [f.key for f in self._fields])
            field_path = join_path(path, field.key)
            if value is None:
                value = field.make_default()
            else:
                value = self._parse_field(field, value, field_path, base_path)
            object.__setattr__(self, field.name, value)
        if base_path is not None:
            self._resolve_paths(base_path)

    def _parse_field(self, field: _Field, value: Any, path: str, base_path: str | None) -> Any:
        assert field.check is not None, field.name
        value = field.check(value, path)
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value

    def _resolve_paths(self, base: str) -> None:
        for field in self._fields:
            value = getattr(self, field.name)
            if field.is_path and isinstance(value, (str, os.PathLike)):
                object.__setattr__(self, field.name, resolve_path(os.fspath(value), base))

    # -- validation ----------------------------------------------------------

    def _validate(self, path: str) -> None:
        """Check every field (types, required ones present); subclasses add rules."""
        for field in self._fields:
            value = getattr(self, field.name)
            field_path = join_path(path, field.key)
            if value is None:
                if field.required:
                    raise ConfigError(f"{field_path}: required field is missing")
                continue
            if field.check is not None:
                field.check(value, field_path)

    # -- output --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """camelCase, JSON-serialisable dict of the fields as they are set (``None`` omitted);
        ``from_dict`` reads it back to an equal config."""
        result: dict[str, Any] = {}
        for field in self._fields:
            value = _to_json(getattr(self, field.name))
            if value is not None:
                result[field.key] = value
        return result

    def json(self) -> dict[str, Any]:
        """The config as a JSON object with camelCase keys (NNI's name); see ``to_dict``."""
        return self.to_dict()

    def _is_unset(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for field in self._fields:
            value = getattr(self, field.name)
            if value is None or (isinstance(value, _ConfigBase) and value._is_unset()):
                continue
            parts.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _to_json(value: Any) -> Any:
    if isinstance(value, _ConfigBase):
        return None if value._is_unset() else value.to_dict()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value
