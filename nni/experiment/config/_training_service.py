"""Training service configs and the platform -> class table."""

from __future__ import annotations

from typing import Any, Mapping

from ._base import (
    ConfigError,
    _ConfigBase,
    _Field,
    check_bool,
    check_dict,
    check_gpu_indices,
    check_nonempty_str,
    check_nonnegative_int,
    check_path,
    check_positive_int,
    check_str,
    join_path,
    parse_gpu_indices,
    resolve_path,
)

__all__ = [
    "LocalConfig",
    "RayConfig",
    "RemoteConfig",
    "RemoteMachineConfig",
    "TrainingServiceConfig",
    "parse_training_service",
    "register_training_service",
    "supported_platforms",
]


# NNI's training-service fields that default to the experiment's own (NNI's json() writes them
# into the service). nni-ng runs one service per experiment, so a value given here must agree
# with the experiment's; ExperimentConfig checks that.
INHERITED_FIELDS = (
    _Field("trial_command", check_nonempty_str),
    _Field("trial_code_directory", check_path, is_path=True),
    _Field("trial_gpu_number", check_nonnegative_int),
    _Field("nni_manager_ip", check_nonempty_str),
    _Field("debug", check_bool),
)


class TrainingServiceConfig(_ConfigBase):
    """Base class of training service configs; ``platform`` names the service.

    Every service also takes NNI's inherited fields (``trialCommand``, ``trialCodeDirectory``,
    ``trialGpuNumber``, ``nniManagerIp``, ``debug``): unset, they are the experiment's; set,
    they must equal the experiment's.
    """

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
        *INHERITED_FIELDS,
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


def _check_port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{path}: expected a port number (1-65535), got {value!r}")
    return value


HOST_KEY_CHECKS = ("strict", "accept-new")


def _check_host_key_check(value: Any, path: str) -> str:
    if value not in HOST_KEY_CHECKS:
        raise ConfigError(f"{path}: expected one of {', '.join(HOST_KEY_CHECKS)}, got {value!r}")
    return value


class RemoteMachineConfig(_ConfigBase):
    """One machine of ``platform: remote``, reached over SSH.

    ``host`` and ``user`` are required; authentication is ``password`` or ``ssh_key_file``
    (+ ``ssh_passphrase``), else the SSH agent and the default keys (``~/.ssh/id_*``).
    ``python_path`` is put in front of ``PATH`` for the trials (a directory, or several
    joined by ``:``); the GPU fields mean what they mean for ``platform: local``.
    ``host_key_check``: ``strict`` (default: the host's key must be in ``~/.ssh/known_hosts``)
    or ``accept-new`` (OpenSSH's: a host not yet listed is added on first connection; a
    changed key is still refused).
    """

    _fields = (
        _Field("host", check_nonempty_str, required=True),
        _Field("port", _check_port, default=22),
        _Field("user", check_nonempty_str, required=True),
        _Field("password", check_str),
        _Field("ssh_key_file", check_path, is_path=True),
        _Field("ssh_passphrase", check_str),
        _Field("use_active_gpu", check_bool, default=False),
        _Field("max_trial_number_per_gpu", check_positive_int, default=1),
        _Field("gpu_indices", check_gpu_indices),
        _Field("python_path", check_nonempty_str),
        _Field("host_key_check", _check_host_key_check, default="strict"),
    )

    host: str | None
    port: int
    user: str | None
    password: str | None
    ssh_key_file: str | None
    ssh_passphrase: str | None
    use_active_gpu: bool
    max_trial_number_per_gpu: int
    gpu_indices: list[int] | str | int | None
    python_path: str | None
    host_key_check: str

    def __repr__(self) -> str:  # never print a password
        text = super().__repr__()
        for secret in (self.password, self.ssh_passphrase):
            if secret:
                text = text.replace(repr(secret), "'***'")
        return text


