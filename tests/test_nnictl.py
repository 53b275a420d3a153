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


def create(config: Path) -> tuple[str, int]:
    """``nnictl create`` on any free port; the experiment's id and port, read from what it printed."""
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 0, out.stderr
    match = re.search(r"Experiment (\w+) started.*http://127\.0\.0\.1:(\d+)", out.stdout, re.S)
    assert match, out.stdout
    return match.group(1), int(match.group(2))


def test_create_runs_detached_and_stop_ends_the_manager(experiment_files, tmp_path):
    config = experiment_files()
    exp_id, port = create(config)
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


# Reads a stopped experiment with four nnictl commands in one process, then names the heavy
# modules that process loaded: the CLI must read the store without the server's libraries.
_READ_STOPPED = """
import contextlib, io, json, sys
from nni.cli.__main__ import main
exp_id, export_path = sys.argv[1], sys.argv[2]
answers = {}
for name, argv in (("show", ["experiment", "show", exp_id]), ("list", ["experiment", "list", "--all"]),
                   ("export", ["experiment", "export", exp_id, "--filename", export_path, "--type", "json"]),
                   ("ls", ["trial", "ls", exp_id, "--head", "2"])):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    answers[name] = {"code": code, "stdout": out.getvalue()}
answers["heavy"] = [m for m in ("aiohttp", "numpy", "scipy") if m in sys.modules]
print(json.dumps(answers))
"""


def test_nnictl_reads_a_stopped_experiment_without_aiohttp_or_numpy(experiment_files, tmp_path):
    config = experiment_files(maxTrialNumber=3)
    exp_id, port = create(config)
    try:
        assert wait_done(port) == "DONE"
        live_export = rest.get(port, "/export-data")
        live_jobs = rest.get(port, "/trial-jobs")
    finally:
        stop = nnictl("stop", exp_id)
    assert stop.returncode == 0, stop.stderr

    export_path = tmp_path / "export.json"
    run = subprocess.run([sys.executable, "-c", _READ_STOPPED, exp_id, str(export_path)], capture_output=True,
                         text=True, timeout=180, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    answers = json.loads(run.stdout.splitlines()[-1])
    assert answers["heavy"] == []
    assert all(answers[name]["code"] == 0 for name in ("show", "list", "export", "ls")), answers
    # ... and what it read is what the running experiment answered.
    profile = json.loads(answers["show"]["stdout"])
    assert profile["id"] == exp_id and profile["status"] == "DONE"
    assert profile["params"]["experimentName"] == "cli-test"
    assert exp_id in answers["list"]["stdout"] and "DONE" in answers["list"]["stdout"]
    exported = json.loads(export_path.read_text())
    assert [(r["trialJobId"], r["parameter"]) for r in exported] == \
        [(r["trialJobId"], r["parameter"]) for r in live_export]
    assert len(exported) == 3
    # --head 2: the two best (maximize, from the stored optimize mode) of the three trials.
    best = sorted(live_jobs, key=lambda j: json.loads(json.loads(j["finalMetricData"][0]["data"])), reverse=True)
    listed = [line.split()[0] for line in answers["ls"]["stdout"].splitlines()[2:] if line.strip()]
    assert listed == [j["trialJobId"] for j in best[:2]]


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
