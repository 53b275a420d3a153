"""platform: ray end to end on a real two-node local Ray cluster (``ray start``, no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import TRIAL_WITH_CHILD, pid_alive, wait_for

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


def cmdlines() -> dict[int, str]:
    """pid -> command line of every process this user can see (from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                pass
    return found


class RayStartError(RuntimeError):
    """`ray start` failed: the fixture skips; after a test killed a node, re-adding it fails loudly."""


class RayCluster:
    """A Ray cluster of this machine's processes: a head and one more node, each with ``num_cpus``."""

    def __init__(self, temp_dir: str, num_cpus: int) -> None:
        self.temp_dir = temp_dir
        self.num_cpus = num_cpus
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.address = ""
        self.worker_port = 0   # the second node's node-manager port: how its raylet is told from the head's

    def _ray_start(self, *args: str) -> None:
        result = subprocess.run([RAY, "start", "--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}",
                                 "--num-gpus=0", "--disable-usage-stats", *args], env=self.env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
            raise RayStartError(f"cannot start a Ray node (ray start {args[0]}): {last[0]}")

    def start_head(self) -> None:
        port = free_port()
        self._ray_start("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}")
        self.address = f"127.0.0.1:{port}"

    def add_worker(self) -> None:
        """Adds the second node (again, after a test killed it), on a fresh node-manager port."""
        self.worker_port = free_port()
        self._ray_start(f"--address={self.address}", f"--node-manager-port={self.worker_port}")

    def worker_raylet(self) -> tuple[int, str]:
        """(pid, node id) of the second node's raylet."""
        for pid, cmd in cmdlines().items():
            if "/raylet/raylet " in cmd and f"--node_manager_port={self.worker_port} " in cmd:
                return pid, cmd.split("--node_id=", 1)[1].split()[0]
        raise AssertionError(f"no raylet with node manager port {self.worker_port}")

    def processes(self) -> dict[int, str]:
        """pid -> command line of this cluster's live processes: raylets, GCS, agents, log monitors
        (all name its temp dir) and what they started (Ray's workers, which do not)."""
        lines = cmdlines()
        parents: dict[int, int] = {}
        for pid in lines:
            try:
                parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
        own = {pid for pid, cmd in lines.items() if self.temp_dir in cmd}
        grown = True
        while grown:
            children = {pid for pid, parent in parents.items() if parent in own} - own
            own |= children
            grown = bool(children)
        return {pid: lines[pid] for pid in own if pid_alive(pid)}

    def leftovers(self) -> list[str]:
        return [cmd[:120] for cmd in self.processes().values()]

    def stop(self) -> None:
        """End this cluster's processes (TERM, then KILL). Not `ray stop`: that ends every Ray
        process of the user, other clusters (another test run, a user's own work) included."""
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 30.0)):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + wait
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (2 CPUs) plus a second node (2 CPUs) on this machine, ended afterwards (its own
    processes only)."""
    if not os.path.exists(RAY):
        pytest.skip("the ray command is not installed next to this Python")
    # Ray's socket paths must stay short (AF_UNIX limit): a short temp dir under /tmp.
    cluster = RayCluster(tempfile.mkdtemp(prefix="nr", dir="/tmp"), num_cpus=2)
    try:
        try:
            cluster.start_head()
            cluster.add_worker()
        except RayStartError as exc:
            pytest.skip(str(exc))
        yield cluster
    finally:
        cluster.stop()
        leftovers = cluster.leftovers()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
        assert not leftovers, f"Ray processes of the test cluster left after stopping it: {leftovers}"


def ray_experiment(make_experiment, address, trial, num_cpus=1, **fields):
    exp = make_experiment(trial, SPACE, **fields)
    exp.config.training_service = {"platform": "ray", "address": address, "trialResources": {"numCpus": num_cpus}}
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
    exp = ray_experiment(make_experiment, ray_cluster.address, TRIAL, concurrency=4, max_trials=8)
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


LONG_TRIAL = TRIAL_WITH_CHILD


def test_kill_and_stop_leave_no_trial_process(make_experiment, ray_cluster, tmp_path):
    exp = ray_experiment(make_experiment, ray_cluster.address, LONG_TRIAL, concurrency=2, max_trials=2)
    exp.start(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(exp.list_trial_jobs("RUNNING")), 60, "2 trials")

    def pids(trial_id):
        path = exp_dir / "trials" / trial_id / "pids"
        wait_for(lambda: path.exists() and len(path.read_text().split()) == 2, 60, "trial pids")
        return [int(p) for p in path.read_text().split()]
    first, second = (j.trialJobId for j in jobs)
    first_pids, second_pids = pids(first), pids(second)
    exp.kill_trial_job(first)
    assert exp.get_trial_job(first).status == "USER_CANCELED"
    wait_for(lambda: not any(pid_alive(p) for p in first_pids), 60, "the killed trial's processes to end")
    assert all(pid_alive(p) for p in second_pids)
    exp.stop()
    wait_for(lambda: not any(pid_alive(p) for p in second_pids), 60, "the stopped trial's processes to end")


#: A driver of its own (argv: cluster address, trial dir): runs the task body in a worker whose
#: SIGINT is ignored, so Ray's cancel raises no KeyboardInterrupt there; cancels it once the
#: trial wrote its pids and prints what ray.get then raised.
CANCEL_WITHOUT_INTERRUPT = """
import signal, sys, time, ray
from pathlib import Path
from nni.training_service.ray import _run_trial