def _parse_machine_list(value: Any, path: str, base_path: str | None) -> list[RemoteMachineConfig]:
    if isinstance(value, (RemoteMachineConfig, dict)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list of machines ({{host, user, ...}}), got {value!r}")
    machines = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if isinstance(item, RemoteMachineConfig):
            machines.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{item_path}: expected a mapping with 'host' and 'user', got {item!r}")
        machine = RemoteMachineConfig()
        machine._update(item, item_path, base_path)
        machines.append(machine)
    return machines


class RemoteConfig(TrainingServiceConfig):
    """Run trials on other machines over SSH (``platform: remote``).

    ``machine_list``: the machines (:class:`RemoteMachineConfig` objects or mappings);
    ``remote_working_directory`` (nni-ng): where each machine keeps the experiment's code
    and trial directories, default ``~/nni-experiments/remote`` on that machine (apart from
    the local default experimentWorkingDirectory, for a machine that is also the manager);
    ``reuse_mode``: accepted for compatibility, default False (each trial is its own
    process there anyway).
    """

    _platform_name = "remote"
    _fields = (
        *INHERITED_FIELDS,
        _Field("platform", check_nonempty_str, default="remote"),
        _Field("machine_list", required=True),
        _Field("remote_working_directory", check_nonempty_str, default="~/nni-experiments/remote"),
        _Field("reuse_mode", check_bool, default=False),
    )

    machine_list: list[RemoteMachineConfig] | None
    remote_working_directory: str
    reuse_mode: bool

    def _parse_field(self, field: _Field, value: Any, path: str, base_path: str | None) -> Any:
        if field.name == "machine_list":
            return _parse_machine_list(value, path, base_path)
        return super()._parse_field(field, value, path, base_path)

    def _validate(self, path: str) -> None:
        super()._validate(path)
        list_path = join_path(path, "machineList")
        if self.machine_list is not None:
            machines = _parse_machine_list(self.machine_list, list_path, None)
            if not machines:
                raise ConfigError(f"{list_path}: at least one machine is required")
            seen: dict[tuple[str, int, str], int] = {}
            for index, machine in enumerate(machines):
                machine._validate(f"{list_path}[{index}]")
                key = (machine.host, machine.port, machine.user)
                if key in seen:
                    raise ConfigError(f"{list_path}[{index}]: the same machine as {list_path}[{seen[key]}] "
                                      f"({machine.user}@{machine.host}:{machine.port})")
                seen[key] = index
                if machine.password is not None and machine.ssh_key_file is not None:
                    raise ConfigError(f"{list_path}[{index}].password: set either 'password' or "
                                      "'sshKeyFile', not both")

    def _canonicalize(self) -> None:
        import os
        machines = _parse_machine_list(self.machine_list, "trainingService.machineList", None)
        for machine in machines:
            if machine.gpu_indices is not None:
                machine.gpu_indices = parse_gpu_indices(machine.gpu_indices, "gpuIndices")
            if machine.ssh_key_file is not None:
                machine.ssh_key_file = resolve_path(os.fspath(machine.ssh_key_file), os.getcwd())
        self.machine_list = machines


_RAY_RESOURCE_KEYS = {"numCpus": "num_cpus", "numGpus": "num_gpus", "memory": "memory"}


def _check_ray_resources(value: Any, path: str) -> dict:
    value = check_dict(value, path)
    for key, amount in value.items():
        name = _RAY_RESOURCE_KEYS.get(key, key)
        if name not in _RAY_RESOURCE_KEYS.values():
            from ._base import unknown_field_error
            raise unknown_field_error(path, key, list(_RAY_RESOURCE_KEYS))
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ConfigError(f"{join_path(path, key)}: expected a non-negative number, got {amount!r}")
    return value


class RayConfig(TrainingServiceConfig):
    """Run each trial as a task on a Ray cluster (``platform: ray``).

    ``address``: ``'auto'`` (the cluster this machine belongs to), ``'<host>:<port>'`` (its
    GCS), ``'ray://<host>:<port>'`` (Ray client), or unset to start a private local Ray
    for the experiment; ``trial_resources``: what one trial reserves, ``{numCpus, numGpus,
    memory}`` (snake_case accepted; memory in bytes; default 1 CPU, and ``trialGpuNumber``
    GPUs); ``runtime_env``: Ray's runtime environment for the trial tasks.
    """

    _platform_name = "ray"
    _fields = (
        *INHERITED_FIELDS,
        _Field("platform", check_nonempty_str, default="ray"),
        _Field("address", check_nonempty_str),
        _Field("trial_resources", _check_ray_resources),
        _Field("runtime_env", check_dict),
    )

    address: str | None
    trial_resources: dict[str, float] | None
    runtime_env: dict[str, Any] | None

    def _canonicalize(self) -> None:
        if self.trial_resources is not None:
            self.trial_resources = {_RAY_RESOURCE_KEYS.get(k, k): v for k, v in self.trial_resources.items()}


_TRAINING_SERVICES: dict[str, type[TrainingServiceConfig]] = {
    "local": LocalConfig,
    "remote": RemoteConfig,
    "ray": RayConfig,
}


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
