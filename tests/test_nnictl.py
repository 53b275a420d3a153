"""nnictl driven as a real executable: create, errors, stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import pid_alive, write_config
from nni.experiment import rest

NNICTL = shutil.which("nnictl", path=str(Path(sys.executable).parent)) or "nnictl"


def nnictl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([NNICTL, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


@pytest.fixture
def experiment_files(write, tmp_path):
    write("exp/trial.py", """
        import nni
        p = nni.get_next_parameter()
        nni.report_final_result(p["lr"] * 10)
    """)
    write("exp/search_space.json", json.dumps({"lr": {"_type": "loguniform", "_value": [0.001, 0.1]}}))

    def config(**overrides) -> Path:
        data = {
            "experimentName": "cli-test",
            "searchSpaceFile": "search_space.json",
            "trialCommand": f"{sys.executable} trial.py",
            "trialConcurrency": 2,
            "maxTrialNumber": 4,
            "experimentWorkingDirectory": str(tmp_path / "experiments"),
            "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
            "trainingService": {"platform": "local"},
        }
        return write_config(tmp_path / "exp", data, **overrides)
    return config


def wait_done(port: int, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    version = -1
    while time.monotonic() < deadline:
        progress = rest.get(port, f"/progress?since={version}&timeout=5")
        version = progress["version"]
        if progress["status"] in ("DONE", "ERROR", "STOPPED"):
            return progress["status"]
    raise AssertionError("experiment did not finish")


def test_create_runs_detached_and_stop_ends_the_manager(experiment_files, tmp_path):
    config = experiment_files()
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 0, out.stderr
    match = re.search(r"Experiment (\w+) started.*http://127\.0\.0\.1:(\d+)", out.stdout, re.S)
    assert match, out.stdout
    exp_id, port = match.group(1), int(match.group(2))
    try:
        assert wait_done(port) == "DONE"
        rows = rest.get(port, "/export-data")
        assert len(rows) == 4
        for row in rows:
            assert json.loads(row["value"]) == pytest.approx(row["parameter"]["lr"] * 10)
        profile = rest.get(port, "/experiment")
        assert profile["id"] == exp_id and profile["params"]["experimentName"] == "cli-test"
        assert Path(tmp_path / "experiments" / exp_id / "db" / "nni.sqlite").is_file()
    finally:
        entry = json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{exp_id}.json").read_text())
        stop = nnictl("stop", exp_id)
    assert stop.returncode == 0, stop.stderr
    assert f"Experiment {exp_id} stopped" in stop.stdout
    assert not pid_alive(entry["pid"])


def test_create_refuses_a_typo_in_the_config_with_a_suggestion(experiment_files):
    config = experiment_files(trialConcurency=2)
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 1
    assert "trialConcurency" in out.stderr and "did you mean 'trialConcurrency'" in out.stderr


def test_create_refuses_an_invalid_search_space_before_any_trial(experiment_files, tmp_path):
    (tmp_path / "exp" / "search_space.json").write_text(
        json.dumps({"lr": {"_type": "loguniform", "_value": [0, 0.1]}}))
    config = experiment_files()
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 1
    assert "lr" in out.stderr and "loguniform" in out.stderr
    assert not (tmp_path / "experiments").exists() or not any((tmp_path / "experiments").glob("*/trials/*"))


def test_create_on_a_busy_port_says_so(experiment_files):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = nnictl("create", "--config", str(experiment_files()), "--port", str(port))
    assert out.returncode == 1
    assert f"port {port}" in out.stderr and "not available" in out.stderr


def test_missing_config_file_and_unknown_experiment_are_one_line_errors(tmp_path):
    out = nnictl("create", "--config", str(tmp_path / "nope.yml"))
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "not found" in out.stderr
    out = nnictl("stop", "doesnotexist")
    assert out.returncode == 1 and "no experiment with id 'doesnotexist'" in out.stderr


def test_a_legacy_v1_config_runs_and_the_conversion_is_reported(write, tmp_path):
    write("v1/trial.py", "import nni\nnni.report_final_result(nni.get_next_parameter()['C'])\n")
    write("v1/search_space.json", json.dumps({"C": {"_type": "uniform", "_value": [0.1, 1]}}))
    config = write("v1/config.yml", f"""
        authorName: default
        experimentName: v1_example
        trialConcurrency: 2
        maxExecDuration: 1h
        maxTrialNum: 3
        trainingServicePlatform: local
        searchSpacePath: search_space.json
        useAnnotation: false
        tuner:
          builtinTunerName: TPE
          classArgs:
            optimize_mode: maximize
        trial:
          command: {sys.executable} trial.py
          codeDir: .
          gpuNum: 0
    """)
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 0, out.stderr
    assert "Note: maxTrialNum -> maxTrialNumber" in out.stdout
    exp_id, port = re.search(r"Experiment (\w+) started.*http://127\.0\.0\.1:(\d+)", out.stdout, re.S).groups()
    try:
        assert wait_done(int(port)) == "DONE"
        assert len(rest.get(int(port), "/export-data")) == 3
        # No logDir: the default ~/nni-experiments, which is this test's own HOME, not the user's.
        assert Path.home().is_relative_to(tmp_path)
        assert (Path.home() / "nni-experiments" / exp_id / "db" / "nni.sqlite").is_file()
    finally:
        nnictl("stop", exp_id)
