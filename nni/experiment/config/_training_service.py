"""Training service configs and the platform -> class table."""

from __future__ import annotations

from typing import Any, Mapping

from ._base import (
    ConfigError,
    _ConfigBase,
    _Field,
    check_bool,
    check_gpu_indices,
    check_nonempty_str,
    check_positive_int,
    join_path,
    parse_gpu_indices,
)

__all__ = [
    "LocalConfig",
    "TrainingServiceConfig",
    "parse_training_service",
    "register_training_service",
    "supported_platforms",
]


class TrainingServiceConfig(_ConfigBase):
    """Base class of training service configs; ``platform`` names the service."""

    platform: str
    _platform_name = ""

    def _validate(self, path: str) -> None:
        super()._validate(path)
        if self.platform != self._platform_name:
            raise ConfigError(
                f"{join_path(path, 'platform')}: {type(self).__name__} is for platform "
                f"{self._platform_name!r}, got {self.platform!r}"
            )

    def _canonicalize(self) -> None:
        """Normalise field values in place (called on a validated copy)."""


class LocalConfig(TrainingServiceConfig):
    """Run trials as processes on this machine (``platform: local``).

    ``use_active_gpu``: whether trials may use GPUs that other processes are using (must be
    set when ``trialGpuNumber`` > 0); ``max_trial_number_per_gpu``: how many trials may share
    one GPU (default 1); ``gpu_indices``: the GPUs trials may use (list, ``'0,1'`` or an int);
    ``reuse_mode``: accepted for compatibility, default False.
    """

    _platform_name = "local"
    _fields = (
        _Field("platform", check_nonempty_str, default="local"),
        _Field("use_active_gpu", check_bool),
        _Field("max_trial_number_per_gpu", check_positive_int, default=1),
        _Field("gpu_indices", check_gpu_indices),
        _Field("reuse_mode", check_bool, default=False),
    )

    use_active_gpu: bool | None
    max_trial_number_per_gpu: int
    gpu_indices: list[int] | str | int | None
    reuse_mode: bool

    def _canonicalize(self) -> None:
        if self.gpu_indices is not None:
            self.gpu_indices = parse_gpu_indices(self.gpu_indices, "gpuIndices")


_TRAINING_SERVICES: dict[str, type[TrainingServiceConfig]] = {"local": LocalConfig}


def register_training_service(platform: str, cls: type[TrainingServiceConfig]) -> None:
    """Make ``trainingService: {platform: <platform>, ...}`` build a ``cls``."""
    cls._platform_name = platform
    _TRAINING_SERVICES[platform] = cls


def supported_platforms() -> list[str]:
    """Names of the platforms a config may use, sorted."""
    return sorted(_TRAINING_SERVICES)


def _unsupported(path: str, platform: Any) -> ConfigError:
    return ConfigError(
        f"{join_path(path, 'platform')}: unsupported platform {platform!r}; "
        f"supported: {', '.join(supported_platforms())}"
    )


def parse_training_service(value: Any, path: str, base_path: str | None) -> TrainingServiceConfig:
    """Build a training service config from ``{'platform': ..., ...}`` (or check an object)."""
    if isinstance(value, TrainingServiceConfig):
        return value
    if isinstance(value, str):  # ExperimentConfig(training_service='local')
        value = {"platform": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping with a 'platform' key, got {value!r}")
    platform = value.get("platform")
    if platform is None:
        raise ConfigError(f"{join_path(path, 'platform')}: required field is missing")
    cls = _TRAINING_SERVICES.get(platform) if isinstance(platform, str) else None
    if cls is None:
        raise _unsupported(path, platform)
    result = cls()
    result._update(value, path, base_path)
    return result


def validate_training_service(value: Any, path: str) -> TrainingServiceConfig:
    """Check a training service field (object or mapping); return it as an object."""
    if value is None:
        raise ConfigError(f"{path}: required field is missing")
    service = parse_training_service(value, path, None)
    if service.platform not in _TRAINING_SERVICES:
        raise _unsupported(path, service.platform)
    service._validate(path)
    return service
