"""platform: remote end to end against a real OpenSSH server on 127.0.0.1 (no mocks).

The fixture starts ``/usr/sbin/sshd -D`` as the current user on a free port with a fresh
host key, a client key and an ``authorized_keys``; trials run through it exactly as on a
remote host (code uploaded over SSH, channel through the reverse port forward). Its host key
is in the test's ``~/.ssh/known_hosts``, as for a user who has connected to the host before
(host keys are checked); ``Sshd(..., trusted=False)`` leaves it out.
"""

from __future__ import annotations

import getpass
import json
import re
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import DAEMON_TRIAL, TRIAL_WITH_CHILD, daemon_pid, pid_alive, wait_for

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("setsid")),
    reason="needs OpenSSH's server (/usr/sbin/sshd), ssh, ssh-keygen and util-linux setsid")
pytest.importorskip("asyncssh", reason="platform remote needs asyncssh (pip install 'nni[remote]')")

SPACE = {"x": {"_type": "randint", "_value": [0, 100]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


class Sshd:
    """A throwaway sshd: ``start()``/``kill()`` (the listener and every session process)."""

    def __init__(self, root: Path, trusted: bool = True) -> None:
        self.root = root
        self.trusted = trusted
        root.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        self.port = free_port()
        (root / "sshd_config").write_text(textwrap.dedent(f"""\
            Port {self.port}
            ListenAddress 127.0.0.1
            HostKey {root / 'host_key'}
            AuthorizedKeysFile {root / 'authorized_keys'}
            PidFile {root / 'sshd.pid'}
            UsePAM no
            StrictModes no
            PasswordAuthentication no
            AllowTcpForwarding yes
            MaxSessions 100
            MaxStartups 100
            """))
        if os.environ.get("PYTHONPATH"):
            # Sessions import the nni under test (a checkout on PYTHONPATH), as local trials do.
            with open(root / "sshd_config", "a") as f:
                f.write(f"SetEnv PYTHONPATH={os.environ['PYTHONPATH']}\n")
        self.process: subprocess.Popen | None = None

    def known_hosts_line(self) -> str:
        algorithm, key = (self.root / "host_key.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {algorithm} {key}\n"

    def trust(self) -> None:
        """List the host key in ``~/.ssh/known_hosts`` (of this test's HOME), once."""
        path = Path.home() / ".ssh" / "known_hosts"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        line = self.known_hosts_line()
        if line not in (path.read_text() if path.exists() else ""):
            with open(path, "a") as f:
                f.write(line)

    def start(self) -> None:
        if self.trusted:
            self.trust()
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # sshd's privilege separation dir
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                                        stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return
            except OSError:
                assert self.process.poll() is None, (self.root / "sshd.log").read_text()
                time.sleep(0.05)
        raise AssertionError("sshd did not start: " + (self.root / "sshd.log").read_text())

    def kill(self) -> None:
        """SIGKILL the listener and its per-connection processes: every connection drops."""
        if self.process is None:
            return
        for pid in descendants(self.process.pid):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "sshd":
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.process.wait()
        self.process = None


def ssh_home(sshd: "Sshd") -> Path:
    """``~`` as the test sshd's sessions see it."""
    out = subprocess.run(["ssh", "-p", str(sshd.port), "-i", str(sshd.root / "client_key"), "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          f"{getpass.getuser()}@127.0.0.1", "cd && pwd"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd")
    try:
        server.start()
    except (AssertionError, OSError) as exc:
        pytest.skip(f"cannot start a test sshd as this user: {exc}")
    yield server
    server.kill()


def remote_service(sshd, tmp_path, **machine) -> dict:
    """A ``trainingService`` mapping for the test sshd; ``machine`` overrides machine fields."""
    return {
        "platform": "remote",
        "remoteWorkingDirectory": str(tmp_path / "remote-home"),
        "machineList": [{"host": "127.0.0.1", "port": sshd.port, "user": getpass.getuser(),
                         "sshKeyFile": str(sshd.root / "client_key"),
                         "pythonPath": str(Path(sys.executable).parent), **machine}],
    }


def remote_experiment(make_experiment, sshd, tmp_path, trial_code, **fields):
    exp = make_experiment(trial_code, SPACE, **fields)
    exp.config.training_service = remote_service(sshd, tmp_path)
    return exp


REPORTING_TRIAL = """
    import os, sys, nni
    p = nni.get_next_parameter()
    print("hello from", os.environ["NNI_PLATFORM"], os.getcwd(), flush=True)
    print("on stderr", file=sys.stderr, flush=True)
    for i in range(3):
        nni.report_intermediate_result(i)
    open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "marker"), "w").write(str(p["x"]))
    nni.report_final_result(p["x"])
"""


def test_experiment_runs_end_to_end_over_ssh(make_experiment, sshd, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / ".nniignore").write_text("data/\n*.bin\n!keep.bin\n")
    (code / "data").mkdir()
    (code / "data" / "huge.txt").write_text("x")
    (code / "skip.bin").write_text("x")
    (code / "keep.bin").write_text("x")
    exp = remote_experiment(make_experiment, sshd, tmp_path, REPORTING_TRIAL, concurrency=2, max_trials=4)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    db = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    statuses = [r[0] for r in db.execute("SELECT status FROM trials")]
    assert statuses == ["SUCCEEDED"] * 4
    finals = {r[0]: json.loads(r[1]) for r in db.execute("SELECT trial_id, value FROM metrics WHERE type='FINAL'")}
    params = {r[0]: json.loads(r[1]) for r in db.execute("SELECT trial_id, parameters FROM parameters")}
    assert finals == {t: p["x"] for t, p in params.items()}
    assert db.execute("SELECT count(*) FROM metrics WHERE type='PERIODICAL'").fetchone()[0] == 12
    remote_root = tmp_path / "remote-home" / exp.id
    for trial_id in params:
        # Logs come back into the local trial directory, the layout `nnictl log trial` reads.
        stdout = (exp_dir / "trials" / trial_id / "stdout").read_text()
        assert stdout.startswith("hello from remote " + str(remote_root / "code")), stdout
        assert "NNI-NG-PGID" not in stdout
        # Only the trial's own line (after whatever the user's shell start-up files print there).
        stderr = (exp_dir / "trials" / trial_id / "stderr").read_text()
        assert stderr == "on stderr\n" or stderr.endswith("\non stderr\n"), stderr
        # The trial's own output directory is on the remote machine.
        assert (remote_root / "trials" / trial_id / "marker").read_text() == str(params[trial_id]["x"])
    uploaded = sorted(p.relative_to(remote_root / "code").as_posix() for p in (remote_root / "code").rglob("*"))
    assert uploaded == [".nniignore", "keep.bin", "trial.py"]


LONG_TRIAL = TRIAL_WITH_CHILD




def running_pids(exp, tmp_path, count):
    jobs = wait_for(lambda: (lambda j: j if len(j) == count else None)(exp.list_trial_jobs("RUNNING")),
                    what=f"{count} running trials")
    root = tmp_path / "remote-home" / exp.id / "trials"

    def pids(trial_id):
        path = root / trial_id / "pids"
        wait_for(lambda: path.exists() and len(path.read_text().split()) == 2, what="trial pids")
        return [int(p) for p in path.read_text().split()]
    return {j.trialJobId: pids(j.trialJobId) for j in jobs}


def test_kill_and_stop_leave_no_remote_process(make_experiment, sshd, tmp_path):
    exp = remote_experiment(make_experiment, sshd, tmp_path, LONG_TRIAL, concurrency=2, max_trials=2)
    exp.start(port=0)
    pids = running_pids(exp, tmp_path, 2)
    first, second = list(pids)
    exp.kill_trial_job(first)
    assert exp.get_trial_job(first).status == "USER_CANCELED"
    wait_for(lambda: not any(pid_alive(p) for p in pids[first]), 60, "killed trial's processes to end")
    assert all(pid_alive(p) for p in pids[second])
    started = time.monotonic()
    exp.stop()
    assert time.monotonic() - started < 60   # not the trial's 120 s: stop does not wait for it
    wait_for(lambda: not any(pid_alive(p) for p in pids[second]), 60, "stopped trial's processes to end")


def test_a_double_forked_daemon_on_the_machine_dies_at_trial_end_kill_and_lost_connection(
        make_experiment, sshd, tmp_path):
    # Trial 0 ends by itself, trial 1 (which ignores SIGTERM) is killed, trial 2 runs until its
    # connection is lost. The daemon each starts leaves the trial's process group and ignores SIGTERM.
    trial_code = DAEMON_TRIAL.replace("{ends}", "1").replace(
        "    nni.report_final_result(1.0)\n",
        "    nni.report_final_result(1.0)\n"
        "    if nni.get_sequence_id() == 1:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n")
    exp = remote_experiment(make_experiment, sshd, tmp_path, trial_code, concurrency=1, max_trials=4,
                            max_trial_retries=0)
    # `exec`: the trial itself, not a shell that SIGTERM would end, is what the launcher waits for.
    exp.config.trial_command = f"exec {exp.config.trial_command}"
    exp.start(port=0)
    root = tmp_path / "remote-home" / exp.id / "trials"

    def trial(sequence_id):
        job = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.sequenceId == sequence_id), None),
                       what=f"trial {sequence_id}")
        return job.trialJobId, daemon_pid(str(root / job.trialJobId))

    try:
        trial_id, daemon = trial(0)
        wait_for(lambda: exp.get_trial_job(trial_id).status == "SUCCEEDED", what="trial 0 to end")
        wait_for(lambda: not pid_alive(daemon), 30, "trial 0's daemon to end with it")

        trial_id, daemon = trial(1)
        wait_for(lambda: exp.get_trial_job(trial_id).finalMetricData, what="trial 1's result")
        exp.kill_trial_job(trial_id)
        wait_for(lambda: exp.get_trial_job(trial_id).status == "USER_CANCELED", what="the kill")
        wait_for(lambda: not pid_alive(daemon), 30, "trial 1's daemon to end with the kill")

        trial_id, daemon = trial(2)
        wait_for(lambda: exp.get_trial_job(trial_id).finalMetricData, what="trial 2's result")
        sshd.kill()   # the channel closes: the trial's watchdog ends it on the machine
        wait_for(lambda: "lost the SSH connection" in (exp.get_trial_job(trial_id).message or ""),
                 what="trial 2 to be lost")
        wait_for(lambda: not pid_alive(daemon), 30, "trial 2's daemon to end with the lost connection")
    finally:
        exp.stop()
        for path in root.glob("*/daemon.pid"):
            if pid_alive(int(path.read_text())):
                os.kill(int(path.read_text()), signal.SIGKILL)


def test_a_machine_whose_python3_is_broken_still_runs_trials(make_experiment, sshd, tmp_path, caplog):
    # A pyenv shim for a version that is not installed: `python3` is on PATH but cannot run.
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text("#!/bin/sh\necho 'pyenv: python3: command not found' >&2\nexit 127\n")
    (fake_bin / "python3").chmod(0o755)
    exp = make_experiment(REPORTING_TRIAL, SPACE, concurrency=2, max_trials=2)   # runs sys.executable
    exp.config.training_service = remote_service(sshd, tmp_path, pythonPath=str(fake_bin))
    caplog.set_level("WARNING", logger="nni.training_service.remote")
    exp.start(port=0)
    try:
        assert exp.wait(timeout=120) == "DONE"
        assert [j.status for j in exp.list_trial_jobs()] == ["SUCCEEDED"] * 2
    finally:
        exp.stop()
    assert any("no python3 (3.6+) on the trials' PATH there" in r.getMessage() for r in caplog.records)


def test_lost_connection_fails_running_trials_and_the_experiment_goes_on(make_experiment, sshd, tmp_path):
    trial = LONG_TRIAL.replace("time.sleep(120)\n", "time.sleep(120 if p0['x'] >= 0 and os.path.exists(os.path.join(os.environ['NNI_SYS_DIR'], '..', '..', 'block')) else 0)\n")
    trial = trial.replace("nni.get_next_parameter()", "p0 = nni.get_next_parameter()")
    (tmp_path / "remote-home").mkdir()
    # maxTrialRetries 0: NNI's behaviour, a lost trial is FAILED (retries: the tests below).
    exp = remote_experiment(make_experiment, sshd, tmp_path, trial, concurrency=2, max_trials=4, max_trial_retries=0)
    exp.start(port=0)
    # The first two trials block until the connection is lost; later ones finish at once.
    wait_for(lambda: (tmp_path / "remote-home" / exp.id).is_dir(), what="experiment dir on the remote side")
    (tmp_path / "remote-home" / exp.id / "block").write_text("")
    pids = running_pids(exp, tmp_path, 2)
    sshd.kill()
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(exp.list_trial_jobs("FAILED")), 90,
                    "trials on the lost machine to fail")
    assert {j.trialJobId for j in jobs} == set(pids)
    for job in jobs:
        assert "lost the SSH connection to machine" in exp.get_trial_job(job.trialJobId).message
    # No orphan: the watchdog in each trial group ended it when its channel closed.
    wait_for(lambda: not any(pid_alive(p) for ps in pids.values() for p in ps), 60, "orphans to end")
    assert exp.get_status() in ("RUNNING", "NO_MORE_TRIAL")   # not ERROR, not stopped
    waiting = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(exp.list_trial_jobs("WAITING")), 90,
                       "the next trials to wait for the machine")
    messages = [exp.get_trial_job(j.trialJobId).message or "" for j in waiting]
    assert all("none is connected" in m for m in messages), messages
    (tmp_path / "remote-home" / exp.id / "block").unlink()
    sshd.start()   # the service reconnects with backoff and runs the remaining trials
    assert exp.wait(timeout=240) == "DONE"
    statuses = sorted(j.status for j in exp.list_trial_jobs())
    assert statuses == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED"]