@ray.remote(max_retries=0)
def task(trial_dir, code):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return _run_trial(code, None, trial_dir, {})

ray.init(address=sys.argv[1], log_to_driver=False)
trial_dir = Path(sys.argv[2])
ref = task.remote(str(trial_dir), sys.argv[3])
deadline = time.monotonic() + 90
while not (trial_dir / "pids").exists() and time.monotonic() < deadline:
    time.sleep(0.1)
ray.cancel(ref)
try:
    ray.get(ref, timeout=60)
    print("returned")
except Exception as exc:
    print(type(exc).__name__)
"""


def test_a_cancel_ends_the_trial_also_where_no_interrupt_arrives(ray_cluster, tmp_path):
    """Ray's cancel is a KeyboardInterrupt in the task, and also a flag; the task body ends the
    trial's group on either (a worker whose SIGINT is ignored, say by the user's own code)."""
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    script = tmp_path / "trial.py"
    script.write_text("import os, subprocess, sys, time\n"
                      "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                      f"open({str(trial_dir / 'pids')!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
                      "time.sleep(120)\n")
    command = f"{sys.executable} {script}"
    driver = subprocess.run([sys.executable, "-c", CANCEL_WITHOUT_INTERRUPT, ray_cluster.address, str(trial_dir),
                             command], capture_output=True, text=True, timeout=240)
    assert "TaskCancelledError" in driver.stdout, driver.stdout + driver.stderr[-3000:]
    pids = [int(p) for p in (trial_dir / "pids").read_text().split()]
    assert len(pids) == 2
    wait_for(lambda: not any(pid_alive(p) for p in pids), 60, "the cancelled trial's processes to end")


#: Records its node (the pid of the raylet that started its worker) and its pids, then waits for
#: a "release" file in its trial directory (or RELEASE_ALL) and succeeds.
NODE_LOSS_TRIAL = """
    import os, pathlib, subprocess, sys, time, nni
    p = nni.get_next_parameter()
    out = pathlib.Path(os.environ["NNI_OUTPUT_DIR"])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (out / "raylet").write_text(os.environ["RAY_RAYLET_PID"])
    (out / "pids").write_text(f"{os.getpid()} {child.pid}")   # written last: the test waits for it
    while not (out / "release").exists() and not os.path.exists(RELEASE_ALL):
        time.sleep(0.1)
    child.kill()
    nni.report_final_result(p["x"])
"""


def two_running_trials(exp) -> tuple[Path, list]:
    """The experiment's trials directory and its two running trials, once both run."""
    trials_dir = Path(exp.config.experiment_working_directory) / exp.id / "trials"
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(exp.list_trial_jobs("RUNNING")), 60,
                    "2 running trials")
    return trials_dir, jobs


def placement(trials_dir: Path, trial_id: str) -> tuple[list[int], int]:
    """Where a NODE_LOSS_TRIAL runs: its pids and its node's raylet pid, once it wrote them."""
    path = trials_dir / trial_id / "pids"
    wait_for(lambda: path.exists() and len(path.read_text().split()) == 2, 60, "trial pids")
    return [int(p) for p in path.read_text().split()], int((trials_dir / trial_id / "raylet").read_text())


