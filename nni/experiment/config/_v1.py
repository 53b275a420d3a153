"""Detection and conversion of NNI v1 config files (``authorName``, ``trial: {command}`` ...)."""

from __future__ import annotations

from typing import Any, Mapping

from ._base import ConfigError, to_camel, unknown_field_error

__all__ = ["convert_v1", "is_v1"]

# top-level v1 key -> v2 key (None: dropped)
_RENAMED = {
    "experimentName": "experimentName",
    "trialConcurrency": "trialConcurrency",
    "maxExecDuration": "maxExperimentDuration",
    "maxTrialNum": "maxTrialNumber",
    "maxTrialDuration": "maxTrialDuration",
    "searchSpacePath": "searchSpaceFile",
    "multiPhase": "multiPhase",
    "multiThread": "multiThread",
    "nniManagerIp": "nniManagerIp",
    "logDir": "experimentWorkingDirectory",
    "logLevel": "logLevel",
    "debug": "debug",
    "experimentType": "experimentType",
}
_DROPPED = {
    "authorName": "not used by config v2",
    "versionCheck": "no version check between manager and trials",
    "logCollection": "trial logs always stay in the trial directory",
    "description": "not used by config v2",
}
_HANDLED = {"useAnnotation", "trainingServicePlatform", "trial", "localConfig", "tuner", "assessor", "advisor",
            "machineList", "remoteConfig"}
_V1_ONLY = {
    "authorName", "trainingServicePlatform", "maxExecDuration", "maxTrialNum", "searchSpacePath",
    "trial", "logDir", "localConfig", "remoteConfig", "machineList", "versionCheck",
    "logCollection", "paiConfig", "kubeflowConfig", "frameworkcontrollerConfig", "amlConfig",
    "dlcConfig", "hybridConfig", "adlConfig",
}
_V1_ALGORITHM_KEYS = {"builtinTunerName", "builtinAssessorName", "builtinAdvisorName", "codeDir", "classFileName"}

_TRIAL_KEYS = {"command": "trialCommand", "codeDir": "trialCodeDirectory", "gpuNum": "trialGpuNumber"}
_LOCAL_KEYS = {
    "gpuIndices": "gpuIndices",
    "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
    "useActiveGpu": "useActiveGpu",
}
# NNI v1 machineList item key -> v2 RemoteMachineConfig key
_REMOTE_MACHINE_KEYS = {
    "ip": "host",
    "port": "port",
    "username": "user",
    "passwd": "password",
    "sshKeyPath": "sshKeyFile",
    "passphrase": "sshPassphrase",
    "gpuIndices": "gpuIndices",
    "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
    "useActiveGpu": "useActiveGpu",
    "pythonPath": "pythonPath",
}
_REMOTE_CONFIG_KEYS = {"reuse": "reuseMode"}
_BUILTIN_NAME_KEY = {
    "tuner": "builtinTunerName",
    "assessor": "builtinAssessorName",
    "advisor": "builtinAdvisorName",
}


def is_v1(data: Mapping[str, Any]) -> bool:
    """Whether a config mapping is in NNI's v1 format."""
    if any(key in _V1_ONLY for key in data):
        return True
    for name in ("tuner", "assessor", "advisor"):
        section = data.get(name)
        if isinstance(section, Mapping) and any(key in _V1_ALGORITHM_KEYS for key in section):
            return True
    return False


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {value!r}")
    return value


