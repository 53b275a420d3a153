"""Multi-objective experiments through the real manager: the ``objectives`` config field, what
the tuner and assessor receive, results that do not fit, the Pareto front over REST, the
Python API and ``nnictl``, export, and resume."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import wait_for
from nni.algorithms.hpo._pareto import dominates
from nni.algorithms.hpo.motpe_tuner import MOTPETuner
from nni.experiment import Experiment, rest
from nni.experiment.config import ConfigError, ExperimentConfig
from test_nnictl import nnictl

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "k": {"_type": "choice", "_value": ["a", "b"]}}
OBJECTIVES = [{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}]

#: acc and cost both grow with x (a trade-off); x < 0.15 reports a result without 'cost',
#: 0.15 <= x < 0.25 a non-finite cost: both must be stored and marked, never given to the tuner
TRIAL = """
    import math, nni
    p = nni.get_next_parameter()
    x = p["x"]
    for step in range(2):
        # 'default' as NNI's trial API requires; the assessor is given 'acc' (the first objective)
        nni.report_intermediate_result({"default": -1, "acc": x * (step + 1) / 2, "cost": step})
    acc = x + (0.1 if p["k"] == "b" else 0.0)
    cost = x * x + (0.05 if p["k"] == "b" else 0.0)
    if x < 0.15:
        nni.report_final_result({"default": acc, "acc": acc})
    elif x < 0.25:
        nni.report_final_result({"default": acc, "acc": acc, "cost": float("inf")})
    else:
        nni.report_final_result({"default": acc, "acc": acc, "cost": cost})
"""


class RecordingMOTPE(MOTPETuner):
    """MOTPE that keeps every value the manager gives it (the tuner runs in this process)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.received: list = []
        self.imported: list = []

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.received.append(value)
        super().receive_trial_result(parameter_id, parameters, value, **kwargs)

    def import_data(self, data):
        self.imported.extend(data)
        super().import_data(data)


def _decode(value):
    while isinstance(value, str):
        value = json.loads(value)
    return value


def brute_force_front(rows: list[dict]) -> set[str]:
    """Trial ids whose result fits and is not dominated by another fitting result."""
    pts = {}
    for r in rows:
        v = _decode(r["value"]) if isinstance(r, dict) else r.value
        if isinstance(v, dict) and isinstance(v.get("cost"), float) and v["cost"] != float("inf") and "acc" in v:
            pts[r["trialJobId"] if isinstance(r, dict) else r.trialJobId] = (v["acc"], v["cost"])
    modes = ["maximize", "minimize"]
    return {t for t, p in pts.items() if not any(dominates(q, p, modes) for u, q in pts.items() if u != t)}


# ---- config -----------------------------------------------------------------------------------
def test_objectives_field_v2_python_and_refusals(tmp_path):
    base = {"trialCommand": "python t.py", "trialConcurrency": 1, "searchSpace": SPACE,
            "trainingService": {"platform": "local"}, "trialCodeDirectory": str(tmp_path)}
    config = ExperimentConfig.from_dict({**base, "objectives": [{"metric": "acc", "mode": "Maximize"},
                                                                {"metric": "latency_ms"}],
                                         "tuner": {"name": "NSGA2"}})
    canonical = config.canonical_copy()
    assert canonical.objectives == [{"metric": "acc", "mode": "maximize"}, {"metric": "latency_ms", "mode": "minimize"}]
    assert canonical.json()["objectives"] == canonical.objectives          # camelCase key, round trip
    assert ExperimentConfig.from_dict(canonical.json()).canonical_copy() == canonical

    py = ExperimentConfig("local")
    py.trial_command, py.trial_concurrency, py.search_space = "python t.py", 1, SPACE
    py.trial_code_directory = str(tmp_path)
    py.objectives = [{"metric": "acc", "mode": "maximize"}]
    py.tuner.name = "MOTPE"
    assert py.canonical_copy().objectives == [{"metric": "acc", "mode": "maximize"}]

    refusals = [
        ({"objectives": [{"metric": "a"}, {"metric": "b", "mode": "fast"}], "tuner": {"name": "MOTPE"}},
         r"^objectives\[1\]\.mode: |^objectives\[1\]\.mode must"),
        ({"objectives": [{"mode": "minimize"}], "tuner": {"name": "MOTPE"}}, r"^objectives\[0\]\.metric"),
        ({"objectives": "acc", "tuner": {"name": "MOTPE"}}, r"^objectives must be a list"),
        ({"objectives": [{"metric": "a", "goal": "min"}], "tuner": {"name": "MOTPE"}}, r"^objectives\[0\]: unknown"),
    ]
    for extra, pattern in refusals:
        with pytest.raises(ConfigError, match=pattern):
            ExperimentConfig.from_dict({**base, **extra}).validate()
    with pytest.raises(ConfigError, match=r"^tuner\.name: 'TPE' .*MOTPE, NSGA2, Random"):
        ExperimentConfig.from_dict({**base, "objectives": OBJECTIVES, "tuner": {"name": "TPE"}}).validate()
    with pytest.raises(ConfigError, match=r"^advisor: .*MOTPE, NSGA2, Random"):
        ExperimentConfig.from_dict({**base, "objectives": OBJECTIVES, "advisor": {"name": "Hyperband"}}).validate()
    # without objectives nothing changes: TPE is fine
    ExperimentConfig.from_dict({**base, "tuner": {"name": "TPE"}}).validate()


