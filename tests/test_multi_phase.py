"""Multi-phase experiments: several parameter sets and final results per trial job."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from conftest import wait_for
from nni.experiment import rest
from nni.multi_phase import MultiPhaseTuner
from nni.tuner import Tuner

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}

PHASED_TRIAL = """
    import json, os, nni
    seen = []
    for phase in range({phases}):
        p = nni.get_next_parameter()
        if p is None:
            break
        seen.append({{"phase": phase, "params": p, "current": nni.get_current_parameter(),
                      "trial": nni.get_trial_id()}})
        nni.report_intermediate_result(p["pid"] * 10)
        nni.report_final_result(p["pid"] * 100 + 1)
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


class RecordingTuner(MultiPhaseTuner):
    """Hands each trial job a chain of parameter sets and records what it is told."""

    def __init__(self, budget: int | None = None):
        self.lock = threading.Lock()
        self.generated: dict[int, str] = {}          # parameter id -> trial job id
        self.received: list[tuple[int, dict, object, str]] = []
        self.ended: list[tuple[str, bool]] = []
        self.per_job: dict[str, int] = {}
        self.budget = budget

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, trial_job_id=None):
        from nni import NoMoreTrialError
        with self.lock:
            if self.budget is not None and len(self.generated) >= self.budget:
                raise NoMoreTrialError()
            self.generated[parameter_id] = trial_job_id
            step = self.per_job[trial_job_id] = self.per_job.get(trial_job_id, -1) + 1
        return {"pid": parameter_id, "job": trial_job_id, "step": step}

    def receive_trial_result(self, parameter_id, parameters, value, trial_job_id=None):
        with self.lock:
            self.received.append((parameter_id, parameters, value, trial_job_id))

    def trial_end(self, trial_job_id, success):
        with self.lock:
            self.ended.append((trial_job_id, success))


def run_phased(make_experiment, *, phases: int, max_trials: int):
    """A multi-phase experiment of PHASED_TRIAL at concurrency 2, run to DONE (not stopped yet):
    its recording tuner, the experiment and its trial jobs."""
    tuner = RecordingTuner()
    exp = make_experiment(PHASED_TRIAL.format(phases=phases), SPACE, tuner=tuner, concurrency=2,
                          max_trials=max_trials, multi_phase=True)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    return tuner, exp, exp.list_trial_jobs()


def test_three_phases_at_concurrency_two_reach_the_right_parameter_ids(make_experiment):
    tuner, exp, jobs = run_phased(make_experiment, phases=3, max_trials=4)
    rows = exp.export_data()
    exp.stop()

    # maxTrialNumber counts trial jobs, as in NNI: 4 jobs of 3 phases, 12 sets in all.
    assert all(j.status == "SUCCEEDED" for j in jobs) and len(jobs) == 4
    assert len(tuner.generated) == 12
    # The tuner was told the job each parameter set went to, and each job got its own chain.
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    phases_per_job = {}
    for job in jobs:
        seen = json.loads((exp_dir / "trials" / job.trialJobId / "seen.json").read_text())
        n = phases_per_job[job.trialJobId] = len(seen)
        assert n == 3
        assert [s["params"]["job"] for s in seen] == [job.trialJobId] * n
        assert [s["params"]["step"] for s in seen] == list(range(n))
        assert all(s["current"] == s["params"] for s in seen)
        assert [h.parameter_index for h in job.hyperParameters] == list(range(n))
        assert [h.parameters for h in job.hyperParameters] == [s["params"] for s in seen]
    assert sum(phases_per_job.values()) == 12
    # Every final result reached the tuner under the parameter id that produced it, with its job.
    assert len(tuner.received) == 12
    for parameter_id, parameters, value, job_id in tuner.received:
        assert value == parameter_id * 100 + 1
        assert parameters["pid"] == parameter_id and job_id == tuner.generated[parameter_id]
    assert sorted(tuner.ended) == sorted((j.trialJobId, True) for j in jobs)
    # export: one row per parameter set, with its trial and phase
    assert len(rows) == 12
    for row in rows:
        assert row.value == row.parameter["pid"] * 100 + 1
        assert row.trialJobId == row.parameter["job"]
        assert row.parameterIndex == row.parameter["step"]
    phases = sorted((r.trialJobId, r.parameter["step"]) for r in rows)
    assert phases == sorted((job_id, s) for job_id, n in phases_per_job.items() for s in range(n))

def test_exhausted_tuner_gives_none_instead_of_hanging(make_experiment):
    tuner = RecordingTuner(budget=5)
    exp = make_experiment(PHASED_TRIAL.format(phases=100), SPACE, tuner=tuner, concurrency=2, max_trials=None,
                          multi_phase=True)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    jobs = exp.list_trial_jobs()
    rows = exp.export_data()
    exp.stop()
    assert len(rows) == 5
    assert all(j.status == "SUCCEEDED" for j in jobs)
    assert sum(len(j.hyperParameters) for j in jobs) == 5


def test_max_trial_number_counts_trial_jobs_as_in_nni(make_experiment):
    tuner, exp, jobs = run_phased(make_experiment, phases=4, max_trials=3)
    progress = rest.get(exp.port, "/progress?since=-1&timeout=0")
    exp.stop()
    # 3 jobs, each taking its 4 parameter sets (NNI runs every phase of each job)
    assert len(jobs) == 3 and all(len(j.hyperParameters) == 4 for j in jobs)
    assert len(tuner.generated) == 12 == len(tuner.received)
    assert progress["limitUnit"] == "trials" and progress["limitDone"] == 3


