"""Constraints (config ``constraints``, docs/constraints.md) through the real parts: the config
and its refusals, ``nnictl create`` with a YAML config, the trials' results read against the
constraints (a missing metric warned in the trial's stderr), the best result, ``nnictl trial
ls`` (--head, --feasible/--infeasible), the export, resume, a custom tuner's ``constraints=``
keyword, the Pareto front, and every built-in tuner that honours constraints."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import wait_for, write_config
from nni.algorithms.registry import create_algorithm
from nni.experiment import Experiment, rest
from nni.experiment.config import ConfigError, ExperimentConfig
from nni.tuner import Tuner
from test_nnictl import create, nnictl, wait_done

#: acc = x; latency_ms = 20 x, so only x <= 0.5 meets "latency_ms <= 10"; x = 0.95 forgets to
#: report latency_ms (a missing constraint metric: infeasible, warned in the trial's stderr)
XS = [0.1, 0.3, 0.45, 0.6, 0.8, 0.95]
SPACE = {"x": {"_type": "choice", "_value": XS}}
TRIAL = """
    import nni
    x = nni.get_next_parameter()["x"]
    result = {"default": x, "latency_ms": 20 * x, "size_mb": 5.0}
    if x > 0.9:
        del result["latency_ms"]
    nni.report_final_result(result)