def test_unreachable_host_and_bad_key_are_clear_errors(make_experiment, sshd, tmp_path):
    exp = remote_experiment(make_experiment, sshd, tmp_path, REPORTING_TRIAL)
    bad_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(bad_key)], check=True)
    exp.config.training_service = remote_service(sshd, tmp_path, sshKeyFile=str(bad_key))
    with pytest.raises(Exception) as info:
        exp.start(port=0)
    assert f"machine {getpass.getuser()}@127.0.0.1:{sshd.port}: authentication failed with sshKeyFile" \
        in str(info.value)

    closed = free_port()
    exp.config.training_service = remote_service(sshd, tmp_path, port=closed)
    with pytest.raises(Exception) as info:
        exp.start(port=0)
    assert f"machine {getpass.getuser()}@127.0.0.1:{closed}: cannot connect" in str(info.value)


def test_gpu_scheduling_uses_the_remote_nvidia_smi(make_experiment, sshd, tmp_path):
    # A stand-in nvidia-smi on the remote PATH (pythonPath is prepended there): 2 idle GPUs.
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text('#!/bin/sh\ncase "$*" in *--query-gpu*) printf "0, GPU-a\\n1, GPU-b\\n";; esac\n')
    smi.chmod(0o755)
    trial = """
        import os, time, nni
        nni.get_next_parameter()
        out = os.environ["NNI_OUTPUT_DIR"]
        open(os.path.join(out, "cuda"), "w").write(os.environ["CUDA_VISIBLE_DEVICES"])
        time.sleep(1.0)
        nni.report_final_result(0)
    """
    exp = make_experiment(trial, SPACE, concurrency=3, max_trials=4, trial_gpu_number=1)
    exp.config.training_service = remote_service(
        sshd, tmp_path, pythonPath=f"{fake_bin}:{Path(sys.executable).parent}", maxTrialNumberPerGpu=1)
    exp.start(port=0)
    waiting = wait_for(lambda: [j for j in exp.list_trial_jobs("WAITING") if j.message],
                       what="a trial waiting for a GPU, with the reason")
    assert "GPU 0, 1 already run maxTrialNumberPerGpu=1" in waiting[0].message
    assert exp.wait(timeout=240) == "DONE"
    # Never more than 2 trials (1 per GPU) at once although trialConcurrency is 3.
    spans = [(j.startTime, j.endTime) for j in exp.list_trial_jobs()]
    assert max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans) <= 2
    root = tmp_path / "remote-home" / exp.id / "trials"
    seen = sorted((root / j.trialJobId / "cuda").read_text() for j in exp.list_trial_jobs())
    assert seen == ["0", "0", "1", "1"]
    assert {j.status for j in exp.list_trial_jobs()} == {"SUCCEEDED"}


