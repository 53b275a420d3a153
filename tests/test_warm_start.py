"""Warm start (``warmStart: {experiments: [ID, ...]}``, ``nnictl create --warm-start ID``): the
finished results of earlier experiments, fitted to the current search space, reach the tuner
before the first trial, through the real config, ``nnictl``, the Python API and the web UI.

Every experiment here is real: a manager, trial processes, the SQLite store, the registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for, write_config
from nni.experiment import Experiment, rest
from nni.experiment.config import ConfigError, ExperimentConfig
from nni.tuner import Tuner

NNICTL = shutil.which("nnictl", path=str(Path(sys.executable).parent)) or "nnictl"
CHROMIUM = "/usr/bin/chromium"

# The trial reports a result computed from its parameters, so the test knows every value.
TRIAL = """
    import nni
    p = nni.get_next_parameter()
    nni.report_final_result(p["x"] + p["y"])
"""
# Last week's space: 'old' is gone from the new one, 'x' narrows from [0, 10) to [0, 5).
OLD_SPACE = {"x": {"_type": "randint", "_value": [0, 10]}, "y": {"_type": "uniform", "_value": [0, 1]},
             "old": {"_type": "choice", "_value": ["a", "b"]}}
# This week's: 'z' is new.
NEW_SPACE = {"x": {"_type": "randint", "_value": [0, 5]}, "y": {"_type": "uniform", "_value": [0, 1]},
             "z": {"_type": "choice", "_value": [1, 2]}}


def store_of(exp: Experiment) -> sqlite3.Connection:
    return sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")


def finished_params(conn: sqlite3.Connection) -> list[tuple[dict, Any]]:
    return [(json.loads(p), json.loads(v)) for p, v in conn.execute(
        "SELECT p.parameters, m.value FROM metrics m JOIN parameters p USING (parameter_id) WHERE m.type = 'FINAL'")]


def run_source(make_experiment, n: int = 10) -> Experiment:
    """Last week's experiment: Random over OLD_SPACE, ``n`` trials, DONE."""
    source = make_experiment(TRIAL, OLD_SPACE, concurrency=2, max_trials=n)
    source.start(port=0)
    assert source.wait(timeout=240) == "DONE"
    return source


def fitting(results: list[tuple[dict, Any]]) -> list[tuple[dict, Any]]:
    """What a warm start into NEW_SPACE must take: x still in range, 'old' dropped."""
    return [({k: v for k, v in p.items() if k != "old"}, value) for p, value in results if p["x"] < 5]