def test_node_loss_fails_only_the_trial_on_that_node(make_experiment, ray_cluster, tmp_path):
    """SIGKILL of the second node's raylet: its trial is FAILED naming the node, its processes end;
    the head's trial, the experiment and the trials after it go on."""
    # numCpus 2 = all of a node's CPUs: each node runs exactly one trial at a time. A third trial
    # replaces the failed one and must run on the surviving head (max 4: the experiment stays RUNNING).
    release_all = tmp_path / "release-all"
    trial = NODE_LOSS_TRIAL.replace("RELEASE_ALL", repr(str(release_all)))
    # maxTrialRetries 0: NNI's behaviour, the lost trial is FAILED (the retry: the next test).
    exp = ray_experiment(make_experiment, ray_cluster.address, trial, num_cpus=2, concurrency=2, max_trials=4,
                         max_trial_retries=0)
    exp.start(port=0)
    killed = False
    try:
        trials_dir, jobs = two_running_trials(exp)
        placed = {j.trialJobId: placement(trials_dir, j.trialJobId) for j in jobs}
        worker_raylet, worker_node = ray_cluster.worker_raylet()
        lost = [t for t, (_, raylet) in placed.items() if raylet == worker_raylet]
        kept = [t for t, (_, raylet) in placed.items() if raylet != worker_raylet]
        assert len(lost) == 1 and len(kept) == 1, f"not one trial per node: {placed}, 2nd raylet {worker_raylet}"
        (lost,), (kept,) = lost, kept
        head_raylet = placed[kept][1]

        os.kill(worker_raylet, signal.SIGKILL)   # the second node is lost; the head is untouched
        killed = True
        job = wait_for(lambda: (lambda j: j if j.status != "RUNNING" else None)(exp.get_trial_job(lost)), 30,
                       "the lost node's trial to end")
        assert job.status == "FAILED"
        assert job.message.startswith("its Ray node died: ") and worker_node in job.message, job.message
        # Its worker died with the raylet, so the watchdog in the trial's group killed the trial.
        wait_for(lambda: not any(pid_alive(p) for p in placed[lost][0]), 60, "the lost trial's processes to end")

        # Once Ray has declared the node dead, the other trial and the experiment go on.
        import ray
        wait_for(lambda: any(n["NodeID"] == worker_node and not n["Alive"] for n in ray.nodes()), 40,
                 "Ray to mark the node dead")
        assert exp.get_trial_job(kept).status == "RUNNING"
        assert all(pid_alive(p) for p in placed[kept][0]) and pid_alive(head_raylet)
        assert exp.get_status() == "RUNNING"
        (third,) = [j.trialJobId for j in exp.list_trial_jobs("RUNNING") if j.trialJobId != kept]
        assert not (trials_dir / third / "pids").exists()   # queued by Ray: the head's CPUs are taken

        (trials_dir / kept / "release").touch()
        wait_for(lambda: exp.get_trial_job(kept).status == "SUCCEEDED", 30, "the head's trial to succeed")
        _, third_raylet = placement(trials_dir, third)
        assert third_raylet == head_raylet
        release_all.touch()   # the third and the fourth trial (on the head, one after the other)
        wait_for(lambda: exp.get_status() == "DONE", 30, "the experiment to finish")
        statuses = {j.trialJobId: j.status for j in exp.list_trial_jobs()}
        assert statuses.pop(lost) == "FAILED" and set(statuses.values()) == {"SUCCEEDED"} and len(statuses) == 3
        assert all(exp.get_trial_job(t).finalMetricData for t in statuses)
    finally:
        exp.stop()
        if killed:
            ray_cluster.add_worker()   # the tests after this one get their two nodes back