def test_v1_config_via_nnictl_manager_kill_dash_nine_leaves_no_remote_process_and_resume_finishes(sshd, tmp_path):
    import yaml
    from test_nnictl import nnictl, wait_done

    code = tmp_path / "exp"
    code.mkdir()
    (code / "trial.py").write_text(textwrap.dedent("""
        import os, time, nni
        p = nni.get_next_parameter()
        open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pid"), "w").write(str(os.getpid()))
        nni.report_intermediate_result(p["x"])
        time.sleep(1.0 if os.path.exists(os.path.join(os.environ["NNI_SYS_DIR"], "..", "..", "slow")) else 0)
        nni.report_final_result(p["x"])
    """))
    (code / "search_space.json").write_text(json.dumps(SPACE))
    config = {   # an NNI v1 config, converted on load
        "authorName": "test", "experimentName": "remote-v1", "trialConcurrency": 2, "maxTrialNum": 4,
        "searchSpacePath": "search_space.json", "trainingServicePlatform": "remote",
        "logDir": str(tmp_path / "experiments"),
        "trial": {"command": "python3 trial.py", "codeDir": ".", "gpuNum": 0},
        "tuner": {"builtinTunerName": "Random"},
        "machineList": [{"ip": "127.0.0.1", "port": sshd.port, "username": getpass.getuser(),
                         "sshKeyPath": str(sshd.root / "client_key"), "pythonPath": str(Path(sys.executable).parent)}],
    }
    (code / "config.yml").write_text(yaml.safe_dump(config))
    # The default remoteWorkingDirectory is under `~` of the SSH side, which is the user's
    # passwd home there, not this process's HOME (each test has its own): ask the SSH side.
    remote_home = ssh_home(sshd) / "nni-experiments" / "remote"
    out = nnictl("create", "--config", str(code / "config.yml"), "--port", "0")
    assert out.returncode == 0, out.stderr
    exp_id = re.search(r"Experiment (\w+) started", out.stdout).group(1)
    root = remote_home / exp_id
    try:
        wait_for(lambda: root.is_dir(), what="the remote experiment directory")
        (root / "slow").write_text("")
        entry = json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{exp_id}.json").read_text())
        pid_files = wait_for(lambda: (lambda f: f if len(f) == 2 else None)(list(root.glob("trials/*/pid"))),
                             what="two running remote trials")
        pids = [int(wait_for(lambda: f.read_text(), what="pid")) for f in pid_files]
        os.kill(entry["pid"], signal.SIGKILL)
        # The SSH connection dies with the manager; each trial's watchdog ends its group.
        wait_for(lambda: not any(pid_alive(p) for p in pids), 60, "remote trials of the dead manager to end")
        (root / "slow").unlink()
        out = nnictl("resume", exp_id, "--port", "0")
        assert out.returncode == 0, out.stderr
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
        assert wait_done(port) == "DONE"
    finally:
        nnictl("stop", exp_id)
        shutil.rmtree(root, ignore_errors=True)
    db = sqlite3.connect(tmp_path / "experiments" / exp_id / "db" / "nni.sqlite")
    statuses = sorted(r[0] for r in db.execute("SELECT status FROM trials"))
    assert statuses.count("SUCCEEDED") == 4 and set(statuses) <= {"SUCCEEDED", "SYS_CANCELED"}