class RecordingTuner(Tuner):
    """A real custom tuner that remembers the order of the calls it gets (and takes no partial results)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.imported: list[dict] = []

    def update_search_space(self, search_space: dict) -> None:
        self.calls.append("update_search_space")

    def import_data(self, data: list[dict]) -> None:
        self.calls.append("import_data")
        self.imported += data

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        self.calls.append("generate_parameters")
        return {"x": parameter_id % 5, "y": 0.5, "z": 1}

    def receive_trial_result(self, parameter_id: int, parameters: dict, value: Any, **kwargs: Any) -> None:
        self.calls.append("receive_trial_result")


# -- the Python API ----------------------------------------------------------------------------
def test_python_api_warm_start_gives_tpe_the_fitted_results_which_are_not_trials(make_experiment):
    source = run_source(make_experiment)
    results = finished_params(store_of(source))
    expected = fitting(results)
    assert 0 < len(expected) < len(results), "the seed should give results on both sides of x = 5"
    source.stop()

    exp = make_experiment(TRIAL, NEW_SPACE, concurrency=1, max_trials=3)
    exp.config.tuner.name, exp.config.tuner.class_args = "TPE", {"seed": 3}
    exp.config.warm_start = {"experiments": [source.id]}
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    conn = store_of(exp)
    imported = [(json.loads(p), json.loads(v), s) for p, v, s in
                conn.execute("SELECT parameter, value, source FROM imported ORDER BY id")]
    # Taken as they were (out-of-space results and the removed parameter dropped, the new
    # parameter left to the tuner), recorded as this source's batch.
    assert sorted((json.dumps(p, sort_keys=True), v) for p, v, _ in imported) == \
        sorted((json.dumps(p, sort_keys=True), v) for p, v in expected)
    assert {s for _, _, s in imported} == {source.id}
    # Imported results are not trials and do not count against maxTrialNumber: 3 trials ran.
    assert conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 3
    assert len(exp.list_trial_jobs()) == 3
    # The counts: in the store (nnictl, web UI), the events and the experiment's log.
    summary = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'warm_start'").fetchone()[0])
    assert summary == [{"experiment": source.id, "finished": len(results), "taken": len(expected),
                        "partial": len(expected), "leftOut": len(results) - len(expected),
                        "outOfSpace": len(results) - len(expected), "missingParameters": 0,
                        "removedParameters": ["old"], "newParameters": ["z"]}]
    line = (f"from {source.id}: {len(results)} finished results, {len(expected)} taken ({len(expected)} without "
            f"the new parameters 'z', left to the tuner), {len(results) - len(expected)} left out "
            f"({len(results) - len(expected)} outside the search space); parameters no longer in the space, "
            f"dropped: 'old'")
    log = (Path(exp.config.experiment_working_directory) / exp.id / "log" / "nnimanager.log").read_text()
    assert f"warm start {line}" in log
    # TPE took every one (results lacking the new 'z' included), before its first proposal.
    assert re.search(rf"import_data: imported {len(expected)} of {len(expected)} entries", log), log[-3000:]
    events = [m for k, m in conn.execute("SELECT kind, message FROM events") if k == "WARM_START"]
    assert events == [line]

    # Resumed with a raised limit: not warm-started again; the tuner gets the same results back
    # (those lacking 'z' included) and its own, and 2 more trials run.
    exp.stop()
    resumed = Experiment.resume(exp.id, port=0, wait_completion=False)
    try:
        resumed.update_max_trial_number(5)
        assert resumed.wait(timeout=240) == "DONE"
    finally:
        resumed.stop()
    conn = store_of(exp)
    assert conn.execute("SELECT COUNT(*) FROM imported").fetchone()[0] == len(expected)
    assert [k for k, in conn.execute("SELECT kind FROM events") if k == "WARM_START"] == ["WARM_START"]
    assert conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 5
    log = (Path(exp.config.experiment_working_directory) / exp.id / "log" / "nnimanager.log").read_text()
    assert f"import_data: imported {len(expected) + 3} of {len(expected) + 3} entries" in log, log[-3000:]


def test_a_custom_tuner_gets_the_results_before_its_first_trial_and_partial_ones_are_left_out(make_experiment):
    source = run_source(make_experiment, n=6)
    results = finished_params(store_of(source))
    source.stop()
    tuner = RecordingTuner()
    # Same space as last week's but for 'old' (removed): every result fits, none lacks a parameter.
    same = {k: v for k, v in OLD_SPACE.items() if k != "old"}
    exp = make_experiment(TRIAL, same, tuner=tuner, concurrency=1, max_trials=2)
    exp.config.warm_start = {"experiments": [source.id]}
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    assert tuner.calls[:3] == ["update_search_space", "import_data", "generate_parameters"]
    assert sorted(r["value"] for r in tuner.imported) == sorted(v for _, v in results)
    assert all("old" not in r["parameter"] for r in tuner.imported)
    exp.stop()

    # A new parameter: this tuner cannot fill it (no takes_partial_results), so those are left out.
    tuner2 = RecordingTuner()
    exp2 = make_experiment(TRIAL, dict(same, z={"_type": "choice", "_value": [1, 2]}), tuner=tuner2,
                           concurrency=1, max_trials=1)
    exp2.config.warm_start = {"experiments": [source.id]}
    exp2.start(port=0)
    assert exp2.wait(timeout=240) == "DONE"
    assert tuner2.imported == []
    summary = json.loads(store_of(exp2).execute("SELECT value FROM meta WHERE key = 'warm_start'").fetchone()[0])
    assert summary[0]["missingParameters"] == len(results) and summary[0]["taken"] == 0
    assert summary[0]["newParameters"] == ["z"]


def test_an_unknown_id_is_a_config_error_naming_the_field_with_the_known_ids(make_experiment):
    source = run_source(make_experiment, n=2)
    source.stop()
    typo = source.id[:-1] + ("x" if source.id[-1] != "x" else "y")
    exp = make_experiment(TRIAL, NEW_SPACE, concurrency=1, max_trials=1)
    exp.config.warm_start = {"experiments": [typo]}
    with pytest.raises(Exception) as error:
        exp.start(port=0)
    message = str(error.value)
    assert f"warmStart.experiments[0]: no experiment {typo!r} on this machine" in message
    assert f"did you mean {source.id!r}?" in message and f"Known experiments: {source.id}" in message


def test_the_config_file_field_is_checked_and_kept(tmp_path):
    base = {"searchSpace": NEW_SPACE, "trialCommand": "python3 trial.py", "trialConcurrency": 1,
            "tuner": {"name": "TPE"}, "trainingService": {"platform": "local"}}
    config = ExperimentConfig.load(write_config(tmp_path, base, warmStart={"experiments": ["abc", "def"]}))
    assert config.warm_start == {"experiments": ["abc", "def"]}
    assert config.canonical_copy().to_dict()["warmStart"] == {"experiments": ["abc", "def"]}
    for bad, says in [({"experiment": ["abc"]}, "warmStart.experiment: unknown field"),
                      ({"experiments": []}, "warmStart.experiments: expected a non-empty list"),
                      ({"experiments": ["abc", 3]}, "warmStart.experiments[1]: expected an experiment id"),
                      (["abc"], "warmStart: expected a mapping like {experiments: [ID, ...]}")]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            ExperimentConfig.load(write_config(tmp_path, base, warmStart=bad))


def test_tpe_takes_results_lacking_a_parameter_added_since_when_told_they_are_partial():
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    tuner = TpeTuner(seed=1)
    tuner.update_search_space(NEW_SPACE)
    tuner.import_data([{"parameter": {"x": 1, "y": 0.25}, "value": 0.5}])   # NNI's plain call: skipped
    assert len(tuner._history) == 0
    tuner.import_data(partial=True, data=[{"parameter": {"x": 1, "y": 0.25}, "value": 0.5},              # no 'z': taken
                       {"parameter": {"x": 1, "y": 0.5, "z": 2}, "value": 0.7},
                       {"parameter": {"x": 7, "y": 0.5, "z": 2}, "value": 0.1}])     # x out of range
    assert len(tuner._history) == 2
    params = tuner.generate_parameters(0)
    assert set(params) == {"x", "y", "z"}


def test_dict_and_multi_objective_results_are_read_as_a_resume_reads_them(tmp_path):
    """A source's final results as ``import_data`` gets them today: finite scalars or dicts with
    a finite ``default``; with ``objectives``, the dict checked against them (``default`` added)."""
    from nni._objectives import parse_objectives
    from nni.manager._warm_start import finished_results
    from nni.manager.experiment_dir import ExperimentDir
    directory = ExperimentDir(tmp_path / "source")
    store = directory.open_store()
    finals = {"t0": {"acc": 0.9, "lat": 3.0}, "t1": {"default": 0.5, "acc": 0.8, "lat": 2.0},
              "t2": float("nan"), "t3": 0.25, "t4": None}     # t4: no final result
    for i, (trial_id, value) in enumerate(finals.items()):
        store.add_trial(trial_id, i, str(tmp_path / trial_id), i, {"x": i})
        if value is not None:
            store.add_metric(trial_id, i, "FINAL", 0, json.dumps(value))
    store.close()
    # Single objective: the dict without 'default' and the NaN are not results a tuner can use.
    assert finished_results(directory) == [
        {"parameter": {"x": 1}, "value": {"default": 0.5, "acc": 0.8, "lat": 2.0}},
        {"parameter": {"x": 3}, "value": 0.25}]
    objectives = parse_objectives([{"metric": "acc", "mode": "maximize"}, {"metric": "lat"}])
    assert finished_results(directory, objectives) == [
        {"parameter": {"x": 0}, "value": {"acc": 0.9, "lat": 3.0, "default": 0.9}},
        {"parameter": {"x": 1}, "value": {"default": 0.5, "acc": 0.8, "lat": 2.0}}]


# -- nnictl ------------------------------------------------------------------------------------
def nnictl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([NNICTL, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def nnictl_create(config: Path, *extra: str) -> tuple[str, int]:
    out = nnictl("create", "--config", str(config), "--port", "0", *extra)
    assert out.returncode == 0, out.stdout + out.stderr
    match = re.search(r"Experiment (\w+) started.*http://127\.0\.0\.1:(\d+)", out.stdout, re.S)
    assert match, out.stdout
    return match.group(1), int(match.group(2))


def wait_done(port: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    version = -1
    while time.monotonic() < deadline:
        progress = rest.get(port, f"/progress?since={version}&timeout=5")
        version = progress["version"]
        if progress["status"] in ("DONE", "ERROR", "STOPPED"):
            assert progress["status"] == "DONE", progress
            return
    raise AssertionError("experiment did not finish")


@pytest.fixture
def config_file(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(textwrap.dedent(TRIAL))

    def make(space: dict, max_trials: int, **fields: Any) -> Path:
        return write_config(tmp_path, {
            "searchSpace": space, "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(code),
            "trialConcurrency": 2, "maxTrialNumber": max_trials, "tuner": {"name": "TPE", "classArgs": {"seed": 2}},
            "experimentWorkingDirectory": str(tmp_path / "experiments"), "trainingService": {"platform": "local"},
            **fields})
    return make


def test_nnictl_create_warm_start_from_the_config_and_the_option_and_status_shows_the_counts(config_file, tmp_path):
    created: list[str] = []
    try:
        first, port = nnictl_create(config_file(OLD_SPACE, 6))
        created.append(first)
        wait_done(port)
        assert nnictl("stop", first).returncode == 0
        # The config's warmStart ...
        second, port = nnictl_create(config_file(NEW_SPACE, 2, warmStart={"experiments": [first]}))
        created.append(second)
        wait_done(port)
        # ... and --warm-start (repeatable), added to it.
        third, port = nnictl_create(config_file(NEW_SPACE, 2, warmStart={"experiments": [first]}),
                                    "--warm-start", second)
        created.append(third)
        wait_done(port)
        status = nnictl("experiment", "status", third)
        assert status.returncode == 0, status.stderr
        lines = [line.strip() for line in status.stdout.splitlines() if "warm start" in line]
        assert len(lines) == 2, status.stdout
        assert re.match(rf"warm start from {first}: 6 finished results, (\d) taken", lines[0]), lines
        # the second experiment's own 2 trials: the first one's imported results are not carried on
        assert re.match(rf"warm start from {second}: 2 finished results, 2 taken, 0 left out$", lines[1]), lines
        # Imported results are not trials: the trial list has this experiment's 2.
        ls = nnictl("trial", "ls", third)
        assert ls.returncode == 0 and len([l for l in ls.stdout.splitlines() if "SUCCEEDED" in l]) == 2, ls.stdout
        assert nnictl("stop", third).returncode == 0
        # Stopped: status reads the store.
        assert lines == [l.strip() for l in nnictl("experiment", "status", third).stdout.splitlines()
                         if "warm start" in l]
        # An unknown id on the command line: the launch is refused, naming the field.
        out = nnictl("create", "--config", str(config_file(NEW_SPACE, 1)), "--port", "0", "--warm-start", "nosuchid")
        assert out.returncode != 0
        assert "warmStart.experiments[0]: no experiment 'nosuchid' on this machine" in out.stdout + out.stderr
        for experiment_id in (first, second):
            assert experiment_id in out.stdout + out.stderr   # the known ids are listed
    finally:
        for experiment_id in created:   # no manager outlives the test
            nnictl("stop", experiment_id)


# -- the web UI --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: the web UI tests drive Debian's chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def test_web_ui_shows_the_imported_count_and_hides_imported_rows_until_asked(make_experiment, browser):
    from playwright.sync_api import expect
    expect.set_options(timeout=60_000)
    source = run_source(make_experiment, n=8)
    expected = fitting(finished_params(store_of(source)))
    source.stop()
    exp = make_experiment(TRIAL, NEW_SPACE, concurrency=2, max_trials=3)
    exp.config.tuner.name, exp.config.tuner.class_args = "TPE", {"seed": 1}
    exp.config.warm_start = {"experiments": [source.id]}
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    try:
        tab.goto(f"{exp.webui_url}#/overview")
        expect(tab.locator("#imported-count")).to_have_text(str(len(expected)))
        expect(tab.locator(f"#imported-card [data-source='{source.id}']")).to_contain_text(
            f"warm start from {source.id}: 8 finished, {len(expected)} taken")
        expect(tab.locator("#trials-done")).to_have_text("3 / 3")   # imports do not count

        tab.goto(f"{exp.webui_url}#/trials")
        expect(tab.locator("#trials-table tbody tr")).to_have_count(3)   # only this experiment's trials
        toggle = tab.locator("#imported-toggle")
        expect(toggle).to_have_text(f"Show imported results ({len(expected)})")
        expect(tab.locator("#imported-table")).to_be_hidden()
        toggle.click()
        rows = tab.locator("#imported-table tbody tr.imported-row")
        expect(rows).to_have_count(len(expected))
        expect(rows.first).to_contain_text(f"warm start: {source.id}")
        expect(toggle).to_have_text("Hide imported results")
        toggle.click()
        expect(tab.locator("#imported-table")).to_be_hidden()
        assert not errors, errors
    finally:
        context.close()
