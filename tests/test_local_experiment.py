"""End-to-end experiments on the local machine: real trial processes, a real manager, a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import pid_alive, wait_for
from nni.experiment import Experiment
from nni.errors import NoMoreTrialError
from nni.tuner import Tuner

FUNCTION_TRIAL = """
    import json, os, random, time
    import nni
    p = nni.get_next_parameter()
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "received.json"), "w") as f:
        json.dump(p, f)
    time.sleep(random.random() * 0.05)
    nni.report_final_result({"default": p["x"] * 1000 + p["y"], "x_seen": p["x"]})
"""

SPACE = {"x": {"_type": "randint", "_value": [0, 100]}, "y": {"_type": "uniform", "_value": [0, 1]}}


def test_every_exported_pair_is_the_trials_own_at_concurrency_4(make_experiment):
    exp = make_experiment(FUNCTION_TRIAL, SPACE, concurrency=4, max_trials=40)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id

    conn = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    stored = {row[0]: json.loads(row[1]) for row in conn.execute("SELECT trial_id, parameters FROM parameters")}
    finals = list(conn.execute("SELECT trial_id, parameter_id, value FROM metrics WHERE type='FINAL'"))
    statuses = [row[0] for row in conn.execute("SELECT status FROM trials")]
    assert statuses.count("SUCCEEDED") == 40
    assert len(stored) == 40 and len(finals) == 40
    for trial_id, params in stored.items():
        received = json.loads((exp_dir / "trials" / trial_id / "received.json").read_text())
        assert received == params, f"trial {trial_id} stored parameters it did not receive"
    param_of = {row[0]: (row[1], json.loads(row[2])) for row in
                conn.execute("SELECT parameter_id, trial_id, parameters FROM parameters")}
    for trial_id, parameter_id, value in finals:
        owner, params = param_of[parameter_id]
        assert owner == trial_id
        assert json.loads(value)["default"] == pytest.approx(params["x"] * 1000 + params["y"])


def test_export_and_trial_listing_agree_with_what_trials_received(make_experiment):
    exp = make_experiment(FUNCTION_TRIAL, SPACE, concurrency=4, max_trials=12)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    rows = exp.export_data()
    assert len(rows) == 12
    for row in rows:
        assert row.value["default"] == pytest.approx(row.parameter["x"] * 1000 + row.parameter["y"])
        assert row.value["x_seen"] == row.parameter["x"]
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 12 and all(j.status == "SUCCEEDED" for j in jobs)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    for job in jobs:
        received = json.loads((exp_dir / "trials" / job.trialJobId / "received.json").read_text())
        assert job.hyperParameters[0].parameters == received
        assert job.finalMetricData[0].data["x_seen"] == received["x"]
    metrics = exp.get_job_metrics()
    assert sorted(metrics) == sorted(j.trialJobId for j in jobs)
    stats = {s["trialJobStatus"]: s["trialJobNumber"] for s in exp.get_job_statistics()}
    assert stats == {"SUCCEEDED": 12}


def test_concurrency_is_never_exceeded(make_experiment, tmp_path):
    log = tmp_path / "spans"
    log.mkdir()
    trial = f"""
        import os, time, nni
        nni.get_next_parameter()
        start = time.time()
        time.sleep(0.15)
        with open(os.path.join({str(log)!r}, os.environ["NNI_TRIAL_JOB_ID"]), "w") as f:
            f.write(f"{{start}} {{time.time()}}")
        nni.report_final_result(1)
    """
    exp = make_experiment(trial, SPACE, concurrency=3, max_trials=12)
    assert exp.run(port=0)
    spans = [tuple(map(float, p.read_text().split())) for p in log.iterdir()]
    assert len(spans) == 12
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 3  # reached, and never more


def test_max_trial_duration_and_failures_are_recorded_with_reason(make_experiment):
    trial = """
        import sys, time, nni
        p = nni.get_next_parameter()
        if p["mode"] == "crash":
            print("something went badly wrong", file=sys.stderr)
            sys.exit(3)
        if p["mode"] == "hang":
            time.sleep(60)
        nni.report_final_result(1.0)
    """
    space = {"mode": {"_type": "choice", "_value": ["crash", "hang", "ok"]}}
    exp = make_experiment(trial, space, concurrency=3, max_trials=3, max_trial_duration="2s")
    exp.config.tuner.name = "GridSearch"
    exp.config.tuner.class_args = {}
    started = time.monotonic()
    assert exp.run(port=0)
    assert time.monotonic() - started < 50   # the hanging trial sleeps 60 s: it was ended
    jobs = {j.hyperParameters[0].parameters["mode"]: j for j in exp_jobs_after_run(exp)}
    assert jobs["ok"].status == "SUCCEEDED"
    assert jobs["crash"].status == "FAILED"
    assert jobs["crash"].exitCode == 3
    assert "something went badly wrong" in jobs["crash"].message
    assert jobs["hang"].status == "FAILED"
    assert "maxTrialDuration" in jobs["hang"].message


def exp_jobs_after_run(exp: Experiment):
    """Trials of a stopped experiment, read from its SQLite file."""
    from nni.manager.read_model import trial_job_json
    from nni.manager.store import Store
    from nni.experiment.data import TrialJob
    store = Store(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite", readonly=True)
    try:
        return [TrialJob(**trial_job_json(t, store.parameters(t["trial_id"]), store.metrics(t["trial_id"], "FINAL")))
                for t in store.trials()]
    finally:
        store.close()


def test_max_experiment_duration_cancels_running_trials(make_experiment):
    trial = """
        import time, nni
        nni.get_next_parameter()
        time.sleep(60)
    """
    exp = make_experiment(trial, SPACE, concurrency=2, max_trials=10, max_experiment_duration="2s")
    started = time.monotonic()
    assert exp.run(port=0)
    assert time.monotonic() - started < 50   # the trials sleep 60 s: the limit ended them
    jobs = exp_jobs_after_run(exp)
    assert len(jobs) == 2
    assert all(j.status == "USER_CANCELED" and "maxExperimentDuration" in j.message for j in jobs)


def test_assessor_early_stops_bad_trials_and_kills_them(make_experiment, write, tmp_path):
    write("algo/stopper.py", """
        from nni.assessor import Assessor, AssessResult
        class ThresholdAssessor(Assessor):
            def __init__(self, threshold):
                self.threshold = threshold
            def assess_trial(self, trial_job_id, trial_history):
                return AssessResult.Bad if trial_history[-1] < self.threshold else AssessResult.Good
    """)
    trial = """
        import os, time, nni
        p = nni.get_next_parameter()
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pid"), "w") as f:
            f.write(str(os.getpid()))
        for step in range(50):
            nni.report_intermediate_result(p["x"])
            time.sleep(0.05)
        nni.report_final_result(p["x"])
    """
    space = {"x": {"_type": "choice", "_value": [0.1, 0.9]}}
    exp = make_experiment(trial, space, concurrency=2, max_trials=2)
    exp.config.tuner.name = "GridSearch"
    exp.config.tuner.class_args = {}
    exp.config.assessor.class_name = "stopper.ThresholdAssessor"
    exp.config.assessor.code_directory = str(tmp_path / "algo")
    exp.config.assessor.class_args = {"threshold": 0.5}
    assert exp.run(port=0)
    jobs = {j.hyperParameters[0].parameters["x"]: j for j in exp_jobs_after_run(exp)}
    assert jobs[0.1].status == "EARLY_STOPPED"
    assert jobs[0.9].status == "SUCCEEDED"
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    stopped_pid = int((exp_dir / "trials" / jobs[0.1].trialJobId / "pid").read_text())
    assert not pid_alive(stopped_pid)


def test_cancel_and_stop_end_the_whole_process_tree(make_experiment):
    trial = """
        import os, subprocess, sys, time, nni
        nni.get_next_parameter()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pids"), "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        time.sleep(120)
    """
    exp = make_experiment(trial, SPACE, concurrency=2, max_trials=2)
    exp.start(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id

    def pids_of(trial_id):
        path = exp_dir / "trials" / trial_id / "pids"
        deadline = time.monotonic() + 90
        while not path.exists() or len(path.read_text().split()) < 2:
            assert time.monotonic() < deadline, "trial did not start"
            time.sleep(0.05)
        return [int(p) for p in path.read_text().split()]

    def running_jobs():
        deadline = time.monotonic() + 90
        while True:
            jobs = exp.list_trial_jobs("RUNNING")
            if len(jobs) == 2 or time.monotonic() > deadline:
                return jobs
            time.sleep(0.05)

    first, second = running_jobs()
    first_pids, second_pids = pids_of(first.trialJobId), pids_of(second.trialJobId)
    exp.kill_trial_job(first.trialJobId)
    assert exp.get_trial_job(first.trialJobId).status == "USER_CANCELED"
    assert not any(pid_alive(p) for p in first_pids)

    started = time.monotonic()
    exp.stop()
    assert time.monotonic() - started < 60   # the trial sleeps 120 s: stop did not wait for it
    assert not any(pid_alive(p) for p in second_pids)
    statuses = {j.trialJobId: j.status for j in exp_jobs_after_run(exp)}
    assert statuses == {first.trialJobId: "USER_CANCELED", second.trialJobId: "USER_CANCELED"}


def test_update_trial_concurrency_and_max_trial_number_take_effect(make_experiment, tmp_path):
    go = tmp_path / "go"
    # Trials hold until the test has seen three at once, so the check does not race their speed.
    trial = f"""
        import os, time, nni
        nni.get_next_parameter()
        deadline = time.monotonic() + 120
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
        nni.report_final_result(1)
    """
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=3)
    exp.start(port=0)
    exp.update_trial_concurrency(3)
    exp.update_max_trial_number(6)
    wait_for(lambda: len(exp.list_trial_jobs("RUNNING")) == 3, what="three trials at once after the update")
    go.write_text("")
    assert exp.wait(timeout=240) == "DONE"
    assert len(exp.list_trial_jobs()) == 6
    profile = exp.get_experiment_profile()
    assert profile["params"]["trialConcurrency"] == 3 and profile["params"]["maxTrialNumber"] == 6


class ExhaustedAfterTwo(Tuner):
    def update_search_space(self, search_space):
        self.left = 2

    def generate_parameters(self, parameter_id, **kwargs):
        from nni import NoMoreTrialError
        if self.left == 0:
            raise NoMoreTrialError()
        self.left -= 1
        return {"x": self.left}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass


def test_tuner_running_out_of_parameters_ends_the_experiment(make_experiment):
    trial = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"
    exp = make_experiment(trial, SPACE, tuner=ExhaustedAfterTwo(), concurrency=2, max_trials=10)
    assert exp.run(port=0) is True
    assert len(exp_jobs_after_run(exp)) == 2


class RungTuner(Tuner):
    """Gives two parameter sets per rung and waits until both have results, like Hyperband."""

    def __init__(self) -> None:
        self.rung = 0
        self.given = 0
        self.results: list[float] = []

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        if self.rung == 3 or self.given == 2 * (self.rung + 1):
            raise NoMoreTrialError("waiting for the rung's results")
        self.given += 1
        return {"x": self.rung, "y": 0.5}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.results.append(value)
        if len(self.results) == 2 * (self.rung + 1):
            self.rung += 1


def test_a_tuner_waiting_for_results_is_asked_again_and_not_ended(make_experiment):
    trial = "import nni, time\np = nni.get_next_parameter()\ntime.sleep(0.2)\nnni.report_final_result(p['x'])\n"
    exp = make_experiment(trial, SPACE, tuner=RungTuner(), concurrency=4, max_trials=20)
    assert exp.run(port=0) is True
    jobs = exp_jobs_after_run(exp)
    assert sorted(j.hyperParameters[0].parameters["x"] for j in jobs) == [0, 0, 1, 1, 2, 2]
    assert all(j.status == "SUCCEEDED" for j in jobs)


class BrokenTuner(ExhaustedAfterTwo):
    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        raise ValueError("tuner bug on purpose")


def test_a_tuner_that_raises_puts_the_experiment_in_error_with_the_message(make_experiment, capsys):
    trial = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"
    exp = make_experiment(trial, SPACE, tuner=BrokenTuner(), concurrency=1, max_trials=10)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "ERROR"
    from nni.experiment import rest
    errors = rest.get(exp.port, "/check-status")["errors"]
    assert "tuner bug on purpose" in errors[0] and "receive_trial_result" in errors[0]
    exp.stop()


def test_trial_reports_intermediate_results_under_its_parameter_id(make_experiment):
    trial = """
        import nni
        p = nni.get_next_parameter()
        for i in range(3):
            nni.report_intermediate_result({"default": i, "loss": -i})
        nni.report_final_result(p["x"])
        assert nni.get_current_parameter("x") == p["x"]
        assert nni.get_trial_id() and nni.get_experiment_id() != "STANDALONE"
    """
    exp = make_experiment(trial, SPACE, concurrency=2, max_trials=3)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    for job in exp.list_trial_jobs():
        assert job.status == "SUCCEEDED", job.message
        metrics = exp.get_job_metrics(job.trialJobId)[job.trialJobId]
        periodical = [m for m in metrics if m.type == "PERIODICAL"]
        assert [m.data for m in periodical] == [{"default": i, "loss": -i} for i in range(3)]
        assert {m.parameterId for m in metrics} == {job.hyperParameters[0].parameter_id}


def test_connect_from_another_process(make_experiment):
    trial = "import nni, time\nnni.get_next_parameter()\ntime.sleep(30)\n"
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=2)
    exp.start(port=0)
    code = (f"from nni.experiment import Experiment\n"
            f"e = Experiment.connect({exp.port})\n"
            f"print(e.id, e.get_status(), e.config.trial_concurrency)\n"
            f"e.stop()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [exp.id, "RUNNING", "1"]
    # the manager thread here ended because the other process stopped the experiment
    exp._thread.join(timeout=60)
    assert not exp._thread.is_alive()


ALL_TYPES_SPACE = {
    "choice": {"_type": "choice", "_value": ["a", 2, 3.5]},
    "randint": {"_type": "randint", "_value": [3, 7]},
    "uniform": {"_type": "uniform", "_value": [-1, 1]},
    "quniform": {"_type": "quniform", "_value": [0, 10, 2.5]},
    "loguniform": {"_type": "loguniform", "_value": [0.001, 1]},
    "qloguniform": {"_type": "qloguniform", "_value": [1, 100, 5]},
    "normal": {"_type": "normal", "_value": [0, 1]},
    "qnormal": {"_type": "qnormal", "_value": [0, 10, 3]},
    "lognormal": {"_type": "lognormal", "_value": [0, 1]},
    "qlognormal": {"_type": "qlognormal", "_value": [1, 1, 2]},
    "nested": {"_type": "choice", "_value": [
        {"_name": "small", "k": {"_type": "randint", "_value": [0, 2]}},
        {"_name": "big", "w": {"_type": "uniform", "_value": [10, 20]}},
    ]},
}


def assert_in_space(p: dict) -> None:
    def on_grid(x, q):
        return abs(x / q - round(x / q)) < 1e-9

    assert p["choice"] in ("a", 2, 3.5)
    assert isinstance(p["randint"], int) and 3 <= p["randint"] < 7
    assert -1 <= p["uniform"] <= 1
    assert 0 <= p["quniform"] <= 10 and on_grid(p["quniform"], 2.5)
    assert 0.001 <= p["loguniform"] <= 1
    assert 1 <= p["qloguniform"] <= 100 and (on_grid(p["qloguniform"], 5) or p["qloguniform"] in (1, 100))
    assert isinstance(p["normal"], float)
    assert on_grid(p["qnormal"], 3)
    assert p["lognormal"] > 0
    assert p["qlognormal"] >= 0 and on_grid(p["qlognormal"], 2)
    nested = p["nested"]
    if nested["_name"] == "small":
        assert set(nested) == {"_name", "k"} and nested["k"] in (0, 1)
    else:
        assert set(nested) == {"_name", "w"} and 10 <= nested["w"] <= 20


@pytest.mark.parametrize("tuner", ["Random", "TPE", "Anneal"])
def test_every_search_space_type_reaches_trials_in_bounds(make_experiment, tuner):
    trial = """
        import json, os, nni
        p = nni.get_next_parameter()
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "received.json"), "w") as f:
            json.dump(p, f)
        nni.report_final_result(p["uniform"] + p["randint"])
    """
    exp = make_experiment(trial, ALL_TYPES_SPACE, concurrency=4, max_trials=24)
    exp.config.tuner.name = tuner
    exp.config.tuner.class_args = {"seed": 7}
    assert exp.run(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    received = [json.loads(p.read_text()) for p in exp_dir.glob("trials/*/received.json")]
    assert len(received) == 24
    for params in received:
        assert_in_space(params)
