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
import shutil
from pathlib import Path

import pytest
from conftest import wait_for
from test_gpu import fake_gpus  # noqa: F401  (the fake nvidia-smi fixture)

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


@pytest.mark.parametrize("concurrency", [1, 2], ids=["submitted-after-the-gpu-freed", "dispatched-by-another-trial-end"])
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
