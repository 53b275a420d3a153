"""Tests of nni.experiment.config (NNI config v2, v1 conversion)."""

from __future__ import annotations

import importlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from nni.experiment.config import (
    AlgorithmConfig,
    ConfigError,
    CustomAlgorithmConfig,
    ExperimentConfig,
    LocalConfig,
    parse_duration,
)


def _has_search_space_module() -> bool:
    try:
        module = importlib.import_module("nni.search_space")
    except ImportError:
        return False
    return hasattr(module, "load_search_space") and hasattr(module, "validate_search_space")


# canonical_copy() loads/validates the search space with nni.search_space (another module)
needs_search_space = pytest.mark.skipif(
    not _has_search_space_module(), reason="nni.search_space not available yet"
)

SPACE = {
    "lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "batch_size": {"_type": "choice", "_value": [16, 32, 64]},
}

NNI_EXAMPLE = """\
searchSpaceFile: search_space.json
trialCommand: python3 main.py
trialConcurrency: 1
maxTrialNumber: 100
maxExperimentDuration: 1h
tuner:
  name: TPE
  classArgs:
    optimize_mode: maximize
trainingService:
  platform: local
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(**overrides) -> dict:
    data = {
        "searchSpace": SPACE,
        "trialCommand": "python3 main.py",
        "trialConcurrency": 1,
        "tuner": {"name": "TPE"},
        "trainingService": {"platform": "local"},
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def error_of(callable_, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        callable_(*args, **kwargs)
    return str(info.value)


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    write(tmp_path / "exp" / "config.yml", NNI_EXAMPLE)
    write(tmp_path / "exp" / "search_space.json", json.dumps(SPACE))
    write(tmp_path / "exp" / "main.py", "print('trial')\n")
    return tmp_path / "exp"


# ---------------------------------------------------------------------------
# NNI's documented Python usage


def documented_config() -> ExperimentConfig:
    config = ExperimentConfig("local")
    config.trial_command = "python3 main.py"
    config.trial_code_directory = "."
    config.search_space = SPACE
    config.tuner.name = "TPE"
    config.tuner.class_args["optimize_mode"] = "maximize"
    config.assessor.name = "Medianstop"
    config.max_trial_number = 10
    config.trial_concurrency = 2
    config.training_service.use_active_gpu = True
    return config


def test_documented_python_usage_validates():
    config = documented_config()
    assert isinstance(config.training_service, LocalConfig)
    assert config.training_service.platform == "local"
    assert config.training_service.max_trial_number_per_gpu == 1
    assert config.training_service.reuse_mode is False
    config.validate()
    data = config.json()
    assert data["tuner"] == {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}
    assert data["assessor"]["name"] == "Medianstop"
    assert data["trainingService"]["useActiveGpu"] is True
    assert "advisor" not in data  # empty placeholder omitted


def test_placeholders_do_not_share_state():
    a, b = ExperimentConfig("local"), ExperimentConfig("local")
    a.tuner.class_args["x"] = 1
    assert b.tuner.class_args == {}
    assert a.tuner is not a.assessor


@needs_search_space
def test_documented_python_usage_canonical(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canonical = documented_config().canonical_copy()
    assert isinstance(canonical.tuner, AlgorithmConfig)
    assert canonical.tuner.class_args == {"optimize_mode": "maximize"}
    assert isinstance(canonical.assessor, AlgorithmConfig)
    assert canonical.advisor is None
    assert canonical.trial_code_directory == str(tmp_path)
    assert canonical.experiment_working_directory == os.path.join(
        os.path.expanduser("~"), "nni-experiments"
    )
    assert canonical.log_level == "info"
    assert set(canonical.search_space) == set(SPACE)


def test_attribute_typo_guard():
    config = ExperimentConfig("local")
    with pytest.raises(AttributeError, match="did you mean 'trial_concurrency'"):
        config.trial_concurency = 2
    with pytest.raises(AttributeError, match="did you mean 'trial_concurrency'"):
        config.trial_concurency  # noqa: B018
    with pytest.raises(AttributeError, match="did you mean 'use_active_gpu'"):
        config.training_service.use_activ_gpu = True
    with pytest.raises(AttributeError, match="did you mean 'class_args'"):
        config.tuner.class_arg = {}
    assert not hasattr(config, "trial_concurency")


def test_constructor_kwargs_and_snake_case_keys():
    config = ExperimentConfig(
        "local", trial_command="python3 t.py", trialConcurrency=3, search_space=SPACE
    )
    assert config.trial_concurrency == 3 and config.trial_command == "python3 t.py"
    from_snake = ExperimentConfig.from_dict(
        {"trial_command": "x", "trial_concurrency": 2, "training_service": {"platform": "local", "use_active_gpu": False}}
    )
    assert from_snake.trial_concurrency == 2
    assert from_snake.training_service.use_active_gpu is False
    assert "trialConcurency: unknown field" in error_of(ExperimentConfig, trialConcurency=1)


def test_repr_is_readable():
    text = repr(documented_config())
    assert text.startswith("ExperimentConfig(")
    assert "trial_command='python3 main.py'" in text
    assert "tuner=AlgorithmConfig(name='TPE'" in text
    assert "LocalConfig(platform='local'" in text
    assert "advisor=" not in text  # unset placeholder hidden


# ---------------------------------------------------------------------------
# loading files


def test_nni_example_config_loads_and_validates(example_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the config's directory
    config = ExperimentConfig.load(example_dir / "config.yml")
    assert config.conversion_notes == []
    config.validate()
    assert config.search_space_file == str(example_dir / "search_space.json")
    assert config.trial_code_directory == str(example_dir)  # default '.' = the file's directory
    assert config.max_experiment_duration == "1h"
    assert config.max_trial_number == 100
    assert isinstance(config.tuner, AlgorithmConfig)
    assert config.tuner.class_args == {"optimize_mode": "maximize"}
    assert isinstance(config.training_service, LocalConfig)


@needs_search_space
def test_nni_example_config_canonical(example_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canonical = ExperimentConfig.load(example_dir / "config.yml").canonical_copy()
    assert canonical.max_experiment_duration == 3600.0
    assert isinstance(canonical.max_experiment_duration, float)
    assert set(canonical.search_space) == set(SPACE)
    assert canonical.search_space_file is None
    assert canonical.assessor is None and canonical.advisor is None
    assert "assessor" not in canonical.json()


def test_load_json(tmp_path):
    data = minimal(searchSpace=None, searchSpaceFile="space.json", maxTrialDuration=90)
    write(tmp_path / "space.json", json.dumps(SPACE))
    write(tmp_path / "config.json", json.dumps(data, indent=2))
    config = ExperimentConfig.load(tmp_path / "config.json")
    config.validate()
    assert config.search_space_file == str(tmp_path / "space.json")
    assert config.max_trial_duration == 90


def test_json_syntax_error_has_line_number(tmp_path):
    path = write(tmp_path / "config.json", '{\n  "trialCommand": "x",\n  "trialConcurrency": 1,,\n}\n')
    message = error_of(ExperimentConfig.load, path)
    assert str(path) in message and "invalid JSON at line 3" in message


def test_yaml_syntax_error_has_line_number(tmp_path):
    path = write(tmp_path / "config.yml", "trialCommand: x\ntuner:\n  name: [TPE\n")
    message = error_of(ExperimentConfig.load, path)
    assert str(path) in message and "invalid YAML at line" in message


def test_missing_or_bad_file(tmp_path):
    missing = tmp_path / "nope.yml"
    message = error_of(ExperimentConfig.load, missing)
    assert message.startswith(str(missing)) and "cannot read" in message
    assert "empty" in error_of(ExperimentConfig.load, write(tmp_path / "empty.yml", ""))
    assert "mapping" in error_of(ExperimentConfig.load, write(tmp_path / "list.yml", "- a\n- b\n"))


def test_relative_paths_resolve_against_config_file(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    write(conf_dir / "spaces" / "space.yml", "lr: {_type: uniform, _value: [0, 1]}\n")
    write(
        conf_dir / "config.yml",
        """\
        searchSpaceFile: spaces/space.yml
        trialCommand: python3 main.py
        trialCodeDirectory: ../code
        trialConcurrency: 1
        experimentWorkingDirectory: work
        tuner:
          className: my_tuner.MyTuner
          codeDirectory: tuners
        trainingService:
          platform: local
        """,
    )
    (tmp_path / "code").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = ExperimentConfig.load(conf_dir / "config.yml")
    assert config.search_space_file == str(conf_dir / "spaces" / "space.yml")
    assert config.trial_code_directory == str(tmp_path / "code")
    assert config.experiment_working_directory == str(conf_dir / "work")
    assert isinstance(config.tuner, CustomAlgorithmConfig)
    assert config.tuner.code_directory == str(conf_dir / "tuners")
    config.validate()


def test_home_directory_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write(tmp_path / "c" / "config.yml", "experimentWorkingDirectory: ~/exps\n")
    config = ExperimentConfig.load(path)
    assert config.experiment_working_directory == str(tmp_path / "exps")


@needs_search_space
def test_python_relative_paths_resolve_against_cwd(tmp_path, monkeypatch):
    write(tmp_path / "space.json", json.dumps(SPACE))
    (tmp_path / "code").mkdir()
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(searchSpace=None, searchSpaceFile="space.json"))
    config.trial_code_directory = Path("code")
    config.tuner = {"className": "t.T", "codeDirectory": "tuners"}
    canonical = config.canonical_copy()
    assert canonical.trial_code_directory == str(tmp_path / "code")
    assert canonical.tuner.code_directory == str(tmp_path / "tuners")
    assert set(canonical.search_space) == set(SPACE)
    assert config.trial_code_directory == Path("code")  # original untouched


# ---------------------------------------------------------------------------
# errors


def test_unknown_key_top_level_and_nested():
    assert error_of(ExperimentConfig.from_dict, minimal(trialConcurency=2)) == (
        "trialConcurency: unknown field; did you mean 'trialConcurrency'?"
    )
    assert error_of(
        ExperimentConfig.from_dict, minimal(trainingService={"platform": "local", "gpuIndexes": [0]})
    ) == "trainingService.gpuIndexes: unknown field; did you mean 'gpuIndices'?"
    assert error_of(
        ExperimentConfig.from_dict, minimal(tuner={"name": "TPE", "clasArgs": {}})
    ) == "tuner.clasArgs: unknown field; did you mean 'classArgs'?"
    message = error_of(ExperimentConfig.from_dict, minimal(zzzqqq=1))
    assert message.startswith("zzzqqq: unknown field; valid fields are:")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("trialConcurrency", "two", "trialConcurrency: expected a positive integer, got 'two'"),
        ("trialConcurrency", True, "trialConcurrency: expected a positive integer, got True"),
        ("trialConcurrency", 0, "trialConcurrency: expected a positive integer, got 0"),
        ("maxTrialNumber", 2.5, "maxTrialNumber: expected a positive integer, got 2.5"),
        ("trialGpuNumber", -1, "trialGpuNumber: expected a non-negative integer, got -1"),
        ("trialCommand", 3, "trialCommand: expected a non-empty string, got 3"),
        ("debug", "yes", "debug: expected true or false, got 'yes'"),
        ("searchSpace", [1, 2], "searchSpace: expected a mapping, got [1, 2]"),
        ("logLevel", "loud", "logLevel: expected one of 'fatal', 'error', 'warning', 'info', 'debug', 'trace', got 'loud'"),
        ("tuner", "TPE", "tuner: expected a mapping with 'name' or 'className'"),
        ("trainingService", ["local"], "trainingService: expected a mapping with a 'platform' key"),
        ("experimentType", "nas", "experimentType: expected one of 'hpo', got 'nas'"),
    ],
)
def test_wrong_type(key, value, expected):
    assert error_of(ExperimentConfig.from_dict, minimal(**{key: value})).startswith(expected)


def test_wrong_type_nested_gpu_indices():
    message = error_of(
        ExperimentConfig.from_dict, minimal(trainingService={"platform": "local", "gpuIndices": "a,b"})
    )
    assert message == (
        "trainingService.gpuIndices: expected a list of non-negative integers "
        "or a comma-separated string, got 'a,b'"
    )
    config = ExperimentConfig.from_dict(minimal())
    config.training_service.gpu_indices = [0, -1]
    assert error_of(config.validate).startswith("trainingService.gpuIndices: expected")


def test_wrong_type_set_from_python_caught_by_validate():
    config = documented_config()
    config.trial_concurrency = "2"
    assert error_of(config.validate) == "trialConcurrency: expected a positive integer, got '2'"


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("trialCommand", "trialCommand: required field is missing"),
        ("trialConcurrency", "trialConcurrency: required field is missing"),
        ("trainingService", "trainingService: required field is missing"),
        ("tuner", "tuner: required field is missing"),
    ],
)
def test_missing_required(missing, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(**{missing: None}))
    assert error_of(config.validate) == expected


def test_missing_platform_and_bad_platform():
    assert error_of(
        ExperimentConfig.from_dict, minimal(trainingService={"useActiveGpu": True})
    ) == "trainingService.platform: required field is missing"
    message = error_of(ExperimentConfig.from_dict, minimal(trainingService={"platform": "kubeflow"}))
    assert message == "trainingService.platform: unsupported platform 'kubeflow'; supported: local, ray, remote"
    assert "unsupported platform 'pai'" in error_of(ExperimentConfig, "pai")


@pytest.mark.parametrize("value", ["10x", "-5s", "h", "", "1h30m", True, None, [1], float("nan"), -1])
def test_bad_duration(value):
    message = error_of(parse_duration, value, "maxTrialDuration")
    assert message.startswith("maxTrialDuration: expected a duration")


def test_bad_duration_in_config():
    message = error_of(ExperimentConfig.from_dict, minimal(maxExperimentDuration="1 fortnight"))
    assert message.startswith("maxExperimentDuration: expected a duration")
    message = error_of(ExperimentConfig.from_dict, minimal(maxTrialDuration=0))
    assert message == "maxTrialDuration: expected a positive duration, got 0"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (".5m", 30.0),
        ("10", 10.0),
        ("10 minutes", 600.0),
        ("3 Hours", 10800.0),
        ("1day", 86400.0),
        (" 45 sec ", 45.0),
        (120, 120.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_duration_table(value, seconds):
    result = parse_duration(value)
    assert result == seconds and isinstance(result, float)


def test_search_space_both_or_neither(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "s.json", json.dumps(SPACE))
    both = ExperimentConfig.from_dict(minimal(searchSpaceFile="s.json"))
    assert error_of(both.validate).startswith("searchSpace: set either 'searchSpace' or 'searchSpaceFile', not both")
    neither = ExperimentConfig.from_dict(minimal(searchSpace=None))
    assert error_of(neither.validate).startswith("searchSpace: a search space is required")
    missing_file = ExperimentConfig.from_dict(minimal(searchSpace=None, searchSpaceFile="gone.json"))
    assert error_of(missing_file.validate) == f"searchSpaceFile: file not found: {tmp_path / 'gone.json'}"


def test_trial_code_directory_must_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(trialCodeDirectory="src"))
    assert error_of(config.validate) == f"trialCodeDirectory: directory not found: {tmp_path / 'src'}"


def test_algorithm_name_and_class_name():
    message = error_of(ExperimentConfig.from_dict, minimal(tuner={"name": "TPE", "className": "a.B"}))
    assert message.startswith("tuner: set either 'name'") and "not both" in message
    message = error_of(ExperimentConfig.from_dict, minimal(assessor={"classArgs": {"a": 1}}))
    assert message.startswith("assessor: either 'name'")
    message = error_of(ExperimentConfig.from_dict, minimal(tuner={"name": "TPE", "codeDirectory": "."}))
    assert message.startswith("tuner.codeDirectory: only valid with 'className'")
    config = documented_config()
    config.tuner.class_name = "my.Tuner"
    assert "not both" in error_of(config.validate)
    config = documented_config()
    config.assessor = ExperimentConfig().assessor  # a fresh placeholder
    config.assessor.class_args["x"] = 1
    assert error_of(config.validate).startswith("assessor: either 'name'")


def test_use_annotation_refused():
    config = ExperimentConfig.from_dict(minimal(useAnnotation=True))
    message = error_of(config.validate)
    assert message.startswith("useAnnotation:") and "not supported" in message


def test_advisor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(tuner=None, advisor={"name": "BOHB", "classArgs": {"eta": 3}}))
    config.validate()
    both = ExperimentConfig.from_dict(minimal(advisor={"name": "Hyperband"}))
    assert error_of(both.validate).startswith("advisor: an advisor replaces both tuner and assessor")


@needs_search_space
def test_advisor_folded_into_tuner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(tuner=None, advisor={"name": "BOHB", "classArgs": {"eta": 3}}))
    canonical = config.canonical_copy()
    assert canonical.advisor is None
    assert canonical.tuner == AlgorithmConfig(name="BOHB", class_args={"eta": 3})


def test_local_gpu_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(minimal(trialGpuNumber=1))
    assert error_of(config.validate).startswith("trainingService.useActiveGpu: required when trialGpuNumber > 0")
    config.training_service.use_active_gpu = False
    config.validate()
    config.training_service.max_trial_number_per_gpu = 0
    assert error_of(config.validate).startswith("trainingService.maxTrialNumberPerGpu: expected a positive integer")


@needs_search_space
@pytest.mark.parametrize(("value", "expected"), [("0,2", [0, 2]), (" 1 ", [1]), (3, [3]), ([1, 0], [1, 0]), ("", [])])
def test_gpu_indices_canonical(value, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict(
        minimal(tunerGpuIndices=value, trainingService={"platform": "local", "gpuIndices": value})
    )
    canonical = config.canonical_copy()
    assert canonical.training_service.gpu_indices == expected
    assert canonical.tuner_gpu_indices == expected


@needs_search_space
def test_log_level_and_search_space_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ExperimentConfig.from_dict(minimal()).canonical_copy().log_level == "info"
    assert ExperimentConfig.from_dict(minimal(debug=True)).canonical_copy().log_level == "debug"
    assert ExperimentConfig.from_dict(minimal(logLevel="TRACE")).canonical_copy().log_level == "trace"
    bad = {"lr": {"_type": "no_such_type", "_value": [1]}}
    assert error_of(ExperimentConfig.from_dict(minimal(searchSpace=bad)).canonical_copy).startswith("searchSpace: ")
    write(tmp_path / "bad.json", json.dumps(bad))
    from_file = ExperimentConfig.from_dict(minimal(searchSpace=None, searchSpaceFile="bad.json"))
    assert error_of(from_file.canonical_copy).startswith("searchSpaceFile: ")


# ---------------------------------------------------------------------------
# json() round trip


def test_to_dict_round_trip(example_dir):
    config = ExperimentConfig.load(example_dir / "config.yml")
    data = config.to_dict()
    json.dumps(data)  # serialisable
    assert all(value is not None for value in data.values())
    again = ExperimentConfig.from_dict(data)
    assert again == config and again.to_dict() == data
    python_built = documented_config()
    python_built.tuner = CustomAlgorithmConfig(class_name="m.T", class_args={"k": [1, 2]})
    python_built.max_trial_duration = "10m"
    assert ExperimentConfig.from_dict(python_built.to_dict()).to_dict() == python_built.to_dict()


@needs_search_space
def test_json_is_nni_canonical_form(example_dir, tmp_path, monkeypatch):
    """As NNI's ExperimentConfig.json() (NNI's own test_exp_config.py pins the shape): absolute
    paths, the space loaded beside searchSpaceFile, durations as written, the training service
    given the trial fields, and the space's format left to the tuner."""
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.load(example_dir / "config.yml")
    config.max_trial_duration = "10m"
    data = config.json()
    assert data["maxTrialDuration"] == "10m" and data["experimentType"] == "hpo"
    assert os.path.isabs(data["searchSpaceFile"]) and isinstance(data["searchSpace"], dict)
    assert os.path.isabs(data["trialCodeDirectory"])
    service = data["trainingService"]
    assert service["trialCommand"] == data["trialCommand"]
    assert service["trialCodeDirectory"] == data["trialCodeDirectory"]
    assert "multiPhase" not in data and "retryFailedTrials" not in data   # nni-ng's, at their defaults
    assert config.max_trial_duration == "10m"   # the config itself is left as it was
    launched = config.canonical_copy().to_dict()     # what an experiment runs with
    assert launched["maxTrialDuration"] == 600.0 and "searchSpaceFile" not in launched
    config.search_space_file = None
    config.search_space = {"x": {"_type": "uniformm", "_value": [0, 1]}}
    assert config.json()["searchSpace"] == config.search_space   # NNI leaves the format to the tuner
    with pytest.raises(ConfigError, match="searchSpace.*uniformm"):
        config.canonical_copy()                                  # ... and a launch refuses it


