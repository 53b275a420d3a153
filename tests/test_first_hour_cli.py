"""Issue 30, "the first hour": what an NNI user meets in nnictl and the Python API, through the
real ``nnictl`` (a subprocess), real managers, real trials and the real SQLite store."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import wait_for, write_config
from nni.experiment import rest
from test_nnictl import create, nnictl, wait_done

SILENT_TRIAL = """
import nni
p = nni.get_next_parameter()
print("trained with", p)          # ... and forgot nni.report_final_result()
"""

NESTED_SPACE = {"model": {"_type": "choice", "_value": [
    {"_name": "svm", "C": {"_type": "uniform", "_value": [0.1, 1]}},
    {"_name": "tree", "depth": {"_type": "randint", "_value": [2, 5]}},
]}}


@pytest.fixture
def experiment(write, tmp_path):
    """Write ``trial.py`` and return a function that writes a config running it."""
    def make(trial: str, space: dict | None = None, **overrides) -> Path:
        write("exp/trial.py", trial)
        data = {
            "searchSpace": space or {"x": {"_type": "uniform", "_value": [0, 1]}},
            "trialCommand": f"{sys.executable} trial.py",
            "trialConcurrency": 2,
            "maxTrialNumber": 4,
            "experimentWorkingDirectory": str(tmp_path / "experiments"),
            "tuner": {"name": "Random", "classArgs": {"seed": 1}},
            "trainingService": {"platform": "local"},
        }
        return write_config(tmp_path / "exp", data, **overrides)
    return make


# -- item 3: trials that never report a final result ---------------------------------------------
def test_trials_without_a_final_result_are_said_everywhere(experiment, tmp_path):
    exp_id, port = create(experiment(SILENT_TRIAL))
    try:
        assert wait_done(port) == "DONE"
        answer = rest.get(port, "/check-status")
        assert answer["trialsWithoutFinalResult"] == 4
        assert any(w.startswith("4 trials ended without report_final_result()") for w in answer["warnings"])
        assert rest.get(port, "/progress")["trialsWithoutFinalResult"] == 4

        status = nnictl("experiment", "status", exp_id)
        assert status.returncode == 0
        assert "warning: 4 trials ended without report_final_result()" in status.stdout, status.stdout

        head = nnictl("trial", "ls", exp_id, "--head", "2")
        assert head.returncode == 0
        assert "has no trials" not in head.stdout
        assert "no trial with a final result yet (4 trials; 4 SUCCEEDED without calling " \
               "nni.report_final_result())" in head.stdout, head.stdout

        listing = nnictl("trial", "ls", exp_id)
        assert listing.stdout.count("no final result (report_final_result() never called)") == 4, listing.stdout

        log = (tmp_path / "experiments" / exp_id / "log" / "nnimanager.log").read_text()
        assert log.count("ended without report_final_result()") == 1, log     # once, not per trial
    finally:
        nnictl("stop", exp_id)
    # Stopped: the store says the same.
    status = nnictl("experiment", "status", exp_id)
    assert "warning: 4 trials ended without report_final_result()" in status.stdout, status.stdout


def test_experiment_run_ends_with_the_warning(tmp_path, write):
    write("trial.py", SILENT_TRIAL)
    script = write("launch.py", f"""
        from nni.experiment import Experiment
        experiment = Experiment('local')
        experiment.config.trial_command = {sys.executable!r} + ' trial.py'
        experiment.config.trial_code_directory = {str(tmp_path)!r}
        experiment.config.experiment_working_directory = {str(tmp_path / 'experiments')!r}
        experiment.config.search_space = {{'x': {{'_type': 'uniform', '_value': [0, 1]}}}}
        experiment.config.tuner.name = 'Random'
        experiment.config.max_trial_number = 2
        experiment.config.trial_concurrency = 2
        print('ok' if experiment.run(port=0) else 'failed')
    """)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Warning: 2 trials ended without report_final_result()"), out.stderr


# -- item 5: a typo in a registered tuner's name ---------------------------------------------------
def test_a_registered_tuners_typo_gets_did_you_mean_and_the_registered_names(experiment, write, tmp_path):
    write("cwd/shuffle_tuner.py", """
        from nni.algorithms.hpo.random_tuner import RandomTuner
        class ShuffleTuner(RandomTuner):
            pass
    """)
    meta = write("cwd/meta.yml", "algoType: tuner\nbuiltinName: MyShuffle\nclassName: shuffle_tuner.ShuffleTuner\n")
    out = nnictl("algo", "register", "--meta", str(meta))
    assert out.returncode == 0, out.stderr
    out = nnictl("create", "--config", str(experiment(SILENT_TRIAL, tuner={"name": "MyShufle"})), "--port", "0")
    assert out.returncode == 1
    assert "Did you mean 'MyShuffle'?" in out.stderr, out.stderr
    assert "registered tuners (nnictl algo register): MyShuffle" in out.stderr, out.stderr


# -- item 11: why a trial ended, a status filter, log trial TRIAL_ID ------------------------------
FAILING_TRIAL = """
import sys
import nni
p = nni.get_next_parameter()
if p["x"] < 0.5:
    sys.exit("bad x: " + str(p["x"]))
