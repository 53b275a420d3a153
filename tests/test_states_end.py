"""States end: every trial and experiment state has a way out when a step raises.

Each test makes one step fail for real (a code directory removed before a trial starts) or,
where the failure cannot be made on this machine (a kill that cannot reach its trial, as when
a Ray cluster or an SSH machine is gone), injects it at the seam the manager builds services
through: ``nni.training_service.local.LocalTrainingService`` is replaced by a subclass for the
test, and the rest of the run is real (subprocess trials, SQLite, HTTP on 127.0.0.1). Each
then checks that the experiment reaches a final state and that what the trials held (GPU,
slot, processes) is given back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import pid_alive, wait_for
from test_gpu import fake_gpus  # noqa: F401  (the fake nvidia-smi fixture)

import nni.training_service.local as local_service
from nni.manager.store import Store
from nni.status import ExperimentStatus, TrialStatus

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}
WAIT = 90.0   # generous: a loaded 2-core machine starts a trial in seconds, not milliseconds

# Runs until the file GO exists (then reports and ends); writes its pid and CUDA_VISIBLE_DEVICES.
GATED_TRIAL = """
    import json, os, time, nni
    nni.get_next_parameter()
    out = os.environ["NNI_OUTPUT_DIR"]
    with open(os.path.join(out, "trial.json"), "w") as f:
        json.dump({{"pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}}, f)
    deadline = time.time() + 600
    while not os.path.exists({go!r}) and time.time() < deadline:
        time.sleep(0.05)
    nni.report_final_result(1)
"""


def stored(exp) -> tuple[str, list[dict]]:
    """The experiment's status and trials as its SQLite file holds them (read after a stop too)."""
    store = Store(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite", readonly=True)
    try:
        return store.get_meta("status"), store.trials()
    finally:
        store.close()


def trial_file(exp, trial_id: str) -> dict | None:
    path = Path(exp.config.experiment_working_directory) / exp.id / "trials" / trial_id / "trial.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):   # not written yet, or half-written
        return None


def trial_pids(exp, count: int) -> list[int]:
    """The pids of the first ``count`` trials, once each has started and written its file."""
    def pids():
        found = [trial_file(exp, j.trialJobId) for j in exp.list_trial_jobs()[:count]]
        return len(found) == count and all(found) and [f["pid"] for f in found]
    return wait_for(pids, WAIT, f"{count} trials to run")


@pytest.mark.parametrize("concurrency", [1, 2],
                         ids=["submitted-after-the-gpu-freed", "dispatched-by-another-trial-end"])
def test_a_gpu_trial_that_cannot_start_fails_and_gives_its_gpu_back(make_experiment, fake_gpus, tmp_path,  # noqa: F811
                                                                     concurrency):
    """Item 2 of issue 25: a spawn that raised left the GPU held; from a watcher, the trial WAITING forever.

    One GPU. The first trial holds it; the code directory is then removed (a real spawn
    failure: its cwd is gone) and the first trial ends. With concurrency 2 the second trial
    was already queued for the GPU and is started from the first one's end (its watcher); with
    concurrency 1 it is submitted after the GPU was freed.
    """
    fake_gpus(1)
    go = tmp_path / "go"
    exp = make_experiment(GATED_TRIAL.format(go=str(go)), SPACE, concurrency=concurrency, max_trials=3,
                          trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    code = Path(exp.config.trial_code_directory)
    trial_code = (code / "trial.py").read_text()
    exp.start(port=0)
    trial_pids(exp, 1)
    if concurrency == 2:
        wait_for(lambda: any("waiting for 1 free GPU" in (j.message or "") for j in exp.list_trial_jobs()),
                 WAIT, "the second trial to wait for the GPU")
    shutil.rmtree(code)
    go.touch()

    assert exp.wait(timeout=WAIT) == ExperimentStatus.DONE
    jobs = exp.list_trial_jobs()
    assert [j.status for j in jobs] == [TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.FAILED]
    assert all("could not start the trial" in j.message for j in jobs[1:])

    # The GPU was given back: with the code restored, one more trial gets GPU 0 and runs.
    code.mkdir()
    (code / "trial.py").write_text(trial_code)
    exp.update_max_trial_number(4)
    assert exp.wait(timeout=WAIT) == ExperimentStatus.DONE
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 4 and jobs[3].status == TrialStatus.SUCCEEDED
    assert trial_file(exp, jobs[3].trialJobId)["cuda"] == "0"


def test_a_rerun_after_max_experiment_duration_starts_no_new_trial(make_experiment):
    """Item 4 of issue 25: re-running after maxExperimentDuration ended the run started new trials."""
    trial = """
        import os, time, nni
        nni.get_next_parameter()
        if os.environ["NNI_TRIAL_ATTEMPT"] == "1":
            time.sleep(600)          # ended by maxExperimentDuration
        nni.report_final_result(1)
    """
    exp = make_experiment(trial, SPACE, concurrency=2, max_trials=20, max_experiment_duration="3s")
    exp.start(port=0)
    assert exp.wait(timeout=WAIT) == ExperimentStatus.DONE
    before = exp.list_trial_jobs()
    assert before and all(j.status == TrialStatus.USER_CANCELED for j in before)
    ids = sorted(j.trialJobId for j in before)

    assert sorted(exp.rerun_trials(status=TrialStatus.USER_CANCELED.value)) == ids
    assert exp.wait(timeout=WAIT) == ExperimentStatus.DONE
    after = exp.list_trial_jobs()
    # The re-runs the user asked for ran; the time limit still holds for new trials.
    assert sorted(j.trialJobId for j in after) == ids
    assert all(j.status == TrialStatus.SUCCEEDED for j in after)


class _KillFails(local_service.LocalTrainingService):
    """The local service, except that a kill cannot reach its trial (as with a cluster that is gone)."""

    async def kill(self, trial_id: str) -> None:
        raise RuntimeError(f"cannot reach trial {trial_id}: the cluster is gone")


class _StopFails(local_service.LocalTrainingService):
    """The local service, except that its clean-up raises after doing its work."""

    async def stop(self) -> None:
        await super().stop()
        raise RuntimeError("the machine's connection dropped while cleaning up")


SLEEPING_TRIAL = """
    import json, os, time, nni
    nni.get_next_parameter()
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "trial.json"), "w") as f:
        json.dump({"pid": os.getpid()}, f)
    time.sleep(600)
"""


@pytest.fixture
def kill_leftovers():
    """Pids to SIGKILL after the test: on code without the fix the trials outlive the test."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


@pytest.mark.parametrize("service", [_KillFails, _StopFails], ids=["a-kill-raises", "the-service-stop-raises"])
def test_stop_ends_stopped_when_a_step_raises(make_experiment, monkeypatch, kill_leftovers, service):
    """Item 5 of issue 25: one kill that raised left the experiment STOPPING for ever."""
    monkeypatch.setattr(local_service, "LocalTrainingService", service)
    exp = make_experiment(SLEEPING_TRIAL, SPACE, concurrency=2, max_trials=2)
    exp.start(port=0)
    pids = trial_pids(exp, 2)
    kill_leftovers.extend(pids)

    exp.stop()
    status, trials = stored(exp)
    assert status == ExperimentStatus.STOPPED
    assert [t["status"] for t in trials] == [TrialStatus.USER_CANCELED] * 2
    if service is _KillFails:
        assert all("its kill failed: RuntimeError: cannot reach trial" in t["message"] for t in trials)
    # Nothing the trials ran outlives the stop (a failed kill is made good by the reaper).
    wait_for(lambda: not any(pid_alive(p) for p in pids), WAIT, "the trial processes to end")


def test_max_experiment_duration_ends_the_run_when_a_kill_raises(make_experiment, monkeypatch, kill_leftovers):
    """States end on the time limit too: a kill that raised left the experiment NO_MORE_TRIAL for ever."""
    monkeypatch.setattr(local_service, "LocalTrainingService", _KillFails)
    exp = make_experiment(SLEEPING_TRIAL, SPACE, concurrency=2, max_trials=10, max_experiment_duration="8s")
    exp.start(port=0)
    pids = trial_pids(exp, 2)
    kill_leftovers.extend(pids)

    assert exp.wait(timeout=WAIT) == ExperimentStatus.DONE
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 2 and all(j.status == TrialStatus.USER_CANCELED for j in jobs)
    assert all("maxExperimentDuration" in j.message and "its kill failed" in j.message for j in jobs)
    exp.stop()
    assert stored(exp)[0] == ExperimentStatus.DONE
    wait_for(lambda: not any(pid_alive(p) for p in pids), WAIT, "the trial processes to end")

