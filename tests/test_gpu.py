"""Local GPU scheduling against a fake ``nvidia-smi`` on PATH (real GPUs are checked on the device)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import wait_for

FAKE_SMI = """\
#!{python}
import json, os, sys, time
state = json.load(open({state!r}))
args = " ".join(sys.argv[1:])
if "--query-gpu" in args:
    for i in range(state["gpus"]):
        print(f"{{i}}, GPU-{{i}}, Fake GPU")
elif "--query-compute-apps" in args:
    hold = state.get("hold")
    if hold and os.path.exists(hold):   # a slow nvidia-smi: answers once the hold file is gone
        open(hold + ".seen", "w").close()
        deadline = time.time() + 120
        while os.path.exists(hold) and time.time() < deadline:
            time.sleep(0.05)
    for index, pid in state.get("apps", []):
        print(f"GPU-{{index}}, {{pid}}")
"""

TRIAL = """
    import json, os, time, nni
    nni.get_next_parameter()
    start = time.time()
    time.sleep(0.3)
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "gpu.json"), "w") as f:
        json.dump({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}, f)
    nni.report_final_result(1)
"""
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


@pytest.fixture
def fake_gpus(tmp_path, monkeypatch):
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    state = tmp_path / "gpu-state.json"

    def configure(gpus: int, apps: list[tuple[int, int]] = (), hold: str | None = None) -> None:
        state.write_text(json.dumps({"gpus": gpus, "apps": list(apps), "hold": hold}))

    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(python=sys.executable, state=str(state)))
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    configure(2)
    return configure


def gpu_records(exp) -> list[dict]:
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    return [json.loads(p.read_text()) for p in exp_dir.glob("trials/*/gpu.json")]


def test_each_trial_gets_its_own_gpu_and_gpus_are_never_oversubscribed(make_experiment, fake_gpus):
    exp = make_experiment(TRIAL, SPACE, concurrency=4, max_trials=6, trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    assert exp.run(port=0)
    records = gpu_records(exp)
    assert len(records) == 6
    assert {r["cuda"] for r in records} == {"0", "1"}
    for gpu in ("0", "1"):
        spans = [(r["start"], r["end"]) for r in records if r["cuda"] == gpu]
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), \
            f"two trials shared GPU {gpu} at once"


def test_max_trial_number_per_gpu_allows_sharing(make_experiment, fake_gpus):
    fake_gpus(1)
    # Each trial holds its GPU until both have started (or 60 s pass): if the GPU were not
    # shared, the second would start only after the first ended, however slow the machine.
    together = TRIAL.replace("    time.sleep(0.3)\n", """    started = os.path.join(os.environ["NNI_OUTPUT_DIR"], "..", "..", "started")
    os.makedirs(started, exist_ok=True)
    open(os.path.join(started, os.environ["NNI_TRIAL_JOB_ID"]), "w").close()
    while len(os.listdir(started)) < 2 and time.time() < start + 60:
        time.sleep(0.05)