nni.report_final_result(p["x"])
"""


def test_trial_ls_shows_exit_code_and_reason_filters_by_status_and_log_takes_a_trial_id(experiment):
    space = {"x": {"_type": "choice", "_value": [0.1, 0.2, 0.8, 0.9]}}
    exp_id, port = create(experiment(FAILING_TRIAL, space, tuner={"name": "GridSearch"}))
    try:
        assert wait_done(port) == "DONE"
        failed = nnictl("trial", "ls", exp_id, "--status", "failed")
        assert failed.returncode == 0, failed.stderr
        lines = failed.stdout.splitlines()
        assert lines[0].split() == ["TRIAL", "SEQ", "STATUS", "METRIC", "DURATION", "EXIT", "PARAMETERS", "REASON"]
        rows = lines[2:]
        assert len(rows) == 2 and all(" FAILED " in r for r in rows), failed.stdout
        for row in rows:
            assert re.search(r"FAILED\s+\d+m \d\ds\s+1\s", row) and re.search(r"exit code 1: bad x: 0\.[12]$", row), row
        succeeded = nnictl("trial", "ls", exp_id, "--status", "SUCCEEDED")
        assert len(succeeded.stdout.splitlines()) == 4 and "FAILED" not in succeeded.stdout
        none = nnictl("trial", "ls", exp_id, "--status", "EARLY_STOPPED")
        assert none.returncode == 0 and "has no EARLY_STOPPED trial (4 trials in all)" in none.stdout

        trial_id = rows[0].split()[0]
        for argv in (("log", "trial", trial_id), ("log", "trial", exp_id, trial_id),
                     ("log", "trial", exp_id, "--trial_id", trial_id)):
            out = nnictl(*argv)
            assert out.returncode == 0, (argv, out.stderr)
            assert f"trial {trial_id}: FAILED, exit code 1" in out.stdout and "bad x" in out.stdout, (argv, out.stdout)
        out = nnictl("log", "trial", exp_id)
        assert out.returncode == 1 and "is an experiment; name one of its trials too" in out.stderr
    finally:
        nnictl("stop", exp_id)
    # Stopped, no experiment running: the trial id alone still finds its experiment.
    out = nnictl("log", "trial", trial_id)
    assert out.returncode == 0 and "bad x" in out.stdout, out.stderr


# -- item 12: a nested choice in CSV, one column per level ----------------------------------------
NESTED_TRIAL = """
import nni
p = nni.get_next_parameter()["model"]
nni.report_final_result({"default": p.get("C", 0) + p.get("depth", 0), "size": 3})
"""


def test_csv_export_flattens_a_nested_choice_and_imports_back(experiment, tmp_path):
    exp_id, port = create(experiment(NESTED_TRIAL, NESTED_SPACE, maxTrialNumber=6, trialConcurrency=3))
    try:
        assert wait_done(port) == "DONE"
        out = nnictl("experiment", "export", exp_id, "--type", "csv", "--filename", "results.csv")
        assert out.returncode == 0, out.stderr
        with open("results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 6
        header = list(rows[0])
        assert {"model", "model/C", "model/depth", "default", "size"} <= set(header), header
        exported = {r["trialJobId"]: r for r in rows}
        for result in rest.get(port, "/export-data"):
            row = exported[result["trialJobId"]]
            model = result["parameter"]["model"]
            assert row["model"] == model["_name"]         # not '{"_name": "svm", ...}'
            for key, value in model.items():
                if key != "_name":
                    assert float(row[f"model/{key}"]) == pytest.approx(value)
            other = "depth" if model["_name"] == "svm" else "C"
            assert row[f"model/{other}"] == ""
        # The same file imports back, as nested parameters the tuner can learn from.
        imported = nnictl("experiment", "import", exp_id, "--filename", "results.csv")
        assert imported.returncode == 0, imported.stderr
        batches = rest.get(port, "/experiment/imported-data")
        back = [row for batch in batches for row in json.loads(batch)]
        assert len(back) == 6
        assert all(set(r["parameter"]) == {"model"} and "_name" in r["parameter"]["model"] for r in back), back
    finally:
        nnictl("stop", exp_id)


# -- item 15: stop with nothing running, update echoes the value --------------------------------
def test_stop_with_nothing_running_exits_0_and_update_echoes_the_new_value(experiment):
    # NNI: parse_ids() does `print_error('There is no experiment running...')` and returns an
    # empty list; stop_experiment() then does nothing and nnictl exits 0.
    out = nnictl("stop")
    assert out.returncode == 0 and "No experiment is running; nothing to stop." in out.stdout, out

    hold = """
        import time, nni
        p = nni.get_next_parameter()
        time.sleep(600)
    """
    exp_id, port = create(experiment(textwrap.dedent(hold), maxTrialNumber=50, trialConcurrency=1))
    try:
        out = nnictl("update", "concurrency", "--value", "4")
        assert out.returncode == 0, out.stderr
        assert f"Experiment {exp_id}: trialConcurrency is now 4 (was 1)." in out.stdout, out.stdout
        out = nnictl("update", "trialnum", exp_id, "--value", "60")
        assert "maxTrialNumber is now 60 (was 50)." in out.stdout, out.stdout
        out = nnictl("update", "duration", exp_id, "--value", "2h")
        assert "maxExperimentDuration is now 2h 00m 00s (7200 s) (was not set)." in out.stdout, out.stdout
        Path("space.json").write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 2]},
                                                  "y": {"_type": "choice", "_value": [1, 2]}}))
        out = nnictl("update", "searchspace", exp_id, "--filename", "space.json")
        assert "searchSpace replaced from space.json (2 parameters: x, y)." in out.stdout, out.stdout
    finally:
        assert nnictl("stop").returncode == 0


# -- item 4: NNI's way, a module on PYTHONPATH ----------------------------------------------------
def test_a_tuner_on_pythonpath_registers_and_runs_by_name(experiment, write, tmp_path, monkeypatch):
    write("algorithms/counting_tuner.py", """
        from nni.algorithms.hpo.random_tuner import RandomTuner
        class CountingTuner(RandomTuner):
            def generate_parameters(self, parameter_id, **kwargs):
                return {"x": parameter_id / 10}     # recognisable: this tuner ran
    """)
    meta = write("metas/meta.yml", "algoType: tuner\nbuiltinName: Counting\nclassName: counting_tuner.CountingTuner\n")
    # Without PYTHONPATH, not next to the meta file: the error says every way there is.
    out = nnictl("algo", "register", "--meta", str(meta))
    assert out.returncode == 1
    for way in ("next to the meta file", "codeDirectory", "PYTHONPATH", "pip install -e ."):
        assert way in out.stderr, out.stderr
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "algorithms"))
    out = nnictl("algo", "register", "--meta", str(meta))
    assert out.returncode == 0 and "Registered tuner 'Counting' (counting_tuner.CountingTuner)." in out.stdout, out
    listing = nnictl("algo", "list")
    assert re.search(r"Counting\s+tuner\s+registered\s+counting_tuner\.CountingTuner$", listing.stdout, re.M)
    trial = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"
    exp_id, port = create(experiment(trial, tuner={"name": "Counting"}, maxTrialNumber=3))
    try:
        assert wait_done(port) == "DONE"
        assert sorted(r["parameter"]["x"] for r in rest.get(port, "/export-data")) == [0.0, 0.1, 0.2]
    finally:
        nnictl("stop", exp_id)
