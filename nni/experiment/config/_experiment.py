"""``ExperimentConfig``: the top-level experiment config (NNI config v2)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._algorithm import (
    AlgorithmConfig,
    CustomAlgorithmConfig,
    _AlgorithmConfig,
    canonical_algorithm,
    is_set,
    parse_algorithm,
    validate_algorithm,
)
from ._base import (
    ConfigError,
    _ConfigBase,
    _Field,
    check_bool,
    check_dict,
    check_duration,
    check_optional_path,
    check_gpu_indices,
    check_host_list,
    check_nonempty_str,
    check_nonnegative_int,
    check_path,
    check_positive_int,
    check_str,
    check_trial_concurrency,
    make_choice_checker,
    parse_duration,
    parse_gpu_indices,
    resolve_path,
    to_camel,
)
from ._training_service import (
    INHERITED_FIELDS,
    LocalConfig,
    TrainingServiceConfig,
    parse_training_service,
    validate_training_service,
)
from ._v1 import convert_v1, is_v1

__all__ = ["ExperimentConfig"]


def check_objectives(value: Any, path: str) -> list[dict[str, str]]:
    """``objectives``: a list of ``{metric, mode}`` (nni-ng's multi-objective extension)."""
    from nni._objectives import parse_objectives
    try:
        return [o.to_dict() for o in parse_objectives(value, path)]
    except ValueError as error:
        raise ConfigError(str(error)) from None

def check_warm_start(value: Any, path: str) -> dict[str, list[str]]:
    """``warmStart``: ``{experiments: [ID, ...]}``, the earlier experiments whose results the
    tuner gets before the first trial (nni-ng extension; see docs/warm_start.md). Whether the
    ids exist is checked when the experiment starts, against this machine's experiments.
    One id may be given as a string; the value is kept as ``{'experiments': [...]}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping like {{experiments: [ID, ...]}}, got {value!r}")
    unknown = sorted(set(value) - {"experiments"})
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: unknown field; warmStart has one field, "
                          f"'experiments' (a list of experiment ids)")
    ids = value.get("experiments")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, (list, tuple)) or not ids:
        raise ConfigError(f"{path}.experiments: expected a non-empty list of experiment ids, got {ids!r}")
    for i, experiment_id in enumerate(ids):
        if not isinstance(experiment_id, str) or not experiment_id.strip():
            raise ConfigError(f"{path}.experiments[{i}]: expected an experiment id (a string), got {experiment_id!r}")
    return {"experiments": list(dict.fromkeys(i.strip() for i in ids))}


def check_constraints(value: Any, path: str) -> list[dict[str, Any]]:
    """``constraints``: a list of ``{metric, max, min}`` (nni-ng's extension; docs/constraints.md)."""
    from nni._constraints import parse_constraints
    try:
        return [c.to_dict() for c in parse_constraints(value, path)]
    except ValueError as error:
        raise ConfigError(str(error)) from None


LOG_LEVELS = ("fatal", "error", "warning", "info", "debug", "trace")

_ALGORITHM_FIELDS = ("tuner", "assessor", "advisor")


def _check_shared_storage(value: Any, path: str) -> dict | None:
    # Kept as data (NNI's json() shows it); refused when an experiment is launched with it,
    # in canonical_copy(), so that a config NNI reads still reads here.
    if value is None:
        return None
    storage = check_dict(value, path)
    if not isinstance(storage.get("storageType"), str):
        raise ConfigError(f"{path}.storageType: expected 'NFS' or 'AzureBlob', got {storage.get('storageType')!r}")
    return storage


def _refuse_shared_storage(path: str) -> ConfigError:
    return ConfigError(
        f"{path}: NNI's shared storage (NFS / Azure Blob mounted on every machine) is not supported by "
        f"nni-ng; remove it: the local service runs trials in place and the remote and ray services "
        f"upload trialCodeDirectory to each machine themselves (see docs/compatibility.md)")



# nni-ng's own fields with a default; NNI's json() knows none of them, so they are left out
# of it while they keep that default.
_EXTENSION_DEFAULTS = {"multiPhase": False, "multiThread": False, "retryFailedTrials": False}
_SERVICE_EXTENSION_DEFAULTS = {"remoteWorkingDirectory": "~/nni-experiments/remote"}
_MACHINE_EXTENSION_DEFAULTS = {"hostKeyCheck": "strict"}
# What NNI's json() copies from the experiment into its training service (all but the local
# service, which has no nniManagerIp).
_INHERITED_BY_SERVICE = ("trialCommand", "trialCodeDirectory", "trialGpuNumber", "nniManagerIp", "debug")


def _nni_json(data: dict[str, Any]) -> dict[str, Any]:
    """The camelCase dict of a canonical config in the shape of NNI's ``ExperimentConfig.json()``."""
    data = {key: value for key, value in data.items() if _EXTENSION_DEFAULTS.get(key, ...) != value}
    data.setdefault("experimentType", "hpo")
    service = data.get("trainingService")
    if isinstance(service, dict):
        service = {key: value for key, value in service.items()
                   if _SERVICE_EXTENSION_DEFAULTS.get(key, ...) != value}
        if isinstance(service.get("machineList"), list):
            service["machineList"] = [
                {k: v for k, v in machine.items() if _MACHINE_EXTENSION_DEFAULTS.get(k, ...) != v}
                if isinstance(machine, dict) else machine for machine in service["machineList"]]
        for key in _INHERITED_BY_SERVICE:
            if key in data and not (key == "nniManagerIp" and service.get("platform") == "local"):
                service.setdefault(key, data[key])
        data["trainingService"] = service
    return data


def _check_inherited(config: ExperimentConfig, service: Any) -> None:
    cwd = os.getcwd()
    for field in INHERITED_FIELDS:
        given = getattr(service, field.name, None)
        if given is None:
            continue
        own = getattr(config, field.name)
        if field.is_path:
            given = resolve_path(os.fspath(given), cwd)
            own = resolve_path(os.fspath(own), cwd) if own is not None else None
        if given != own:
            raise ConfigError(
                f"trainingService.{field.key}: {given!r} differs from the experiment's {field.key} "
                f"({own!r}); nni-ng runs one training service per experiment: set it once, at the top level")


class ExperimentConfig(_ConfigBase):
    """An HPO experiment's config, as in NNI's config v2.

    Build it in Python (``ExperimentConfig('local')`` then set snake_case attributes;
    ``tuner``, ``assessor`` and ``advisor`` start as empty placeholders so that
    ``config.tuner.name = 'TPE'`` works), or read it with :meth:`load` /
    :meth:`from_dict` (camelCase keys; NNI v1 files are converted and the conversion is
    described in :attr:`conversion_notes`).

    :meth:`validate` checks it; :meth:`canonical_copy` returns a validated, normalised
    copy (absolute paths, durations in seconds, search space loaded, advisor folded into
    tuner); :meth:`json` gives the camelCase dict.
    """

    _fields = (
        _Field("experiment_name", check_str),
        _Field("experiment_type", make_choice_checker(("hpo",))),
        _Field("search_space_file", check_optional_path, is_path=True),
        _Field("search_space", check_dict),
        _Field("objectives", check_objectives),
        _Field("warm_start", check_warm_start),
        _Field("constraints", check_constraints),
        _Field("trial_command", check_nonempty_str, required=True),
        _Field("trial_code_directory", check_path, default=".", required=True, is_path=True),
        _Field("trial_concurrency", check_trial_concurrency, required=True),
        _Field("trial_gpu_number", check_nonnegative_int),
        _Field("max_experiment_duration", check_duration),
        _Field("max_trial_number", check_positive_int),
        _Field("max_trial_duration", check_duration),
        _Field("max_failed_trials_at_start", check_nonnegative_int),
        _Field("max_trial_retries", check_nonnegative_int),
        _Field("retry_failed_trials", check_bool, default=False),
        _Field("trial_lease_timeout", check_duration),
        _Field("nni_manager_ip", check_nonempty_str),
        _Field("allowed_hosts", check_host_list),
        _Field("use_annotation", check_bool, default=False),
        _Field("multi_phase", check_bool, default=False),
        _Field("multi_thread", check_bool, default=False),
        _Field("debug", check_bool, default=False),
        _Field("log_level", make_choice_checker(LOG_LEVELS)),
        _Field(
            "experiment_working_directory", check_path, default="~/nni-experiments", is_path=True
        ),
        _Field("tuner_gpu_indices", check_gpu_indices),
        _Field("tuner", default=_AlgorithmConfig()),
        _Field("assessor", default=_AlgorithmConfig()),
        _Field("advisor", default=_AlgorithmConfig()),
        _Field("training_service", required=True),
        _Field("shared_storage", _check_shared_storage),
    )
    _extra_attrs = frozenset({"conversion_notes"})

    experiment_name: str | None
    experiment_type: str | None
    search_space_file: str | os.PathLike | None
    search_space: dict[str, Any] | None
    objectives: list[dict[str, str]] | None
    """Multi-objective experiments (nni-ng extension): ``[{'metric': ..., 'mode': ...}]``; see docs/multi_objective.md."""
    warm_start: dict[str, list[str]] | None
    """Warm start (nni-ng extension): ``{'experiments': [ID, ...]}``, earlier experiments whose
    finished results the tuner gets before the first trial; see docs/warm_start.md."""
    constraints: list[dict[str, Any]] | None
    """Feasibility (nni-ng extension): ``[{'metric': ..., 'max': ..., 'min': ...}]``; see docs/constraints.md."""
    trial_command: str | None
    trial_code_directory: str | os.PathLike
    trial_concurrency: int | None
    trial_gpu_number: int | None
    max_experiment_duration: str | int | float | None
    max_trial_number: int | None
    max_trial_duration: str | int | float | None
    max_failed_trials_at_start: int | None
    """End the experiment (ERROR) when this many trials failed before any succeeded; unset: 5, 0: never."""
    max_trial_retries: int | None
    """How many times a trial whose machine, node or connection was lost runs again (unset: 2; 0: never)."""
    retry_failed_trials: bool
    """Also retry trials that failed by themselves (non-zero exit), up to ``max_trial_retries``."""
    trial_lease_timeout: str | int | float | None
    """A remote/Ray trial whose lease is not renewed for this long is declared lost (unset: 60 s)."""
    nni_manager_ip: str | None
    allowed_hosts: list[str] | None
    """Extra names the REST API answers to in the ``Host`` header (besides loopback and
    ``nni_manager_ip``), e.g. a reverse proxy's public name; see docs/security.md."""
    use_annotation: bool
    multi_phase: bool
    multi_thread: bool
    """NNI's ``multiThread``: ask the tuner for each free trial slot on a thread of its own."""
    debug: bool
    log_level: str | None
    experiment_working_directory: str | os.PathLike
    tuner_gpu_indices: list[int] | str | int | None
    tuner: AlgorithmConfig | CustomAlgorithmConfig | None
    assessor: AlgorithmConfig | CustomAlgorithmConfig | None
    advisor: AlgorithmConfig | CustomAlgorithmConfig | None
    training_service: TrainingServiceConfig | None
    shared_storage: dict | None
    conversion_notes: list[str]
    """What was changed when converting an NNI v1 config (empty for v2 configs)."""

    def __init__(self, training_service_platform: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.conversion_notes = []
        if training_service_platform is not None:
            self.training_service = parse_training_service(
                training_service_platform, "trainingService", None
            )
        if kwargs:
            self._update(kwargs, "", None)

    # -- reading -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_path: str | os.PathLike | None = None) -> ExperimentConfig:
        """Build a config from a camelCase (or snake_case) mapping, as found in a config file.

        Relative paths are resolved against ``base_path`` when given (the config file's
        directory), else left relative (``canonical_copy()`` resolves them against the
        working directory). Keys and value types are checked here; required fields and
        cross-field rules are checked by :meth:`validate`. NNI v1 configs are converted.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"<top level>: expected a mapping of config fields, got {data!r}")
        notes: list[str] = []
        if is_v1(data):
            data, notes = convert_v1(data)
        config = cls()
        base = os.path.abspath(os.fspath(base_path)) if base_path is not None else None
        config._update(data, "", base)
        config.conversion_notes = notes
        return config

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExperimentConfig:
        """Read a YAML or JSON config file; relative paths in it are relative to its directory."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise ConfigError(f"{file}: cannot read config file: {reason}") from error
        data = _parse_text(text, file)
        if data is None:
            raise ConfigError(f"{file}: config file is empty")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{file}: expected a mapping of config fields at the top level")
        return cls.from_dict(data, base_path=file.resolve().parent)

    def _parse_field(self, field: _Field, value: Any, path: str, base_path: str | None) -> Any:
        if field.name == "shared_storage":
            storage = _check_shared_storage(value, path)
            mount = storage.get("localMountPoint") if storage else None
            if base_path is not None and isinstance(mount, str):
                storage["localMountPoint"] = resolve_path(mount, base_path)
            return storage
        if field.name in _ALGORITHM_FIELDS:
            return parse_algorithm(value, path, base_path)
        if field.name == "training_service":
            return parse_training_service(value, path, base_path)
        return super()._parse_field(field, value, path, base_path)

    # -- validation ----------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`ConfigError` (field path + what is expected) if the config is invalid.

        Relative paths are checked against the current working directory.
        """
        self._validate("")

    def _validate(self, path: str) -> None:
        super()._validate(path)
        for name in _ALGORITHM_FIELDS:
            validate_algorithm(getattr(self, name), name)
        service = validate_training_service(self.training_service, "trainingService")
        _check_inherited(self, service)

        if self.use_annotation:
            raise ConfigError(
                "useAnnotation: annotation-based trials are not supported by nni-ng; "
                "give the search space in 'searchSpace' or 'searchSpaceFile' and call "
                "nni.get_next_parameter() in the trial code"
            )

        if self.search_space is not None and self.search_space_file is not None:
            raise ConfigError(
                "searchSpace: set either 'searchSpace' or 'searchSpaceFile', not both"
            )
        if self.search_space is None and self.search_space_file is None:
            raise ConfigError(
                "searchSpace: a search space is required; set 'searchSpace' or 'searchSpaceFile'"
            )
        if self.search_space_file is not None:
            file = resolve_path(os.fspath(self.search_space_file), os.getcwd())
            if not os.path.isfile(file):
                raise ConfigError(f"searchSpaceFile: file not found: {file}")

        code_dir = resolve_path(os.fspath(self.trial_code_directory), os.getcwd())
        if not os.path.isdir(code_dir):
            raise ConfigError(f"trialCodeDirectory: directory not found: {code_dir}")

        has_tuner = is_set(self.tuner)
        if is_set(self.advisor):
            if has_tuner or is_set(self.assessor):
                raise ConfigError(
                    "advisor: an advisor replaces both tuner and assessor; "
                    "do not set 'tuner' or 'assessor' with it"
                )
        elif not has_tuner:
            raise ConfigError("tuner: required field is missing")
        if self.objectives is not None:
            _check_multi_objective_tuner(self)
        if self.constraints:
            _check_constrained_tuner(self)

        if (
            isinstance(service, LocalConfig)
            and self.trial_gpu_number
            and service.use_active_gpu is None
        ):
            raise ConfigError(
                "trainingService.useActiveGpu: required when trialGpuNumber > 0; set it to true "
                "to let trials use GPUs that other processes are using (e.g. a desktop's display "
                "GPU), false otherwise"
            )

    # -- normalising ---------------------------------------------------------

    def canonical_copy(self) -> ExperimentConfig:
        """A validated copy in canonical form.

        Durations are float seconds; paths are absolute (relative ones resolved against
        the working directory, ``~`` expanded); the search space is loaded from
        ``search_space_file`` (which is then unset) and checked; empty algorithm
        placeholders become ``None``; an advisor becomes the tuner; ``log_level`` is filled
        in (``'debug'`` when ``debug``, else ``'info'``); GPU indices are ``list[int]``.
        """
        result = self._canonical(nni_form=False)
        if result.shared_storage is not None:
            raise _refuse_shared_storage("sharedStorage")
        return result

    def _canonical(self, *, nni_form: bool) -> ExperimentConfig:
        # nni_form: NNI's ExperimentConfig.json() shape, which keeps durations as written and
        # searchSpaceFile beside the loaded space, and leaves the space's format to the tuner.
        self.validate()
        from nni.search_space import load_search_space, validate_search_space

        cwd = os.getcwd()
        result: ExperimentConfig = copy.deepcopy(self)
        for field in self._fields:
            value = getattr(result, field.name)
            if field.is_path and value is not None:
                setattr(result, field.name, resolve_path(os.fspath(value), cwd))

        for name in ("max_experiment_duration", "max_trial_duration", "trial_lease_timeout"):
            value = getattr(result, name)
            if value is not None:
                seconds = parse_duration(value, name)
                if not nni_form:
                    setattr(result, name, seconds)

        for name in _ALGORITHM_FIELDS:
            setattr(result, name, canonical_algorithm(getattr(result, name), name, cwd, nni_form=nni_form))
        if result.advisor is not None:
            result.tuner, result.advisor = result.advisor, None

        service = parse_training_service(result.training_service, "trainingService", None)
        service._canonicalize()
        for field in INHERITED_FIELDS:
            value = getattr(service, field.name)
            if not nni_form:
                # validate() checked they agree with the experiment's: one copy, the experiment's
                setattr(service, field.name, None)
            elif field.is_path and value is not None:
                setattr(service, field.name, resolve_path(os.fspath(value), cwd))
        result.experiment_type = result.experiment_type or "hpo"
        result.training_service = service

        if result.tuner_gpu_indices is not None:
            result.tuner_gpu_indices = parse_gpu_indices(result.tuner_gpu_indices, "tunerGpuIndices")
        if result.objectives is not None:   # Python may set Objective objects or leave mode out
            result.objectives = check_objectives(result.objectives, "objectives")
        if result.constraints is not None:   # Python may set Constraint objects
            result.constraints = check_constraints(result.constraints, "constraints")
        result.log_level = (result.log_level or ("debug" if result.debug else "info")).lower()

        if result.search_space_file is not None:
            field_name, source = "searchSpaceFile", result.search_space_file
        else:
            field_name, source = "searchSpace", result.search_space
        try:
            space = load_search_space(source)
            if _builtin_tuner(result.tuner) and not nni_form:
                # NNI's format is checked for built-in tuners only: a custom tuner may have
                # its own format and checks it itself (in update_search_space).
                validate_search_space(space, allow_nas=_takes_nas(result.tuner))
        except (ValueError, OSError) as error:  # SearchSpaceError is a ValueError
            raise ConfigError(f"{field_name}: {error}") from error
        result.search_space = space
        if not nni_form:
            result.search_space_file = None
        result.conversion_notes = list(self.conversion_notes)
        return result

    def json(self) -> dict[str, Any]:
        """NNI's canonical form as a JSON object (camelCase keys, ``None`` omitted), as NNI's
        ``ExperimentConfig.json()`` gives: validated, absolute paths, the search space loaded
        (``searchSpaceFile`` kept beside it), durations as written. Raises ConfigError for an
        invalid config. Unlike :meth:`canonical_copy` (what an experiment is launched with),
        it does not check the search space's format, which is the tuner's (as in NNI), nor
        refuse what nni-ng cannot run (``sharedStorage``). ``to_dict()`` gives the fields as
        they are set instead."""
        return _nni_json(self._canonical(nni_form=True).to_dict())

    #: Fields a running experiment lets you change (``PUT /experiment``, ``nnictl update``).
    UPDATABLE = ("trial_concurrency", "max_trial_number", "max_experiment_duration", "search_space")

    @classmethod
    def canonical_field(cls, name: str, value: Any, *, builtin_tuner: bool = True) -> Any:
        """``value`` checked and normalised for field ``name`` exactly as a config file's would be.

        Used for runtime updates, so that a value the config refuses (``maxExperimentDuration:
        0``, a misspelt search-space key, ...) is refused there too. A search space for a
        custom tuner (``builtin_tuner=False``) is that tuner's own format and is not checked
        against NNI's. Raises ConfigError.
        """
        field = next((f for f in cls._fields if f.name == name), None)
        if field is None or name not in cls.UPDATABLE:
            raise ConfigError(f"{to_camel(name)}: not a field that can be changed while running")
        if value is None:
            raise ConfigError(f"{field.key}: a value is required")
        assert field.check is not None
        value = field.check(value, field.key)
        if name == "max_experiment_duration":
            return parse_duration(value, field.key)
        if name == "search_space":
            from nni.search_space import load_search_space, validate_search_space
            try:
                space = load_search_space(value)
                if builtin_tuner:
                    validate_search_space(space)
            except (ValueError, OSError) as error:
                raise ConfigError(f"{field.key}: {error}") from error
            return space
        return value


def _builtin_tuner(tuner: Any) -> bool:
    """Whether the tuner config names a built-in tuner (not a custom or registered one)."""
    name = getattr(tuner, "name", None)
    if not isinstance(name, str):
        return False
    from nni.algorithms.registry import builtin_algorithms
    return name.lower() in {n.lower() for n in builtin_algorithms("tuner")}


def _takes_nas(tuner: Any) -> bool:
    """Whether the built-in tuner takes NNI's classic NAS types (RegularizedEvolution, as in NNI)."""
    return str(getattr(tuner, "name", "")).lower() in ("regularizedevolution", "regularizedevolutiontuner")


def _check_multi_objective_tuner(config: ExperimentConfig) -> None:
    """With ``objectives``, a built-in tuner must be one that handles several objectives.

    Custom tuners are checked when the manager builds them (their class says whether it can).
    """
    from nni._objectives import MULTI_OBJECTIVE_TUNERS
    names = ", ".join(MULTI_OBJECTIVE_TUNERS)
    if is_set(config.advisor):
        raise ConfigError(f"advisor: an advisor cannot optimise several objectives (objectives is set); "
                          f"use a tuner that can: {names}")
    name = getattr(config.tuner, "name", None)
    if isinstance(name, str) and name.lower() not in {n.lower() for n in MULTI_OBJECTIVE_TUNERS}:
        raise ConfigError(f"tuner.name: {name!r} optimises one metric but objectives lists "
                          f"{len(config.objectives or [])}; use a tuner that handles several: {names}")


def _check_constrained_tuner(config: ExperimentConfig) -> None:
    """With ``constraints``, a built-in tuner must be one that honours them (custom tuners get the
    constraint values with each result and decide themselves)."""
    from nni._constraints import CONSTRAINED_TUNERS
    names = ", ".join(CONSTRAINED_TUNERS)
    if is_set(config.advisor):
        raise ConfigError(f"advisor: an advisor does not honour constraints (constraints is set); "
                          f"use a tuner that does: {names}")
    tuner = config.tuner
    name = tuner.get("name") if isinstance(tuner, Mapping) else getattr(tuner, "name", None)
    if isinstance(name, str) and name.lower() not in {n.lower() for n in CONSTRAINED_TUNERS}:
        raise ConfigError(f"tuner.name: {name!r} does not honour constraints, which this experiment sets; "
                          f"use one that does: {names} (or a custom tuner)")


def _parse_text(text: str, file: Path) -> Any:
    if file.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{file}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{file}: invalid YAML{where}: {problem}") from None