"""
CONSTRAINTS = [{"metric": "latency_ms", "max": 10}, {"metric": "size_mb", "max": 50, "min": 1}]


def _rows(stdout: str) -> list[list[str]]:
    """The table rows of ``nnictl trial ls`` (split on runs of 2+ spaces), header first."""
    import re
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()
            if line.strip() and not set(line.strip()) <= {"-", " "}]


# ---- config ---------------------------------------------------------------------------------------
def _config(**fields) -> ExperimentConfig:
    config = ExperimentConfig(trial_command="python t.py", trial_concurrency=1, search_space=SPACE,
                              training_service={"platform": "local"}, tuner={"name": "TPE"})
    for key, value in fields.items():
        setattr(config, key, value)
    return config


def test_constraints_field_and_its_refusals(tmp_path):
    path = write_config(tmp_path, {"searchSpace": SPACE, "trialCommand": "python t.py", "trialConcurrency": 1,
                                   "tuner": {"name": "GP"}, "trainingService": {"platform": "local"},
                                   "constraints": [{"metric": "latency_ms", "max": 10}, {"metric": "acc", "min": 0.9}]})
    loaded = ExperimentConfig.load(path).canonical_copy()
    assert loaded.json()["constraints"] == [{"metric": "latency_ms", "max": 10.0}, {"metric": "acc", "min": 0.9}]
    for constraints, message in (
            ([{"metric": "latency_ms"}], r"constraints\[0\] \('latency_ms'\) needs a bound: 'max'"),
            ([{"metric": "m", "max": 1, "min": 2}], r"min 2 is above max 1"),
            ([{"metric": "m", "maximum": 1}], r"unknown field\(s\) 'maximum'; valid fields: 'metric', 'max', 'min'"),
            ([{"metric": "m", "max": "ten"}], r"constraints\[0\].max must be a finite number, got 'ten'"),
            ([{"metric": "m", "max": 1}, {"metric": "m", "min": 0}], r"'m' is given twice"),
            ("latency_ms", r"constraints must be a list")):
        with pytest.raises(ConfigError, match=message):
            _config(constraints=constraints).canonical_copy()
    with pytest.raises(ConfigError, match=r"tuner.name: 'Anneal' does not honour constraints.*TPE, MOTPE, NSGA2"):
        _config(constraints=CONSTRAINTS, tuner={"name": "Anneal"}).canonical_copy()
    with pytest.raises(ConfigError, match=r"advisor: an advisor does not honour constraints"):
        _config(constraints=CONSTRAINTS, tuner=None, advisor={"name": "Hyperband"}).canonical_copy()


# ---- nnictl with a YAML config ------------------------------------------------------------------
def test_nnictl_constrained_experiment_best_ls_export_resume(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text("\n".join(line[4:] for line in TRIAL.splitlines()))
    config = write_config(tmp_path, {
        "searchSpace": SPACE, "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(code),
        "trialConcurrency": 3, "maxTrialNumber": len(XS), "constraints": CONSTRAINTS,
        "experimentWorkingDirectory": str(tmp_path / "experiments"),
        "tuner": {"name": "Random", "classArgs": {"seed": 3, "optimize_mode": "maximize"}},
        "trainingService": {"platform": "local"}})
    exp_id, port = create(config)
    try:
        assert wait_done(port) == "DONE"
        jobs = {json.loads(j["hyperParameters"][0])["parameters"]["x"]: j for j in rest.get(port, "/trial-jobs")}
        assert sorted(jobs) == XS      # a finite space of 6: every value ran once
        # the best is the best *feasible* result, not x = 0.95 or 0.8
        progress = rest.get(port, "/progress")
        assert progress["bestMetric"] == 0.45 and progress["bestTrialId"] == jobs[0.45]["trialJobId"]
        # each job says whether it is feasible, and by how much it violates
        assert jobs[0.3]["feasibility"] == {"feasible": True, "violation": 0.0,
                                            "constraints": {"latency_ms": 6.0, "size_mb": 5.0}}
        assert jobs[0.6]["feasibility"]["feasible"] is False
        assert jobs[0.6]["feasibility"]["violation"] == pytest.approx(2.0)
        missing = jobs[0.95]
        assert missing["feasibility"] == {"feasible": False, "violation": None, "missing": ["latency_ms"],
                                          "constraints": {"latency_ms": None, "size_mb": 5.0}}
        # the missing constraint metric: a clear error in the trial's log and on the trial
        stderr = Path(missing["stderrPath"]).read_text()
        assert "[nni] final result lacks constraint metric(s) 'latency_ms'" in stderr
        assert "counts as infeasible" in missing["message"]
        _check_cli(exp_id, jobs, tmp_path)
    finally:
        stop = nnictl("stop", exp_id)
    assert stop.returncode == 0, stop.stderr
    _check_cli(exp_id, jobs, tmp_path)      # the same answers from the stopped experiment's store

    # resumed: the best stays the best feasible one
    resumed = Experiment.resume(exp_id, port=0, wait_completion=False)
    try:
        assert resumed.wait(timeout=120) in ("DONE", "NO_MORE_TRIAL")
        assert rest.get(resumed.port, "/progress")["bestMetric"] == 0.45
    finally:
        resumed.stop()


def _check_cli(exp_id: str, jobs: dict[float, dict], tmp_path: Path) -> None:
    by_id = {j["trialJobId"]: x for x, j in jobs.items()}
    out = nnictl("trial", "ls", exp_id, "--head", "1")
    assert out.returncode == 0, out.stderr
    header, *rows = _rows(out.stdout)
    assert header[:5] == ["TRIAL", "SEQ", "STATUS", "METRIC", "FEASIBLE"]
    assert [by_id[r[0]] for r in rows] == [0.45] and rows[0][4] == "yes"
    out = nnictl("trial", "ls", exp_id, "--infeasible")
    assert out.returncode == 0, out.stderr
    cells = {by_id[r[0]]: r[4] for r in _rows(out.stdout)[1:]}
    assert cells == {0.6: "no (violation 2)", 0.8: "no (violation 6)", 0.95: "no (missing latency_ms)"}
    out = nnictl("trial", "ls", exp_id, "--feasible")
    assert sorted(by_id[r[0]] for r in _rows(out.stdout)[1:]) == [0.1, 0.3, 0.45]
    path = tmp_path / "export.csv"
    out = nnictl("experiment", "export", exp_id, "--filename", str(path), "--type", "csv")
    assert out.returncode == 0, out.stderr
    table = {float(r["x"]): r for r in csv.DictReader(path.open())}
    assert {x: (r["feasible"], r["violation"]) for x, r in table.items()} == {
        0.1: ("True", "0.0"), 0.3: ("True", "0.0"), 0.45: ("True", "0.0"), 0.6: ("False", "2.0"),
        0.8: ("False", "6.0"), 0.95: ("False", "inf")}


# ---- Python API: a custom tuner, the Pareto front ------------------------------------------------
class RecordingTuner(Tuner):
    """A custom tuner written as NNI's docs show (``**kwargs``): it gets ``constraints=``."""

    def __init__(self):
        self.kwargs: list[dict] = []
        self.left = [{"x": x} for x in XS]

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return self.left.pop(0)

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.kwargs.append({"x": parameters["x"], **kwargs})


class OldTuner(RecordingTuner):
    """An old custom tuner whose receive_trial_result takes no keywords: it keeps working."""

    def receive_trial_result(self, parameter_id, parameters, value):
        self.kwargs.append({"x": parameters["x"]})