def test_shell_start_up_output_on_the_machine_changes_nothing(make_experiment, tmp_path):
    """A ~/.bashrc that prints (a banner, conda, pyenv) must not break the machine's set-up or its trials."""
    server = Sshd(tmp_path / "sshd")
    with open(server.root / "sshd_config", "a") as f:
        # Output before every command, on both streams, the way a user's shell start-up files print.
        f.write('ForceCommand echo "Welcome to the GPU box"; echo "pyenv: cannot rehash" >&2; '
                'eval "$SSH_ORIGINAL_COMMAND"\n')
    try:
        server.start()
    except (AssertionError, OSError) as exc:
        pytest.skip(f"cannot start a test sshd as this user: {exc}")
    try:
        home = ssh_home(server)
        work = f"~/nni-ng-test-{tmp_path.name}-{os.getpid()}"
        exp = make_experiment(REPORTING_TRIAL, SPACE, concurrency=1, max_trials=2)
        exp.config.training_service = {**remote_service(server, tmp_path), "remoteWorkingDirectory": work}
        try:
            assert exp.run(port=0) is True
            exp_dir = Path(exp.config.experiment_working_directory) / exp.id
            db = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
            assert [r[0] for r in db.execute("SELECT status FROM trials")] == ["SUCCEEDED"] * 2
            remote_root = home / work[2:] / exp.id
            for trial_id in [r[0] for r in db.execute("SELECT trial_id FROM trials")]:
                # The working directory under `~` was resolved from the real home, not the banner.
                assert (remote_root / "trials" / trial_id / "marker").exists()
                stdout = (exp_dir / "trials" / trial_id / "stdout").read_text()
                # What the shell printed stays in the trial's log, before the trial's own output.
                assert stdout.startswith("Welcome to the GPU box\nhello from remote " + str(remote_root / "code")), stdout
                assert (exp_dir / "trials" / trial_id / "stderr").read_text().endswith("on stderr\n")
        finally:
            shutil.rmtree(home / work[2:], ignore_errors=True)
    finally:
        server.kill()