def test_node_loss_reruns_the_trial_on_the_other_node_and_it_succeeds(make_experiment, ray_cluster, tmp_path):
    """SIGKILL of the second node's raylet mid-trial: its trial runs again (attempt 2, same id) on
    the head once the head has room, and succeeds; 2 trials in all, each counted once."""
    release_all = tmp_path / "release-all"
    trial = NODE_LOSS_TRIAL.replace("RELEASE_ALL", repr(str(release_all)))
    exp = ray_experiment(make_experiment, ray_cluster.address, trial, num_cpus=2, concurrency=2, max_trials=2)
    exp.start(port=0)
    killed = False
    try:
        trials_dir, jobs = two_running_trials(exp)

        def raylet_of(trial_id):
            return placement(trials_dir, trial_id)[1]
        placed = {j.trialJobId: raylet_of(j.trialJobId) for j in jobs}
        worker_raylet, worker_node = ray_cluster.worker_raylet()
        (lost,) = [t for t, raylet in placed.items() if raylet == worker_raylet]
        (kept,) = [t for t, raylet in placed.items() if raylet != worker_raylet]
        (trials_dir / lost / "pids").unlink()   # attempt 2 writes it again where it runs

        os.kill(worker_raylet, signal.SIGKILL)
        killed = True
        # The lost trial is not FAILED: it waits for, then gets, a second attempt.
        wait_for(lambda: len(exp.get_trial_job(lost).attempts) == 2, 60, "a second attempt")
        job = exp.get_trial_job(lost)
        assert job.status in ("WAITING", "RUNNING")
        first = job.attempts[0]
        assert first["status"] == "LOST" and first["reason"].startswith("its Ray node died: ")
        assert worker_node in first["reason"]

        (trials_dir / kept / "release").touch()    # the head frees its CPUs for attempt 2
        assert raylet_of(lost) == placed[kept]      # attempt 2 runs on the head
        release_all.touch()
        assert exp.wait(timeout=90) == "DONE"
        jobs = {j.trialJobId: j for j in exp.list_trial_jobs()}
        assert sorted(jobs) == sorted(placed) and {j.status for j in jobs.values()} == {"SUCCEEDED"}
        job = jobs[lost]
        assert [m.data for m in job.finalMetricData] == [job.hyperParameters[0].parameters["x"]]
        one, two = job.attempts
        assert two["status"] == "SUCCEEDED" and two["machine"].startswith("ray node ")
        assert worker_node not in two["machine"]
        assert exp.get_job_statistics() == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": 2}]
    finally:
        exp.stop()
        if killed:
            ray_cluster.add_worker()


def test_private_local_ray_runs_trials_in_the_code_dir_and_shuts_down(make_experiment, tmp_path):
    exp = ray_experiment(make_experiment, None, TRIAL, concurrency=2, max_trials=2)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    for trial in (exp_dir / "trials").iterdir():
        assert (trial / "stdout").read_text().startswith(f"cwd {tmp_path / 'code'} platform ray")
    import ray
    assert not ray.is_initialized()   # the private instance went away with the experiment


def test_trial_output_on_a_node_without_the_experiment_directory_is_private(tmp_path, monkeypatch):
    """The task body on its own (no cluster needed): a node that cannot see the trial directory."""
    from nni.training_service.ray import _run_trial
    node_tmp = tmp_path / "node-tmp"
    node_tmp.mkdir(mode=0o1777)
    monkeypatch.setenv("TMPDIR", str(node_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)   # re-read TMPDIR
    env = {"NNI_EXP_ID": "exp1", "NNI_TRIAL_JOB_ID": "t1"}
    elsewhere = str(tmp_path / "not-on-this-node" / "trials" / "t1")
    planted = node_tmp / f"nni-ng-ray-{os.getuid()}"
    if os.geteuid() == 0:
        # Another user got there first and made the name theirs, open to all.
        planted.mkdir(mode=0o777)
        os.chown(planted, 65534, 65534)
    result = _run_trial("echo to stdout; echo to stderr >&2", str(tmp_path), elsewhere, env)
    assert result["exit_code"] == 0 and not result["shared"]
    assert result["stdout"] == b"to stdout\n" and result["stderr"] == b"to stderr\n"
    if os.geteuid() == 0:
        assert list(planted.iterdir()) == []   # nothing written into someone else's directory
        (used,) = [d for d in node_tmp.glob("nni-ng-ray-*") if d != planted]
    else:
        used = planted
    assert (used.stat().st_mode & 0o777) == 0o700 and (used / "exp1" / "t1" / "stdout").read_bytes() == b"to stdout\n"
