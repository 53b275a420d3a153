"""platform: ray end to end on a real two-node local Ray cluster (``ray start``, no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import pid_alive

pytest.importorskip("ray", reason="platform ray needs ray (pip install 'nni[ray]')")

SPACE = {"x": {"_type": "randint", "_value": [0, 100]}}
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def no_ray_token_auth():
    """Ray >= 2.5x turns on token auth for local clusters and keeps a token in ~/.ray; the
    throwaway clusters here run without it, so nothing is left in the home directory."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (2 CPUs) plus a second node (2 CPUs) on this machine; `ray stop` afterwards."""
    if not os.path.exists(RAY):
        pytest.skip("the ray command is not installed next to this Python")
    # Ray's socket paths must stay short (AF_UNIX limit): a short temp dir under /tmp.
    temp_dir = tempfile.mkdtemp(prefix="nr", dir="/tmp")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    try:
        head = subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                               "--include-dashboard=false", *common], env=env, capture_output=True, text=True,
                              timeout=120)
        if head.returncode != 0:
            pytest.skip(f"cannot start a Ray head node: {(head.stderr or head.stdout).strip().splitlines()[-1:]}")
        worker = subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                                 *common[:2], "--disable-usage-stats"], env=env, capture_output=True,
                                text=True, timeout=120)
        if worker.returncode != 0:
            pytest.skip(f"cannot add a second Ray node: {(worker.stderr or worker.stdout).strip().splitlines()[-1:]}")
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_experiment(make_experiment, address, trial, **fields):
    exp = make_experiment(trial, SPACE, **fields)
    exp.config.training_service = {"platform": "ray", "address": address, "trialResources": {"numCpus": 1}}
    return exp


TRIAL = """
    import os, socket, sys, nni
    p = nni.get_next_parameter()
    print("cwd", os.getcwd(), "platform", os.environ["NNI_PLATFORM"], flush=True)
    print("to stderr", file=sys.stderr)
    nni.report_intermediate_result(p["x"] / 2)
    nni.report_final_result(p["x"])
"""


def test_experiment_runs_end_to_end_on_a_two_node_cluster(make_experiment, ray_cluster, tmp_path):
    exp = ray_experiment(make_experiment, ray_cluster, TRIAL, concurrency=4, max_trials=8)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    db = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    assert [r[0] for r in db.execute("SELECT status FROM trials")] == ["SUCCEEDED"] * 8
    finals = {r[0]: json.loads(r[1]) for r in db.execute("SELECT trial_id, value FROM metrics WHERE type='FINAL'")}
    params = {r[0]: json.loads(r[1]) for r in db.execute("SELECT trial_id, parameters FROM parameters")}
    assert finals == {t: p["x"] for t, p in params.items()}
    for trial_id in params:
        stdout = (exp_dir / "trials" / trial_id / "stdout").read_text()
        # The code reached the task through runtime_env working_dir (a copy, not the source dir).
        assert "platform ray" in stdout and "trial.py" in os.listdir(stdout.split()[1])
        assert (exp_dir / "trials" / trial_id / "stderr").read_text() == "to stderr\n"


LONG_TRIAL = """
    import os, subprocess, sys, time, nni
    nni.get_next_parameter()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pids"), "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
"""


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_kill_and_stop_leave_no_trial_process(make_experiment, ray_cluster, tmp_path):
    exp = ray_experiment(make_experiment, ray_cluster, LONG_TRIAL, concurrency=2, max_trials=2)
    exp.start(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(exp.list_trial_jobs("RUNNING")), what="2 trials")

    def pids(trial_id):
        path = exp_dir / "trials" / trial_id / "pids"
        wait_for(lambda: path.exists() and len(path.read_text().split()) == 2, what="trial pids")
        return [int(p) for p in path.read_text().split()]
    first, second = (j.trialJobId for j in jobs)
    first_pids, second_pids = pids(first), pids(second)
    exp.kill_trial_job(first)
    assert exp.get_trial_job(first).status == "USER_CANCELED"
    wait_for(lambda: not any(pid_alive(p) for p in first_pids), 10, "the killed trial's processes to end")
    assert all(pid_alive(p) for p in second_pids)
    exp.stop()
    wait_for(lambda: not any(pid_alive(p) for p in second_pids), 10, "the stopped trial's processes to end")


def test_private_local_ray_runs_trials_in_the_code_dir_and_shuts_down(make_experiment, tmp_path):
    exp = ray_experiment(make_experiment, None, TRIAL, concurrency=2, max_trials=2)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    for trial in (exp_dir / "trials").iterdir():
        assert (trial / "stdout").read_text().startswith(f"cwd {tmp_path / 'code'} platform ray")
    import ray
    assert not ray.is_initialized()   # the private instance went away with the experiment