def convert_v1(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Convert a v1 config mapping to v2; return it with human-readable notes of each change."""
    from ._experiment import ExperimentConfig  # field names, for passing v2 keys through

    v2_keys = {f.key for f in ExperimentConfig._fields}
    result: dict[str, Any] = {}
    notes = ["converted from an NNI v1 config to config v2"]

    def put(key: str, value: Any, source: str) -> None:
        if key in result:
            raise ConfigError(f"{source}: {key!r} is set twice (once in v1 form, once in v2 form)")
        result[key] = value

    for key, value in data.items():
        if key in _RENAMED:
            put(_RENAMED[key], value, key)
            if _RENAMED[key] != key:
                notes.append(f"{key} -> {_RENAMED[key]}")
        elif key in _DROPPED:
            notes.append(f"{key}: dropped ({_DROPPED[key]})")
        elif key in _HANDLED:
            continue
        elif key in v2_keys or (isinstance(key, str) and to_camel(key) in v2_keys):
            put(to_camel(key), value, key)
        else:
            candidates = set(_RENAMED) | set(_DROPPED) | _HANDLED | v2_keys
            raise unknown_field_error("", str(key), candidates)

    if data.get("useAnnotation"):
        raise ConfigError(
            "useAnnotation: annotation-based trials (NNI v1 'useAnnotation: true') are not "
            "supported by nni-ng; put the search space in a searchSpaceFile and call "
            "nni.get_next_parameter() in the trial code"
        )
    if "useAnnotation" in data:
        notes.append("useAnnotation: false dropped (annotations are not supported)")

    service: dict[str, Any] | None = None
    platform = data.get("trainingServicePlatform")
    if platform is not None:
        if platform == "remote":
            service = _convert_remote(data, notes)
        elif platform != "local":
            raise ConfigError(
                f"trainingServicePlatform: platform {platform!r} in an NNI v1 config is not "
                f"supported yet; supported: local, remote"
            )
        else:
            service = {"platform": "local"}
            notes.append("trainingServicePlatform: local -> trainingService.platform: local")
    elif data.get("machineList") is not None or data.get("remoteConfig") is not None:
        raise ConfigError("machineList: only used with trainingServicePlatform: remote")

    if "localConfig" in data and data["localConfig"] is not None:
        local = _mapping(data["localConfig"], "localConfig")
        service = service if service is not None else {"platform": "local"}
        for key, value in local.items():
            if key not in _LOCAL_KEYS:
                raise unknown_field_error("localConfig", str(key), _LOCAL_KEYS)
            service[_LOCAL_KEYS[key]] = value
            notes.append(f"localConfig.{key} -> trainingService.{_LOCAL_KEYS[key]}")
    if service is not None:
        put("trainingService", service, "trainingServicePlatform")

    if "trial" in data and data["trial"] is not None:
        trial = _mapping(data["trial"], "trial")
        for key, value in trial.items():
            if key not in _TRIAL_KEYS:
                raise unknown_field_error("trial", str(key), _TRIAL_KEYS)
            put(_TRIAL_KEYS[key], value, f"trial.{key}")
            notes.append(f"trial.{key} -> {_TRIAL_KEYS[key]}")
        gpu_number = trial.get("gpuNum")
        if (
            isinstance(gpu_number, int)
            and gpu_number > 0
            and service is not None
            and "useActiveGpu" not in service
        ):
            service["useActiveGpu"] = False
            notes.append("trainingService.useActiveGpu: set to false (the v1 default)")

    for name in ("tuner", "assessor", "advisor"):
        if data.get(name) is not None:
            put(name, _convert_algorithm(name, _mapping(data[name], name), result, notes), name)

    return result, notes


def _convert_algorithm(
    name: str, section: Mapping[str, Any], result: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    builtin_key = _BUILTIN_NAME_KEY[name]
    allowed = {builtin_key, "codeDir", "classFileName", "className", "classArgs", "gpuIndices", "gpuNum",
               "includeIntermediateResults", "name", "codeDirectory"}
    converted: dict[str, Any] = {}
    for key in section:
        if key not in allowed:
            raise unknown_field_error(name, str(key), allowed)
    if builtin_key in section:
        converted["name"] = section[builtin_key]
        notes.append(f"{name}.{builtin_key} -> {name}.name")
    if "name" in section:
        converted["name"] = section["name"]
    if "className" in section:
        class_name = section["className"]
        file_name = section.get("classFileName")
        if isinstance(file_name, str) and isinstance(class_name, str):
            module = file_name[:-3] if file_name.endswith(".py") else file_name
            module = module.replace("\\", "/").strip("/").replace("/", ".")
            class_name = f"{module}.{class_name}"
            notes.append(
                f"{name}.classFileName + {name}.className -> {name}.className {class_name!r}"
            )
        converted["className"] = class_name
    elif "classFileName" in section:
        raise ConfigError(f"{name}.className: required with classFileName")
    if "codeDir" in section:
        converted["codeDirectory"] = section["codeDir"]
        notes.append(f"{name}.codeDir -> {name}.codeDirectory")
    if "codeDirectory" in section:
        converted["codeDirectory"] = section["codeDirectory"]
    if "classArgs" in section:
        converted["classArgs"] = section["classArgs"]
    if "gpuIndices" in section and name in ("tuner", "advisor"):
        if "tunerGpuIndices" in result:
            raise ConfigError(f"{name}.gpuIndices: 'tunerGpuIndices' is set twice")
        result["tunerGpuIndices"] = section["gpuIndices"]
        notes.append(f"{name}.gpuIndices -> tunerGpuIndices")
    elif "gpuIndices" in section:
        notes.append(f"{name}.gpuIndices: dropped (assessors run in the dispatcher process)")
    if "gpuNum" in section:
        notes.append(f"{name}.gpuNum: dropped (deprecated in v1; use tunerGpuIndices)")
    if "includeIntermediateResults" in section:
        notes.append(f"{name}.includeIntermediateResults: dropped (not supported)")
    return converted


def _convert_remote(data: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """v1 ``trainingServicePlatform: remote`` + ``machineList`` + ``remoteConfig`` -> trainingService."""
    machines = data.get("machineList")
    if not isinstance(machines, list) or not machines:
        raise ConfigError(
            "trainingServicePlatform: platform 'remote' needs a non-empty machineList "
            "(items like {ip, port, username, passwd | sshKeyPath}); NNI v1 platforms supported: local, remote"
        )
    service: dict[str, Any] = {"platform": "remote", "machineList": []}
    notes.append("trainingServicePlatform: remote -> trainingService.platform: remote")
    for index, item in enumerate(machines):
        item = _mapping(item, f"machineList[{index}]")
        machine: dict[str, Any] = {}
        for key, value in item.items():
            if key not in _REMOTE_MACHINE_KEYS:
                raise unknown_field_error(f"machineList[{index}]", str(key), _REMOTE_MACHINE_KEYS)
            machine[_REMOTE_MACHINE_KEYS[key]] = value
        service["machineList"].append(machine)
    renamed = sorted({f"{k} -> {v}" for m in machines for k, v in _REMOTE_MACHINE_KEYS.items() if k in m and k != v})
    notes.append("machineList -> trainingService.machineList" + (f" ({', '.join(renamed)})" if renamed else ""))
    remote = data.get("remoteConfig")
    if remote is not None:
        remote = _mapping(remote, "remoteConfig")
        for key, value in remote.items():
            if key not in _REMOTE_CONFIG_KEYS:
                raise unknown_field_error("remoteConfig", str(key), _REMOTE_CONFIG_KEYS)
            service[_REMOTE_CONFIG_KEYS[key]] = value
            notes.append(f"remoteConfig.{key} -> trainingService.{_REMOTE_CONFIG_KEYS[key]}")
    return service