def test_a_single_objective_tuner_object_is_refused_at_start(make_experiment):
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    exp = make_experiment(TRIAL, SPACE, tuner=TpeTuner(), concurrency=1, max_trials=2, objectives=OBJECTIVES)
    with pytest.raises(Exception, match="MOTPE, NSGA2, Random"):
        exp.start(port=0)


# ---- a whole experiment ------------------------------------------------------------------------
def test_multi_objective_experiment_front_rest_python_cli_export(make_experiment, tmp_path, write):
    tuner = RecordingMOTPE(seed=2, n_startup_jobs=4)
    write("code/rec_assessor.py", """
        import json
        from nni.assessor import Assessor, AssessResult
        class Rec(Assessor):
            def __init__(self, path):
                self.path = path
            def assess_trial(self, trial_job_id, trial_history):
                with open(self.path, "a") as f:
                    f.write(json.dumps(trial_history) + "\\n")
                return AssessResult.Good
    """)
    exp = make_experiment(TRIAL, SPACE, tuner=tuner, concurrency=3, max_trials=24, objectives=OBJECTIVES)
    seen_path = tmp_path / "assessor.jsonl"
    exp.config.assessor.class_name = "rec_assessor.Rec"
    exp.config.assessor.code_directory = str(tmp_path / "code")
    exp.config.assessor.class_args = {"path": str(seen_path)}
    exp.start(port=0)
    try:
        assert exp.wait(timeout=180) == "DONE"
        results = exp.export_data()
        assert len(results) == 24                                  # every result is stored and exported
        bad = [r for r in results if r.parameter["x"] < 0.25]
        good = [r for r in results if r.parameter["x"] >= 0.25]
        # the tuner got the objectives objectives' dicts of the fitting results, never the others
        assert objectives_seen(tuner) == sorted(r.value["cost"] for r in good)
        assert all(set(v) >= {"acc", "cost", "default"} for v in tuner.received)
        assert tuner.objectives[0].metric == "acc" and tuner.modes == ["maximize", "minimize"]
        # the trial's record says which key was wrong
        jobs = {j.trialJobId: j for j in exp.list_trial_jobs()}
        for r in bad:
            key = "'cost'"
            assert key in (jobs[r.trialJobId].message or ""), jobs[r.trialJobId]
            assert jobs[r.trialJobId].status == "SUCCEEDED"
        for r in good:
            assert not jobs[r.trialJobId].message

        # the front: Python API, REST, CLI agree with a brute-force front
        front = exp.pareto_front()
        expected = brute_force_front([{"trialJobId": r.trialJobId, "value": r.value} for r in results])
        assert {r.trialJobId for r in front} == expected and expected
        assert all(type(r).__name__ == "TrialResult" and r.parameter and "cost" in r.value for r in front)
        rows = rest.get(exp.port, "/pareto-front")
        assert {r["trialJobId"] for r in rows} == expected
        assert all(set(r["objectives"]) == {"acc", "cost"} for r in rows)
        history = rest.get(exp.port, "/pareto-front/hypervolume")
        hv = [p["hypervolume"] for p in history["points"]]
        assert history["points"][-1]["results"] == len(good) and hv[-1] > 0
        assert all(a <= b + 1e-12 for a, b in zip(hv, hv[1:]))      # a front only grows
        assert history["reference"][0] < min(r.value["acc"] for r in good)     # acc is maximised
        out = nnictl("trial", "ls", exp.id, "--pareto")
        assert out.returncode == 0, out.stderr
        listed = {line.split()[0] for line in out.stdout.splitlines()[1:] if line.strip() and not line.startswith("-")}
        assert expected <= listed and not (listed - expected - {"TRIAL"})

        # export: one column per objective
        csv_path = tmp_path / "out.csv"
        out = nnictl("experiment", "export", exp.id, "--filename", str(csv_path), "--type", "csv")
        assert out.returncode == 0, out.stderr
        table = list(csv.DictReader(csv_path.open()))
        assert {"acc", "cost"} <= set(table[0]) and len(table) == 24
        costs = {row["trialJobId"]: row["cost"] for row in table}
        assert all(costs[r.trialJobId] == repr(r.value["cost"]) or float(costs[r.trialJobId]) == r.value["cost"]
                   for r in good)
    finally:
        exp.stop()
    # the assessor saw the first objective (numbers), not the dicts
    histories = [json.loads(line) for line in seen_path.read_text().splitlines()]
    assert histories and all(isinstance(v, (int, float)) and v >= 0 for h in histories for v in h)