def test_passwords_never_leave_the_manager_through_the_api():
    from nni.experiment.config import ExperimentConfig
    from nni.manager.read_model import public_config
    config = ExperimentConfig.from_dict({
        "trialCommand": "python3 trial.py", "trialConcurrency": 1,
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "tuner": {"name": "Random"},
        "trainingService": {"platform": "remote", "machineList": [
            {"host": "10.0.0.1", "user": "bob", "password": "hunter2"},
            {"host": "10.0.0.2", "user": "bob", "sshKeyFile": "/tmp/key", "sshPassphrase": "open sesame"}]}})
    stored = config.to_dict()
    shown = public_config(stored)
    assert "hunter2" not in json.dumps(shown) and "open sesame" not in json.dumps(shown)
    assert shown["trainingService"]["machineList"][0]["password"] == "***"
    assert shown["trainingService"]["machineList"][1]["sshKeyFile"] == "/tmp/key"
    assert stored["trainingService"]["machineList"][0]["password"] == "hunter2"   # kept for resume


#: Attempt 1 blocks (writing its pids) until the test ends it; later attempts report x at once.
RETRY_TRIAL = """
    import os, pathlib, subprocess, sys, time, nni
    p = nni.get_next_parameter()
    out = pathlib.Path(os.environ["NNI_OUTPUT_DIR"])
    attempt = int(os.environ["NNI_TRIAL_ATTEMPT"])
    (out / f"attempt-{attempt}").write_text(os.environ["NNI_TRIAL_CHANNEL"])
    if attempt == 1:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (out / "pids").write_text(f"{os.getpid()} {child.pid}")
        time.sleep(120)
    nni.report_final_result(p["x"])
"""


def attempts(exp, trial_id):
    return exp.get_trial_job(trial_id).attempts


def test_lost_machine_reruns_the_trial_on_the_other_machine(make_experiment, tmp_path):
    """Two SSH machines; the sshd of the one running the trial is killed mid-trial: the trial runs
    again (attempt 2, same id) on the other machine and succeeds, counted once."""
    first, second = Sshd(tmp_path / "sshd-a"), Sshd(tmp_path / "sshd-b")
    try:
        try:
            first.start()
            second.start()
        except (AssertionError, OSError) as exc:
            pytest.skip(f"cannot start a test sshd as this user: {exc}")
        exp = make_experiment(RETRY_TRIAL, SPACE, concurrency=1, max_trials=1)
        service = remote_service(first, tmp_path)
        service["machineList"].append({**service["machineList"][0], "port": second.port,
                                       "sshKeyFile": str(second.root / "client_key")})
        exp.config.training_service = service
        exp.start(port=0)
        (pids,) = running_pids(exp, tmp_path, 1).items()
        trial_id, trial_pids = pids
        (running,) = attempts(exp, trial_id)
        lost_port = int(running["machine"].rsplit(":", 1)[1])
        lost, kept = (first, second) if lost_port == first.port else (second, first)
        lost.kill()
        assert exp.wait(timeout=90) == "DONE"
        (job,) = exp.list_trial_jobs()
        assert job.trialJobId == trial_id and job.status == "SUCCEEDED"
        assert job.finalMetricData[0].data == job.hyperParameters[0].parameters["x"]
        one, two = job.attempts
        assert (one["status"], two["status"]) == ("LOST", "SUCCEEDED")
        assert "lost the SSH connection to machine" in one["reason"] and one["machine"].endswith(f":{lost.port}")
        assert two["machine"].endswith(f":{kept.port}") and two["cause"].startswith("attempt 1 lost:")
        assert (tmp_path / "remote-home" / exp.id / "trials" / trial_id / "attempt-2").exists()
        wait_for(lambda: not any(pid_alive(p) for p in trial_pids), 60, "the lost attempt's processes to end")
    finally:
        first.kill()
        second.kill()