def test_shared_storage_is_read_but_not_launched(tmp_path, monkeypatch):
    """NNI's config files with sharedStorage load (and json() shows it); launching one says why not."""
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.from_dict({
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "trialCommand": "true",
        "trialConcurrency": 1, "tuner": {"name": "Random"}, "trainingService": {"platform": "local"},
        "sharedStorage": {"storageType": "NFS", "localMountPoint": "mnt", "remoteMountPoint": "/tmp",
                          "localMounted": "usermount", "nfsServer": "nfs.example", "exportedDirectory": "x"},
    }, base_path=tmp_path)
    assert config.json()["sharedStorage"]["localMountPoint"] == str(tmp_path / "mnt")
    with pytest.raises(ConfigError, match="sharedStorage: NNI's shared storage"):
        config.canonical_copy()
    with pytest.raises(ConfigError, match="sharedStorage.storageType"):
        ExperimentConfig.from_dict({"sharedStorage": {"localMountPoint": "x"}})


@needs_search_space
def test_canonical_json_round_trip(example_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canonical = ExperimentConfig.load(example_dir / "config.yml").canonical_copy()
    data = json.loads(json.dumps(canonical.json()))
    again = ExperimentConfig.from_dict(data)
    assert again.json() == canonical.json()
    assert again.canonical_copy().json() == canonical.json()


# ---------------------------------------------------------------------------
# NNI v1 configs

V1_CONFIG = """\
authorName: default
experimentName: example_mnist
trialConcurrency: 2
maxExecDuration: 1h
maxTrialNum: 10
trainingServicePlatform: local
searchSpacePath: search_space.json
useAnnotation: false
multiPhase: true
logLevel: debug
tuner:
  codeDir: tuners
  classFileName: my_tuner.py
  className: MyTuner
  classArgs:
    optimize_mode: maximize
  gpuIndices: "0"
assessor:
  builtinAssessorName: Medianstop
  classArgs:
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: .
  gpuNum: 1
localConfig:
  maxTrialNumPerGpu: 2
  gpuIndices: 0,1
"""


def test_v1_conversion(tmp_path, monkeypatch):
    write(tmp_path / "v1" / "config.yml", V1_CONFIG)
    write(tmp_path / "v1" / "search_space.json", json.dumps(SPACE))
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.load(tmp_path / "v1" / "config.yml")
    config.validate()
    base = tmp_path / "v1"
    assert config.experiment_name == "example_mnist"
    assert config.trial_command == "python3 mnist.py"
    assert config.trial_code_directory == str(base)
    assert config.trial_gpu_number == 1
    assert config.max_experiment_duration == "1h"
    assert config.max_trial_number == 10
    assert config.search_space_file == str(base / "search_space.json")
    assert config.multi_phase is True
    assert config.log_level == "debug"
    assert isinstance(config.tuner, CustomAlgorithmConfig)
    assert config.tuner.class_name == "my_tuner.MyTuner"
    assert config.tuner.code_directory == str(base / "tuners")
    assert config.tuner.class_args == {"optimize_mode": "maximize"}
    assert config.tuner_gpu_indices == "0"
    assert config.assessor == AlgorithmConfig(name="Medianstop", class_args={"optimize_mode": "maximize"})
    service = config.training_service
    assert isinstance(service, LocalConfig)
    assert (service.max_trial_number_per_gpu, service.gpu_indices) == (2, "0,1")
    assert service.use_active_gpu is False  # v1 default, needed because gpuNum > 0

    notes = "\n".join(config.conversion_notes)
    for expected in (
        "converted from an NNI v1 config",
        "authorName: dropped",
        "maxExecDuration -> maxExperimentDuration",
        "maxTrialNum -> maxTrialNumber",
        "searchSpacePath -> searchSpaceFile",
        "trial.command -> trialCommand",
        "trial.gpuNum -> trialGpuNumber",
        "tuner.classFileName + tuner.className -> tuner.className 'my_tuner.MyTuner'",
        "assessor.builtinAssessorName -> assessor.name",
        "localConfig.maxTrialNumPerGpu -> trainingService.maxTrialNumberPerGpu",
        "tuner.gpuIndices -> tunerGpuIndices",
        "trainingServicePlatform: local",
    ):
        assert expected in notes
    # a converted config round-trips as v2
    again = ExperimentConfig.from_dict(config.to_dict())
    assert again == config and again.conversion_notes == []


def test_v1_builtin_tuner_and_advisor():
    config = ExperimentConfig.from_dict(
        {
            "trainingServicePlatform": "local",
            "advisor": {"builtinAdvisorName": "BOHB", "classArgs": {"max_budget": 27}},
            "trial": {"command": "python3 t.py", "codeDir": "."},
            "trialConcurrency": 1,
            "searchSpacePath": "s.json",
        }
    )
    assert config.advisor == AlgorithmConfig(name="BOHB", class_args={"max_budget": 27})
    assert "advisor.builtinAdvisorName -> advisor.name" in config.conversion_notes


def test_v1_refusals():
    message = error_of(
        ExperimentConfig.from_dict,
        {"trainingServicePlatform": "local", "useAnnotation": True, "trial": {"command": "x", "codeDir": "."}},
    )
    assert message.startswith("useAnnotation:") and "not supported" in message
    message = error_of(
        ExperimentConfig.from_dict, {"trainingServicePlatform": "remote", "trial": {"command": "x", "codeDir": "."}}
    )
    assert message.startswith("trainingServicePlatform: platform 'remote'") and "supported: local" in message
    message = error_of(ExperimentConfig.from_dict, {"authorName": "a", "maxTrailNum": 3})
    assert message == "maxTrailNum: unknown field; did you mean 'maxTrialNum'?"
    message = error_of(ExperimentConfig.from_dict, {"trial": {"command": "x", "codeDri": "."}})
    assert message == "trial.codeDri: unknown field; did you mean 'codeDir'?"


def test_training_service_takes_nni_inherited_fields(tmp_path, monkeypatch):
    """NNI's json() writes trialCommand & co. into the training service, so configs saved from it
    carry them there: they load when they agree with the experiment's, and are refused, naming
    the field, when they do not (one service runs the experiment's one command)."""
    monkeypatch.chdir(tmp_path)
    base = {"searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "trialCommand": "python3 t.py",
            "trialConcurrency": 1, "tuner": {"name": "Random"}}
    same = ExperimentConfig.from_dict({**base, "trainingService": {
        "platform": "local", "trialCommand": "python3 t.py", "trialCodeDirectory": ".", "debug": False}})
    assert same.canonical_copy().trial_command == "python3 t.py"
    assert ExperimentConfig.from_dict(same.json()).json() == same.json()
    other = ExperimentConfig.from_dict({**base, "trainingService": {"platform": "local", "trialCommand": "python3 u.py"}})
    with pytest.raises(ConfigError, match=r"trainingService.trialCommand: 'python3 u.py' differs from the experiment's"):
        other.validate()


def test_empty_search_space_file_means_not_set_as_in_nni_templates(tmp_path, monkeypatch):
    """NNI's test_search_space.py builds ExperimentConfig(search_space_file='', ...) and sets the
    file later: '' is "not set" (and a config with nothing set still says what is missing)."""
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig(search_space_file="", trial_command="true", trial_concurrency=1,
                              tuner=AlgorithmConfig(name="Random"), training_service=LocalConfig())
    assert config.search_space_file is None
    with pytest.raises(ConfigError, match="searchSpace: a search space is required"):
        config.validate()
    (tmp_path / "space.json").write_text('{"x": {"_type": "uniform", "_value": [0, 1]}}')
    config.search_space_file = tmp_path / "space.json"
    assert config.json()["searchSpace"] == {"x": {"_type": "uniform", "_value": [0, 1]}}


def test_json_of_a_remote_config_is_nnis_shape(tmp_path, monkeypatch):
    """NNI's test_ts_remote.py: machineList entries as NNI writes them; nni-ng's hostKeyCheck
    shows only when it is not the default."""
    monkeypatch.chdir(tmp_path)
    data = {"searchSpace": {"a": 1}, "trialCommand": "python main.py", "trialConcurrency": 2,
            "tuner": {"name": "random"},
            "trainingService": {"platform": "remote", "machine_list": [{"host": "1.2.3.4", "user": "u", "password": "p"}]}}
    machine = ExperimentConfig(**data).json()["trainingService"]["machineList"][0]
    assert machine == {"host": "1.2.3.4", "port": 22, "user": "u", "password": "p", "useActiveGpu": False,
                       "maxTrialNumberPerGpu": 1}
    data["trainingService"]["machine_list"][0]["hostKeyCheck"] = "accept-new"
    assert ExperimentConfig(**data).json()["trainingService"]["machineList"][0]["hostKeyCheck"] == "accept-new"