""")
    exp = make_experiment(together, SPACE, concurrency=2, max_trials=2, trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    exp.config.training_service.max_trial_number_per_gpu = 2
    assert exp.run(port=0)
    records = gpu_records(exp)
    assert [r["cuda"] for r in records] == ["0", "0"]
    (a_start, a_end), (b_start, b_end) = sorted((r["start"], r["end"]) for r in records)
    assert b_start < a_end  # they really ran side by side


def test_a_gpu_busy_with_another_program_is_skipped_unless_use_active_gpu(make_experiment, fake_gpus):
    fake_gpus(2, apps=[(0, 999999)])
    exp = make_experiment(TRIAL, SPACE, concurrency=2, max_trials=3, trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    assert exp.run(port=0)
    assert {r["cuda"] for r in gpu_records(exp)} == {"1"}


def test_gpu_request_without_gpus_is_a_clear_error_at_start(make_experiment, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    exp = make_experiment(TRIAL, SPACE, concurrency=1, max_trials=1, trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    from nni.manager.launcher import LaunchError
    with pytest.raises(LaunchError, match="trialGpuNumber is 1 but nvidia-smi was not found"):
        exp.start(port=0)


def test_more_gpus_per_trial_than_exist_is_refused(make_experiment, fake_gpus):
    exp = make_experiment(TRIAL, SPACE, concurrency=1, max_trials=1, trial_gpu_number=3)
    exp.config.training_service.use_active_gpu = True
    from nni.manager.launcher import LaunchError
    with pytest.raises(LaunchError, match="only 2 GPU"):
        exp.start(port=0)


def test_trial_gpu_number_zero_hides_gpus_from_trials(make_experiment, fake_gpus):
    exp = make_experiment(TRIAL, SPACE, concurrency=1, max_trials=1, trial_gpu_number=0)
    assert exp.run(port=0)
    assert gpu_records(exp)[0]["cuda"] == ""


def start_with_second_trial_in_hanging_nvidia_smi(make_experiment, fake_gpus, tmp_path):
    """An experiment (2 trials, one at a time) whose second trial waits in a hanging ``nvidia-smi``.

    Returns the experiment and the hold file: nvidia-smi answers once it is removed.
    """
    hold, finish = tmp_path / "smi-hold", tmp_path / "finish"
    fake_gpus(2, hold=str(hold))
    # The first trial runs until told; its end makes the second trial ask nvidia-smi for busy GPUs.
    waits = TRIAL.replace("    time.sleep(0.3)\n", f"""    while not os.path.exists({str(finish)!r}) and time.time() < start + 120:
        time.sleep(0.05)
""")
    exp = make_experiment(waits, SPACE, concurrency=1, max_trials=2, trial_gpu_number=1)
    exp.config.training_service.use_active_gpu = False
    exp.start(port=0)
    wait_for(lambda: [t.status for t in exp.list_trial_jobs()] == ["RUNNING"], what="the first trial to run")
    hold.touch()
    finish.touch()
    try:
        wait_for(lambda: Path(f"{hold}.seen").exists(), what="nvidia-smi to be asked for the second trial")
    except BaseException:
        hold.unlink()
        raise
    return exp, hold


def trial_statuses(exp) -> list[str]:
    from nni.experiment import rest
    trials = rest.get(exp.port, "/trial-jobs", timeout=20)   # a blocked loop would not answer in 20 s
    return [t["status"] for t in sorted(trials, key=lambda t: t["sequenceId"])]


def test_the_manager_answers_while_nvidia_smi_hangs(make_experiment, fake_gpus, tmp_path):
    """The busy-GPU query runs off the event loop: REST answers while nvidia-smi has not."""
    from nni.experiment import rest
    exp, hold = start_with_second_trial_in_hanging_nvidia_smi(make_experiment, fake_gpus, tmp_path)
    try:
        # nvidia-smi now hangs (up to 120 s); a blocked loop would not answer within the 20 s.
        assert rest.get(exp.port, "/check-status", timeout=20)["status"] == "RUNNING"
        assert trial_statuses(exp) == ["SUCCEEDED", "WAITING"]
    finally:
        hold.unlink()   # nvidia-smi answers
    assert exp.wait(timeout=120) == "DONE"
    assert len(gpu_records(exp)) == 2


def test_a_trial_killed_while_nvidia_smi_runs_never_starts(make_experiment, fake_gpus, tmp_path):
    exp, hold = start_with_second_trial_in_hanging_nvidia_smi(make_experiment, fake_gpus, tmp_path)
    try:
        second = [t for t in exp.list_trial_jobs() if t.status == "WAITING"][0]
        exp.kill_trial_job(second.trialJobId)
        assert trial_statuses(exp) == ["SUCCEEDED", "USER_CANCELED"]
    finally:
        hold.unlink()   # nvidia-smi answers: its GPU choice for the canceled trial must be dropped
    assert exp.wait(timeout=120) == "DONE"
    assert len(gpu_records(exp)) == 1
    trial_dir = Path(exp.config.experiment_working_directory) / exp.id / "trials" / second.trialJobId
    assert not (trial_dir / "stdout").exists()   # never spawned
