"""Tuner / assessor / advisor configs."""

from __future__ import annotations

import os
from typing import Any, Mapping

from ._base import (
    ConfigError,
    _ConfigBase,
    _Field,
    check_dict,
    check_nonempty_str,
    check_path,
    resolve_path,
    unknown_field_error,
)

__all__ = ["AlgorithmConfig", "CustomAlgorithmConfig", "parse_algorithm"]


class AlgorithmConfig(_ConfigBase):
    """A built-in tuner, assessor or advisor, chosen by ``name`` (e.g. ``'TPE'``).

    ``class_args`` (``classArgs``) are passed to the algorithm's constructor.
    """

    _fields = (
        _Field("name", check_nonempty_str, required=True),
        _Field("class_args", check_dict),   # None until given, as NNI's (json() omits it then)
    )

    name: str | None
    class_args: dict[str, Any] | None


class CustomAlgorithmConfig(_ConfigBase):
    """A user-written algorithm: ``class_name`` is ``'module.ClassName'``, importable from
    ``code_directory`` (default ``'.'``); ``class_args`` go to its constructor."""

    _fields = (
        _Field("class_name", check_nonempty_str, required=True),
        _Field("code_directory", check_path, default=".", is_path=True),
        _Field("class_args", check_dict),
    )

    class_name: str | None
    code_directory: str | os.PathLike | None
    class_args: dict[str, Any] | None


class _AlgorithmConfig(_ConfigBase):
    """Placeholder pre-created on ``ExperimentConfig`` so that ``config.tuner.name = 'TPE'``
    works; ``canonical_copy()`` turns it into an :class:`AlgorithmConfig`, a
    :class:`CustomAlgorithmConfig`, or ``None`` when nothing was set."""

    _fields = (
        _Field("name", check_nonempty_str),
        _Field("class_name", check_nonempty_str),
        _Field("code_directory", check_path, is_path=True),
        _Field("class_args", check_dict, default={}),
    )

    name: str | None
    class_name: str | None
    code_directory: str | os.PathLike | None
    class_args: dict[str, Any]

    def _is_unset(self) -> bool:
        return (
            self.name is None
            and self.class_name is None
            and self.code_directory is None
            and not self.class_args
        )

    def _validate(self, path: str) -> None:
        super()._validate(path)
        _check_exclusive(path, self.name, self.class_name, self.code_directory)

    def __repr__(self) -> str:
        # show what it will become, not the private placeholder class
        text = super().__repr__()
        if self.class_name is not None or self.code_directory is not None:
            return "CustomAlgorithmConfig" + text[len("_AlgorithmConfig"):]
        return "AlgorithmConfig" + text[len("_AlgorithmConfig"):]

    def _concrete(self) -> AlgorithmConfig | CustomAlgorithmConfig | None:
        if self._is_unset():
            return None
        if self.name is not None:
            return AlgorithmConfig(name=self.name, class_args=self.class_args)
        result = CustomAlgorithmConfig(class_name=self.class_name, class_args=self.class_args)
        if self.code_directory is not None:
            result.code_directory = self.code_directory
        return result


_ALGORITHM_KEYS = ("name", "className", "codeDirectory", "classArgs")


def _check_exclusive(path: str, name: Any, class_name: Any, code_directory: Any) -> None:
    if name is not None and class_name is not None:
        raise ConfigError(
            f"{path}: set either 'name' (a built-in algorithm) or 'className' "
            f"(a custom algorithm), not both"
        )
    if name is None and class_name is None:
        raise ConfigError(
            f"{path}: either 'name' (a built-in algorithm) or 'className' (a custom algorithm) is required"
        )
    if name is not None and code_directory is not None:
        raise ConfigError(f"{path}.codeDirectory: only valid with 'className', not with 'name'")


def parse_algorithm(
    value: Any, path: str, base_path: str | None
) -> AlgorithmConfig | CustomAlgorithmConfig:
    """Build an algorithm config from a mapping (or check an existing config object)."""
    if isinstance(value, (AlgorithmConfig, CustomAlgorithmConfig, _AlgorithmConfig)):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping with 'name' or 'className' (and optional 'classArgs'), got {value!r}"
        )
    data: dict[str, Any] = {}
    snake = {"class_name": "className", "code_directory": "codeDirectory", "class_args": "classArgs"}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path}: keys must be strings, got {key!r}")
        canonical = snake.get(key, key)
        if canonical not in _ALGORITHM_KEYS:
            raise unknown_field_error(path, key, _ALGORITHM_KEYS)
        data[canonical] = item
    present = {k: v for k, v in data.items() if v is not None}
    _check_exclusive(path, present.get("name"), present.get("className"), present.get("codeDirectory"))
    cls = AlgorithmConfig if "name" in present else CustomAlgorithmConfig
    result = cls()
    result._update(data, path, base_path)
    return result


def canonical_algorithm(value: Any, path: str, cwd: str, *,
                        nni_form: bool = False) -> AlgorithmConfig | CustomAlgorithmConfig | None:
    """Validated concrete algorithm with an absolute code directory, or ``None`` if unset."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = parse_algorithm(value, path, None)
    if isinstance(value, _AlgorithmConfig):
        if value._is_unset():
            return None
        value._validate(path)
        value = value._concrete()
    else:
        value._validate(path)
    if isinstance(value, CustomAlgorithmConfig):
        value.code_directory = resolve_path(os.fspath(value.code_directory or "."), cwd)
    if not nni_form or value.class_args is not None:   # NNI's json() omits classArgs never given
        value.class_args = dict(value.class_args or {})
    return value


def validate_algorithm(value: Any, path: str) -> None:
    """Raise :class:`ConfigError` if ``value`` is not a valid algorithm config (``None`` is fine)."""
    if value is None:
        return
    if isinstance(value, Mapping):
        value = parse_algorithm(value, path, None)
    if not isinstance(value, _ConfigBase) or not isinstance(
        value, (AlgorithmConfig, CustomAlgorithmConfig, _AlgorithmConfig)
    ):
        raise ConfigError(f"{path}: expected an algorithm config, got {value!r}")
    if value._is_unset():
        return
    value._validate(path)


def is_set(value: Any) -> bool:
    """Whether an algorithm field holds something (not ``None`` nor an empty placeholder)."""
    if value is None:
        return False
    if isinstance(value, _ConfigBase):
        return not value._is_unset()
    return True