@pytest.mark.parametrize("tuner_class", [RecordingTuner, OldTuner])
def test_custom_tuner_receives_the_constraint_values(make_experiment, tuner_class):
    tuner = tuner_class()
    exp = make_experiment(TRIAL, SPACE, tuner=tuner, concurrency=2, max_trials=len(XS), constraints=CONSTRAINTS)
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        assert rest.get(exp.port, "/progress")["bestMetric"] == 0.45   # custom tuner: maximize (NNI's default)
    finally:
        exp.stop()
    got = {k["x"]: k for k in tuner.kwargs}
    assert sorted(got) == XS
    if tuner_class is OldTuner:
        assert all(set(k) == {"x"} for k in got.values())
        return
    assert got[0.3]["constraints"] == {"feasible": True, "violation": 0.0,
                                       "constraints": {"latency_ms": 6.0, "size_mb": 5.0}}
    assert got[0.8]["constraints"]["feasible"] is False
    assert got[0.8]["constraints"]["violation"] == pytest.approx(6.0)
    assert got[0.95]["constraints"]["missing"] == ["latency_ms"] and got[0.95]["constraints"]["violation"] is None


MO_TRIAL = """
    import nni
    x = nni.get_next_parameter()["x"]
    nni.report_final_result({"default": x, "acc": x, "cost": x * x, "mem_mb": 100 * x})
"""


def test_pareto_front_holds_only_feasible_results(make_experiment):
    # acc and cost both grow with x: every result is on the unconstrained front; mem_mb <= 50
    # leaves only x <= 0.5 feasible
    exp = make_experiment(MO_TRIAL, SPACE, concurrency=3, max_trials=len(XS),
                          objectives=[{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}],
                          constraints=[{"metric": "mem_mb", "max": 50}])
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        front = exp.pareto_front()
        assert sorted(r.parameter["x"] for r in front) == [0.1, 0.3, 0.45]
        assert rest.get(exp.port, "/progress")["bestMetric"] == 0.45
        hv = rest.get(exp.port, "/pareto-front/hypervolume")
        assert hv["points"][-1]["results"] == 3       # only the feasible results count
        # the results the Pareto page draws apart, by the server's one rule (nni/_constraints.py)
        infeasible = rest.get(exp.port, "/pareto-front/infeasible")
        assert sorted(r["parameter"]["x"] for r in infeasible) == sorted(x for x in XS if 100 * x > 50)
        assert all(r["objectives"]["cost"] == r["parameter"]["x"] ** 2 for r in infeasible)
        out = nnictl("trial", "ls", exp.id, "--pareto")
        assert out.returncode == 0, out.stderr
        on_front = {r[0] for r in _rows(out.stdout)[1:]}
        assert on_front == {r.trialJobId for r in front}
    finally:
        exp.stop()


# ---- every built-in tuner that honours constraints ----------------------------------------------
#: maximize x + y on [0, 1]^2 subject to x^2 + y^2 <= 0.5: the unconstrained optimum (1, 1) is
#: infeasible; the constrained one is (0.5, 0.5), value 1
BOX = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}
TUNERS = [
    ("TPE", {"optimize_mode": "maximize", "tpe_args": {"n_startup_jobs": 10}}),
    ("GP", {"optimize_mode": "maximize", "cold_start_num": 8, "selection_num_warm_up": 2000,
            "selection_num_starting_points": 5}),
    ("Evolution", {"optimize_mode": "maximize", "population_size": 10}),
    ("RegularizedEvolution", {"optimize_mode": "maximize", "population_size": 10, "sample_size": 5}),
    ("MOTPE", {"objectives": [{"metric": "x", "mode": "maximize"}, {"metric": "y", "mode": "maximize"}],
               "n_startup_jobs": 10}),
    ("NSGA2", {"objectives": [{"metric": "x", "mode": "maximize"}, {"metric": "y", "mode": "maximize"}],
               "population_size": 10}),
]