def objectives_seen(tuner) -> list[float]:
    return sorted(v["cost"] for v in tuner.received)


def test_experiment_without_objectives_has_no_front(make_experiment):
    exp = make_experiment("import nni; nni.get_next_parameter(); nni.report_final_result(1.0)\n",
                          SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    try:
        assert exp.wait(timeout=60) == "DONE"
        with pytest.raises(rest.RestError, match="409.*objectives"):
            exp.pareto_front()
        out = nnictl("trial", "ls", exp.id, "--pareto")
        assert out.returncode != 0 and "objectives" in out.stderr
    finally:
        exp.stop()


def test_resume_keeps_the_front_and_continues(make_experiment):
    exp = make_experiment(TRIAL, SPACE, concurrency=2, max_trials=10, objectives=OBJECTIVES)
    exp.config.tuner.name = "NSGA2"
    exp.config.tuner.class_args = {"seed": 1, "population_size": 4}
    exp.start(port=0)
    try:
        wait_for(lambda: exp.pareto_front() and len(exp.export_data()) >= 4, timeout=120, what="4 results")
    finally:
        exp.stop()
    stored = Experiment.view(exp.id, port=0, non_blocking=True)
    try:
        before = sorted(r.trialJobId for r in stored.pareto_front())
    finally:
        stored.stop()
    assert before

    resumed = Experiment.resume(exp.id, port=0, wait_completion=False)
    try:
        assert sorted(r.trialJobId for r in resumed.pareto_front()) == before
        assert resumed.wait(timeout=180) == "DONE"
        after = resumed.export_data()
        front = {r.trialJobId for r in resumed.pareto_front()}
        assert front == brute_force_front([{"trialJobId": r.trialJobId, "value": r.value} for r in after])
        assert rest.get(resumed.port, "/progress")["optimizeMode"] == "maximize"   # the first objective's
    finally:
        resumed.stop()
    # nnictl reads the same front from the stopped experiment's store
    out = nnictl("trial", "ls", exp.id, "--pareto")
    assert out.returncode == 0, out.stderr
    assert front <= set(out.stdout.split())


# ---- the Pareto page in a real browser ---------------------------------------------------------
@pytest.mark.parametrize("n_objectives", [2, 3])
def test_pareto_page_in_chromium(make_experiment, n_objectives):
    import os
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright
    objectives = OBJECTIVES + ([{"metric": "size", "mode": "minimize"}] if n_objectives == 3 else [])
    trial = TRIAL.replace('"cost": cost})', '"cost": cost, "size": abs(x - 0.5)})')
    exp = make_experiment(trial, SPACE, concurrency=3, max_trials=12, objectives=objectives)
    exp.config.tuner.name = "NSGA2"
    exp.config.tuner.class_args = {"seed": 0, "population_size": 4}
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        front = exp.pareto_front()
        fitting = [r for r in exp.export_data() if r.parameter["x"] >= 0.25]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(exp.webui_url)   # the printed URL: its secret becomes the page's cookie
                page.wait_for_selector("#nav-pareto:not([hidden])", timeout=60_000)   # the main UI links it
                page.wait_for_selector("#pareto-size", timeout=60_000)              # and shows the front's size
                assert page.inner_text("#pareto-size") == \
                    f"Pareto front: {len(front)} result{'' if len(front) == 1 else 's'}"
                page.click("#nav-pareto")
                page.wait_for_url(f"http://127.0.0.1:{exp.port}/#/pareto", timeout=60_000)   # a view of the UI
                page.wait_for_selector("#chart[data-front-size]", timeout=60_000)
                assert page.inner_text("#front-size") == str(len(front))
                chart = page.locator("#chart")
                assert chart.get_attribute("data-front-size") == str(len(front))
                assert chart.get_attribute("data-dominated-size") == str(len(fitting) - len(front))
                # plotly drew the points: a scatter (2 objectives) or a scatter matrix (3)
                assert page.locator("#chart .main-svg").count() >= 1
                assert page.locator("#front tbody tr").count() == len(front)
                page.wait_for_selector("#hv[data-points]", timeout=30_000)
                assert int(page.locator("#hv").get_attribute("data-points")) >= 1
                # best per objective, and the table sorts by an objective
                assert page.locator("#best-list li").count() == n_objectives
                page.click("#front th.sortable[data-key='1']")
                cells = [float(t) for t in page.locator("#front tbody tr td:nth-child(3)").all_inner_texts()]
                assert cells == sorted(cells)
                assert not errors, errors
            finally:
                browser.close()
    finally:
        exp.stop()


def test_csv_export_then_import_feeds_the_objectives(make_experiment, tmp_path):
    source = make_experiment(TRIAL, SPACE, concurrency=2, max_trials=6, objectives=OBJECTIVES)
    source.start(port=0)
    try:
        assert source.wait(timeout=120) == "DONE"
        csv_path = tmp_path / "results.csv"
        out = nnictl("experiment", "export", source.id, "--filename", str(csv_path), "--type", "csv")
        assert out.returncode == 0, out.stderr
        fitting = sum(1 for r in source.export_data() if r.parameter["x"] >= 0.25)
    finally:
        source.stop()

    tuner = RecordingMOTPE(seed=0)
    target = make_experiment(TRIAL, SPACE, tuner=tuner, concurrency=1, max_trials=1, objectives=OBJECTIVES)
    target.start(port=0)
    try:
        assert target.wait(timeout=60) == "DONE"
        out = nnictl("experiment", "import", target.id, "--filename", str(csv_path))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: len(tuner.imported) == 6, timeout=30, what="6 imported rows")
        # the objective columns became the value, not parameters
        assert all(set(row["parameter"]) == {"x", "k"} for row in tuner.imported)
        assert all({"acc", "default"} <= set(row["value"]) for row in tuner.imported)
        # rows with every objective were learned from (1 result of its own + the fitting imports)
        own = 1 if target.export_data()[0].parameter["x"] >= 0.25 else 0
        assert len(tuner._completed()[1]) == own + fitting
    finally:
        target.stop()


def test_multi_phase_trials_report_objectives_per_parameter_set(make_experiment):
    trial = """
        import nni
        for _ in range(2):
            p = nni.get_next_parameter()
            if p is None:
                break
            nni.report_final_result({"default": p["x"], "acc": p["x"], "cost": p["x"] ** 2})
    """
    tuner = RecordingMOTPE(seed=3, n_startup_jobs=2)
    # maxTrialNumber counts trial jobs (as NNI): 4 jobs of 2 parameter sets each
    exp = make_experiment(trial, SPACE, tuner=tuner, concurrency=2, max_trials=4, objectives=OBJECTIVES,
                          multi_phase=True)
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        results = exp.export_data()
        assert len(results) == 8 and {r.parameterIndex for r in results} == {0, 1}
        assert sorted(v["cost"] for v in tuner.received) == sorted(r.value["cost"] for r in results)
        front = exp.pareto_front()
        # acc up and cost up together: every result is a trade-off, so all are on the front
        assert len(front) == len({(r.value["acc"], r.value["cost"]) for r in results})
    finally:
        exp.stop()