def test_a_trial_dying_mid_phase_keeps_its_finished_phases(make_experiment):
    trial = """
        import os, nni
        p = nni.get_next_parameter()
        nni.report_final_result(1.0)
        p = nni.get_next_parameter()
        nni.report_intermediate_result(0.5)
        os._exit(7)
    """
    tuner = RecordingTuner()
    exp = make_experiment(trial, SPACE, tuner=tuner, concurrency=1, max_trials=1, multi_phase=True)
    assert exp.run(port=0)
    db = sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")
    phases = db.execute("SELECT parameter_index, status FROM parameters ORDER BY parameter_id").fetchall()
    assert phases == [(0, "SUCCEEDED"), (1, "FAILED")]
    assert db.execute("SELECT status FROM trials").fetchall() == [("FAILED",)]
    finals = db.execute("SELECT parameter_id, value FROM metrics WHERE type = 'FINAL'").fetchall()
    assert finals == [(0, "1.0")]
    assert tuner.ended == [(db.execute("SELECT trial_id FROM trials").fetchone()[0], False)]


def test_single_phase_second_call_returns_the_same_parameters_with_a_warning(make_experiment):
    trial = """
        import os, sys, nni
        a = nni.get_next_parameter()
        b = nni.get_next_parameter()
        assert a == b, (a, b)
        nni.report_final_result(a["x"])
    """
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=1)
    assert exp.run(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    stderr = next(exp_dir.glob("trials/*/stderr")).read_text()
    assert "called again in a single-phase experiment" in stderr
    db = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    assert db.execute("SELECT status FROM trials").fetchall() == [("SUCCEEDED",)]
    assert db.execute("SELECT COUNT(*) FROM parameters").fetchone() == (1,)


def test_built_in_tuners_work_in_multi_phase_mode(make_experiment):
    trial = """
        import nni
        for phase in range(3):
            nni.report_final_result(nni.get_next_parameter()["x"])
    """
    exp = make_experiment(trial, SPACE, concurrency=2, max_trials=3, multi_phase=True)
    exp.config.tuner.name = "TPE"
    exp.config.tuner.class_args = {"optimize_mode": "maximize", "seed": 3}
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    rows = exp.export_data()
    exp.stop()
    assert len(rows) == 9
    assert all(0 <= r.value == r.parameter["x"] <= 1 for r in rows)


class SlowSecondPhaseTuner(Tuner):
    """A plain tuner in multi-phase mode (so ``trial_end`` comes once per parameter set the manager
    holds in memory) whose first set for phase 1 takes ``delay`` seconds, as a slow GP or SMAC does."""

    def __init__(self, delay: float):
        self.delay = delay
        self.lock = threading.Lock()
        self.generated: list[int] = []
        self.ended: list[int] = []

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, trial_job_id=None):
        with self.lock:
            self.generated.append(parameter_id)
            slow = len(self.generated) == 2
        if slow:
            time.sleep(self.delay)
        return {"pid": parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, trial_job_id=None):
        pass

    def trial_end(self, parameter_id, success, trial_job_id=None):
        with self.lock:
            self.ended.append(parameter_id)


def test_a_retry_after_the_socket_timed_out_gets_the_same_parameter_set(make_experiment):
    # The trial's channel waits 2 s for an answer; the tuner takes 5 s for phase 1, so the trial
    # sends that request again (and again) while the first is still being answered.
    trial = """
        import json, os, nni
        import nni.runtime.channel as channel
        connect = channel._connect
        channel._connect = lambda host, port, timeout: connect(host, port, 2.0)
        got = []
        for phase in range(2):
            got.append(nni.get_next_parameter()["pid"])
            nni.report_final_result(phase)
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "got.json"), "w") as f:
            json.dump(got, f)
    """
    tuner = SlowSecondPhaseTuner(delay=5.0)
    exp = make_experiment(trial, SPACE, tuner=tuner, concurrency=1, max_trials=1, multi_phase=True)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    [job] = exp.list_trial_jobs()
    exp.stop()
    assert job.status == "SUCCEEDED", job
    got = json.loads(Path(job.trialDir, "got.json").read_text())
    # one set per index: what the tuner made, what the manager held (one trial_end per set in
    # memory), what the store has and what the trial got
    assert len(got) == 2 and tuner.generated == got, (tuner.generated, got)
    assert sorted(tuner.ended) == got
    db = sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")
    stored = db.execute("SELECT parameter_id, parameter_index FROM parameters ORDER BY parameter_index").fetchall()
    assert stored == [(got[0], 0), (got[1], 1)]
    finals = db.execute("SELECT parameter_id FROM metrics WHERE type = 'FINAL' ORDER BY parameter_id").fetchall()
    assert finals == [(got[0],), (got[1],)]


def test_a_tuner_raising_for_a_later_phase_puts_the_experiment_in_error_and_the_trial_gets_none(make_experiment):
    class BrokenSecondPhase(RecordingTuner):
        def generate_parameters(self, parameter_id, trial_job_id=None):
            if self.generated:
                raise ZeroDivisionError("the tuner's own bug")
            return super().generate_parameters(parameter_id, trial_job_id)

    trial = """
        import json, os, nni
        got = [nni.get_next_parameter(), nni.get_next_parameter()]
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "got.json"), "w") as f:
            json.dump(got, f)
    """
    exp = make_experiment(trial, SPACE, tuner=BrokenSecondPhase(), concurrency=1, max_trials=1, multi_phase=True)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "ERROR"
    errors = rest.get(exp.port, "/check-status")["errors"]
    assert any("ZeroDivisionError" in e and "the tuner's own bug" in e for e in errors), errors
    job = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.status != "RUNNING"), None),
                   timeout=60, what="the trial's end")
    exp.stop()
    assert job.status == "SUCCEEDED", job
    got = json.loads(Path(job.trialDir, "got.json").read_text())
    assert got[0]["pid"] == 0 and got[1] is None