def _late_feasible_share(name: str, args: dict, constrained: bool, seed: int, n: int = 50) -> float:
    tuner = create_algorithm("tuner", name=name, class_args={**args, "seed": seed})
    if constrained:
        tuner.set_constraints([{"metric": "r2", "max": 0.5}])
    tuner.update_search_space(BOX)
    feasible = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        r2 = p["x"] ** 2 + p["y"] ** 2
        tuner.receive_trial_result(i, p, {"default": p["x"] + p["y"], "x": p["x"], "y": p["y"], "r2": r2})
        tuner.trial_end(i, True)
        feasible.append(r2 <= 0.5)
    return float(np.mean(feasible[n // 2:]))


@pytest.mark.parametrize("name,args", TUNERS, ids=[t[0] for t in TUNERS])
def test_builtin_tuners_steer_to_the_feasible_region(name, args):
    """With the constraint the tuners search along its boundary (the constrained optimum lies on
    it, so about half of the late suggestions are feasible); without it they chase the
    infeasible corner (1, 1) and almost none are."""
    seeds = range(2 if name == "GP" else 3)    # GP's proposals cost ~0.1 s each
    with_c = [_late_feasible_share(name, args, True, seed) for seed in seeds]
    without = [_late_feasible_share(name, args, False, seed) for seed in seeds]
    assert np.mean(with_c) >= 0.4, (with_c, without)
    assert np.mean(with_c) > np.mean(without) + 0.25, (with_c, without)


def test_ranking_orders_feasible_first_then_by_violation():
    from nni.algorithms.hpo._constraints import constrained_ranks, ranked_losses
    loss = np.array([5.0, 1.0, 3.0, 0.5, 9.0])
    violation = np.array([0.0, 2.0, 0.0, math.inf, 0.5])
    order = np.argsort(ranked_losses(loss, violation), kind="stable").tolist()
    assert order == [2, 0, 4, 1, 3]      # feasible by loss, then infeasible by violation, missing last
    F = np.array([[1.0, 2.0], [2.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
    ranks = constrained_ranks(F, np.array([0.0, 0.0, 1.0, 0.0]))
    assert ranks.tolist() == [0, 0, 2, 1]  # (0, 0) dominates everything but is infeasible


# ---- the web UI in a real browser --------------------------------------------------------------
def test_webui_marks_and_filters_infeasible_trials_in_chromium(make_experiment):
    """Overview: the best is the best feasible result; trials table: a Feasible column with the
    violation, the filter ``feasible=no``; Pareto page: infeasible results drawn apart."""
    import os
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=60_000)
    trial = MO_TRIAL.replace('"mem_mb": 100 * x', '"mem_mb": 100 * x, **({} if x > 0.9 else {"latency_ms": 20 * x})')
    exp = make_experiment(trial, SPACE, concurrency=3, max_trials=len(XS),
                          objectives=[{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}],
                          constraints=[{"metric": "latency_ms", "max": 10}])
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        by_x = {r.parameter["x"]: r.trialJobId for r in exp.export_data()}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(exp.webui_url + "#/overview")
                expect(page.locator("#best-metric")).to_have_text("0.45")
                expect(page.locator("#top-trials")).to_contain_text(by_x[0.45])
                assert by_x[0.8] not in page.inner_text("#top-trials")

                page.goto(exp.webui_url + "#/trials")
                expect(page.locator("#trials-table tbody tr")).to_have_count(len(XS))
                expect(page.locator("#trials-table thead")).to_contain_text("Feasible")
                cells = dict(zip(page.locator("#trials-table tbody tr").evaluate_all(
                    "rows => rows.map(r => r.dataset.trialId)"),
                    page.locator("#trials-table tbody td[data-col='feasible']").all_inner_texts()))
                assert cells[by_x[0.3]] == "yes" and cells[by_x[0.6]] == "no (violation 2)"
                assert cells[by_x[0.95]] == "no (metric missing)"
                page.fill("#trial-filter", "feasible=no")
                expect(page.locator("#trials-table tbody tr")).to_have_count(3)
                page.fill("#trial-filter", "violation>3")
                expect(page.locator("#trials-table tbody tr")).to_have_count(2)   # 0.8 (6) and 0.95 (missing)

                page.goto(exp.webui_url.split("#")[0].split("?")[0].rstrip("/") + "/pareto")
                page.wait_for_selector("#chart[data-infeasible-size]")
                chart = page.locator("#chart")
                assert chart.get_attribute("data-front-size") == "3"
                assert chart.get_attribute("data-infeasible-size") == "3"
                expect(page.locator("#infeasible-count")).to_have_text("3 infeasible")
                assert not errors, errors
            finally:
                browser.close()
    finally:
        exp.stop()


def test_example_config_is_valid(monkeypatch):
    example = Path(__file__).resolve().parents[1] / "examples" / "constraints"
    monkeypatch.chdir(example)
    config = ExperimentConfig.load(example / "config.yml").canonical_copy()
    assert [c["metric"] for c in config.constraints] == ["latency_ms", "size_kb"]
    assert config.tuner.name == "TPE" and set(config.search_space) == {"n_estimators", "max_depth", "max_features"}