#: Attempt 1 leaves a detached helper (its own session, so killing the attempt does not reach it)
#: that reports a final result late, when the test says so, and writes what the manager answered.
LEASE_TRIAL = """
    import json, os, pathlib, time, nni
    p = nni.get_next_parameter()
    out = pathlib.Path(os.environ["NNI_OUTPUT_DIR"])
    if int(os.environ["NNI_TRIAL_ATTEMPT"]) == 1:
        # What a process of this attempt needs to report later (the test plays that process: one
        # the trial started would end with the attempt, double-forked or not).
        (out / "attempt1.json").write_text(json.dumps({k: v for k, v in os.environ.items() if k.startswith("NNI_")}))
        time.sleep(120)
    nni.report_final_result(p["x"])
"""
LATE_REPORT = """
import os, sys
from nni.runtime.channel import TrialChannel
channel = TrialChannel(os.environ["NNI_TRIAL_CHANNEL"], os.environ["NNI_TRIAL_JOB_ID"], os.environ["NNI_TRIAL_TOKEN"])
try:   # what nni.report_final_result(-1) sends, with the old attempt's token
    channel.send_metric(int(sys.argv[1]), "FINAL", 0, "-1")
    print("accepted")
except Exception as exc:
    print(exc)
"""


def test_lapsed_lease_reruns_the_trial_and_refuses_the_old_attempts_report(make_experiment, sshd, tmp_path):
    exp = remote_experiment(make_experiment, sshd, tmp_path, LEASE_TRIAL, concurrency=1, max_trials=1,
                            trial_lease_timeout=6)
    exp.start(port=0)
    (job,) = wait_for(lambda: exp.list_trial_jobs("RUNNING"), 60, "the trial to run")
    trial_dir = tmp_path / "remote-home" / exp.id / "trials" / job.trialJobId
    attempt1 = json.loads(wait_for(lambda: (trial_dir / "attempt1.json").exists()
                                   and (trial_dir / "attempt1.json").read_text(), 60, "attempt 1's environment"))
    keeper = int(wait_for(lambda: (trial_dir / "lease.pid").exists() and (trial_dir / "lease.pid").read_text(),
                          60, "the lease keeper"))
    try:
        os.kill(keeper, signal.SIGSTOP)   # the machine goes silent: no more renewals
        assert exp.wait(timeout=90) == "DONE"
        job = exp.get_trial_job(job.trialJobId)
        x = job.hyperParameters[0].parameters["x"]
        assert job.status == "SUCCEEDED" and [m.data for m in job.finalMetricData] == [x]
        one, two = job.attempts
        assert (one["status"], two["status"]) == ("LOST", "SUCCEEDED")
        assert one["reason"].startswith("its lease lapsed: no renewal for 6 s")
        # the silent attempt's (stopped) lease keeper was ended with it
        wait_for(lambda: not pid_alive(keeper), 60, "the first attempt's lease keeper to end")
        # A process of the old attempt reports after all: refused (409), never stored.
        late = subprocess.run([sys.executable, "-c", LATE_REPORT, str(job.hyperParameters[0].parameter_id)],
                              env={**os.environ, **attempt1}, capture_output=True, text=True, timeout=120)
        assert "HTTP 409" in late.stdout and "superseded" in late.stdout, late
        assert [m.data for m in exp.get_trial_job(job.trialJobId).finalMetricData] == [x]
        db = sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")
        assert db.execute("SELECT count(*) FROM metrics WHERE type='FINAL'").fetchone()[0] == 1
    finally:
        try:
            os.kill(keeper, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- host keys -----------------------------------------------------------------------------------
def known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def test_host_keys_are_checked_against_known_hosts(make_experiment, tmp_path):
    """strict (the default): an unlisted host and a changed key are refused, naming the host;
    accept-new adds an unlisted host's key once and still refuses a changed one."""
    server = Sshd(tmp_path / "sshd", trusted=False)
    try:
        server.start()
    except (AssertionError, OSError) as exc:
        pytest.skip(f"cannot start a test sshd as this user: {exc}")
    name = f"machine {getpass.getuser()}@127.0.0.1:{server.port}"
    try:
        exp = make_experiment(REPORTING_TRIAL, SPACE, concurrency=1, max_trials=1)
        exp.config.training_service = remote_service(server, tmp_path)
        with pytest.raises(Exception) as info:
            exp.start(port=0)
        assert f"{name}: host key not verified: [127.0.0.1]:{server.port} is not in ~/.ssh/known_hosts" \
            in str(info.value)

        # Another key listed for that host: what a man in the middle looks like.
        impostor = tmp_path / "impostor"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
        known_hosts().parent.mkdir(mode=0o700, exist_ok=True)
        wrong = f"[127.0.0.1]:{server.port} " + " ".join((impostor.parent / "impostor.pub").read_text().split()[:2])
        known_hosts().write_text(wrong + "\n")
        for policy in ("strict", "accept-new"):
            exp.config.training_service = remote_service(server, tmp_path, hostKeyCheck=policy)
            with pytest.raises(Exception) as info:
                exp.start(port=0)
            assert f"{name}: host key verification failed: the key [127.0.0.1]:{server.port} showed does not " \
                   f"match ~/.ssh/known_hosts" in str(info.value), policy
        assert known_hosts().read_text() == wrong + "\n"

        # accept-new, host not listed: connected, and the host's real key added, once.
        known_hosts().write_text("")
        for _ in range(2):
            exp = make_experiment(REPORTING_TRIAL, SPACE, concurrency=1, max_trials=1)
            exp.config.training_service = remote_service(server, tmp_path, hostKeyCheck="accept-new")
            assert exp.run(port=0) is True
        assert known_hosts().read_text() == server.known_hosts_line()

        # The key it added is the one a strict check then accepts.
        exp = make_experiment(REPORTING_TRIAL, SPACE, concurrency=1, max_trials=1)
        exp.config.training_service = remote_service(server, tmp_path)
        assert exp.run(port=0) is True
    finally:
        server.kill()


# -- process identity on the machine ---------------------------------------------------------------
def test_clean_up_on_resume_never_signals_a_pid_another_process_got(sshd, tmp_path):
    """A resumed manager kills the groups its predecessor's trials left on a machine, but not a
    process that got a group's number since (its start differs, or, for a record of an earlier
    version, any live one)."""
    import asyncio
    from nni.experiment.config import ExperimentConfig
    from nni.runtime.process import start_ticks
    from nni.training_service.base import InterruptedTrial, ServiceContext
    from nni.training_service.remote import RemoteTrainingService

    config = ExperimentConfig.from_dict({
        "searchSpace": SPACE, "trialCommand": "true", "trialCodeDirectory": str(tmp_path),
        "trialConcurrency": 1, "tuner": {"name": "Random"}, "trainingService": remote_service(sshd, tmp_path)})
    config = config.canonical_copy()
    machine = f"{getpass.getuser()}@127.0.0.1:{sshd.port}"

    def group() -> subprocess.Popen:
        return subprocess.Popen(["sleep", "600"], start_new_session=True)

    left, recycled, recycled_old = group(), group(), group()
    records = {   # what the previous manager wrote for each trial
        "left": f"{machine} {left.pid} /r {start_ticks(left.pid)}",              # its trial, still running
        "recycled": f"{machine} {recycled.pid} /r {int(start_ticks(recycled.pid)) - 1}",
        "recycledold": f"{machine} {recycled_old.pid} /r",                       # no start recorded
    }
    trials = []
    for trial_id, record in records.items():
        trial_dir = tmp_path / "trials" / trial_id
        trial_dir.mkdir(parents=True)
        if trial_id == "recycledold":   # an experiment of an earlier version kept it in the trial's directory
            (trial_dir / "trial.remote").write_text(record + "\n")
            trials.append(InterruptedTrial(trial_id, str(trial_dir)))
        else:                           # the store keeps it with the attempt
            trials.append(InterruptedTrial(trial_id, str(trial_dir), record))

    async def clean_up() -> None:
        service = RemoteTrainingService(ServiceContext.from_config(
            config, experiment_id="resumed", experiment_dir=tmp_path, port=free_port()))
        await service.start()
        try:
            await service.cleanup_interrupted(trials)
        finally:
            await service.stop()

    try:
        asyncio.run(clean_up())
        assert left.wait(60) < 0   # signalled (SIGUSR1 asks a launcher to end its tree; then SIGKILL)
        assert recycled.poll() is None and recycled_old.poll() is None
    finally:
        for process in (left, recycled, recycled_old):
            process.kill()
            process.wait()


# -- the machine's spawner --------------------------------------------------------------------------
#: Records its launcher's parent (the process that started the trial's group on the machine), its
#: own pid and a double-forked daemon's, then runs until it is ended.
SPAWNED_TRIAL = """
    import os, signal, time, nni
    nni.get_next_parameter()
    out = os.environ["NNI_OUTPUT_DIR"]
    with open("/proc/%d/stat" % os.getpgid(0)) as f:   # the group's leader: the trial's launcher
        starter = int(f.read().rsplit(")", 1)[1].split()[1])
    daemon_r, daemon_w = os.pipe()
    if os.fork() == 0:            # a daemon: fork, setsid, fork, exit; it ignores SIGTERM
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(daemon_w, str(os.getpid()).encode())
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()
    daemon = os.read(daemon_r, 100).decode()
    with open(os.path.join(out, "tmp"), "w") as f:
        f.write(f"{starter} {os.getpid()} {daemon}")
    os.rename(os.path.join(out, "tmp"), os.path.join(out, "started"))
    time.sleep(120)
"""


def test_one_spawner_per_machine_starts_every_trial_and_a_killed_manager_leaves_nothing(sshd, tmp_path):
    """The trials on a machine are all started by one process there (the machine's spawner,
    ``_subreaper.py --serve`` over one SSH channel), not one SSH session each; when the manager
    is SIGKILLed, every trial, the daemon each double-forked, and the spawner end there."""
    import yaml
    from test_nnictl import nnictl

    code = tmp_path / "exp"
    code.mkdir()
    (code / "trial.py").write_text(textwrap.dedent(SPAWNED_TRIAL))
    remote_home = tmp_path / "remote-home"
    config = {"searchSpace": SPACE, "trialCommand": "python3 trial.py", "trialCodeDirectory": str(code),
              "trialConcurrency": 3, "maxTrialNumber": 3, "tuner": {"name": "Random"},
              "experimentWorkingDirectory": str(tmp_path / "experiments"),
              "trainingService": remote_service(sshd, tmp_path)}
    (code / "config.yml").write_text(yaml.safe_dump(config))
    out = nnictl("create", "--config", str(code / "config.yml"), "--port", "0")
    assert out.returncode == 0, out.stderr
    exp_id = re.search(r"Experiment (\w+) started", out.stdout).group(1)
    entry = json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{exp_id}.json").read_text())
    processes: list[int] = []
    try:
        started = wait_for(lambda: (lambda f: f if len(f) == 3 else None)(
            list((remote_home / exp_id).glob("trials/*/started"))), 120, "three running trials")
        records = [[int(p) for p in path.read_text().split()] for path in started]
        starters = {record[0] for record in records}
        processes = [p for record in records for p in record]
        assert all(len(record) == 3 for record in records), records   # starter, trial, its daemon
        # One process there started all three trials: the spawner, a python3 serving requests.
        assert len(starters) == 1, records
        (spawner,) = starters
        assert Path(f"/proc/{spawner}/cmdline").read_bytes().split(b"\0")[-2] == b"--serve"
        processes.append(spawner)
        os.kill(entry["pid"], signal.SIGKILL)
        # The connection dies with the manager: the spawner's stdin closes, and it ends every trial.
        wait_for(lambda: not any(pid_alive(p) for p in processes), 60, "the dead manager's trials to end")
    finally:
        nnictl("stop", exp_id)
        for pid in processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


#: Attempt 1 records its launcher's parent (the machine's spawner), its pid and a child's, then
#: blocks; later attempts report x at once.
SPAWNER_KILLED_TRIAL = """
    import os, pathlib, subprocess, sys, time, nni
    p = nni.get_next_parameter()
    out = pathlib.Path(os.environ["NNI_OUTPUT_DIR"])
    if int(os.environ["NNI_TRIAL_ATTEMPT"]) == 1:
        with open("/proc/%d/stat" % os.getpgid(0)) as f:
            starter = f.read().rsplit(")", 1)[1].split()[1]
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (out / "tmp").write_text(f"{starter} {os.getpid()} {child.pid}")
        (out / "tmp").rename(out / "started")
        time.sleep(120)
    nni.report_final_result(p["x"])
"""


def test_a_killed_spawner_loses_its_trials_ends_them_and_the_next_attempt_runs(make_experiment, sshd, tmp_path):
    """The machine's spawner is SIGKILLed there (OOM killer, a stray kill) while a trial runs:
    the attempt is lost (not left running unseen), its processes end on the machine, and the
    trial's next attempt runs on the same, still connected machine."""
    exp = remote_experiment(make_experiment, sshd, tmp_path, SPAWNER_KILLED_TRIAL, concurrency=1, max_trials=1)
    exp.start(port=0)
    try:
        (job,) = wait_for(lambda: exp.list_trial_jobs("RUNNING"), 60, "the trial to run")
        started = tmp_path / "remote-home" / exp.id / "trials" / job.trialJobId / "started"
        spawner, *trial_pids = map(int, wait_for(lambda: started.exists() and started.read_text(), 60,
                                                 "attempt 1 to start").split())
        assert Path(f"/proc/{spawner}/cmdline").read_bytes().split(b"\0")[-2] == b"--serve"
        os.kill(spawner, signal.SIGKILL)
        assert exp.wait(timeout=90) == "DONE"
        job = exp.get_trial_job(job.trialJobId)
        one, two = job.attempts
        assert (one["status"], two["status"]) == ("LOST", "SUCCEEDED"), job.attempts
        assert "the trial spawner there ended without the trial's exit status" in one["reason"], one
        wait_for(lambda: not any(pid_alive(p) for p in trial_pids), 60, "the lost attempt's processes to end")
    finally:
        exp.stop()
