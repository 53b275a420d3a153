"""A process is (pid, start time): a number the system gave to another process since is never
signalled, and the experiment's secret goes only to the manager that registered.

Real processes throughout: registry entries are written by the process they name (or name a
live process that is not the manager), the listener on a dead manager's port is a real socket
server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_for


def nnictl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nni.cli", *args], capture_output=True, text=True, timeout=timeout)


class Listener:
    """A plain HTTP-ish server on 127.0.0.1 that keeps every request it gets and answers ``{}``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                                 b"Connection: close\r\n\r\n{}")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def register_and_exit(tmp_path: Path, experiment_id: str, port: int) -> Path:
    """A manager that registered on ``port`` (its secret in its directory) and died without cleaning up."""
    exp_dir = tmp_path / "experiments" / experiment_id
    script = textwrap.dedent(f"""
        import time
        from nni.manager import registry
        from nni.manager.secret import load_or_create_secret, private_dir
        import os
        private_dir({str(exp_dir)!r})
        load_or_create_secret({str(exp_dir)!r})
        registry.update_entry({experiment_id!r}, name="dead", port={port}, pid=os.getpid(),
                              dir={str(exp_dir)!r}, status="RUNNING", start_time=time.time() * 1000)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    return exp_dir


def write_entry(experiment_id: str, **fields) -> None:
    """A registry entry as a manager wrote it, for tests whose pid must be another process's."""
    directory = Path(os.environ["NNI_NG_HOME"]) / "experiments"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{experiment_id}.json"
    path.write_text(json.dumps({"id": experiment_id, **fields}))
    os.chmod(path, 0o600)


def other_start(pid: int) -> str:
    """A start time that is not ``pid``'s: the manager that had the number started earlier."""
    from nni.runtime.process import start_ticks
    return str(int(start_ticks(pid)) - 1)


@pytest.fixture
def sleeper():
    """A live process that is not a manager (what got a dead manager's pid)."""
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


# -- item 3: the secret goes only to the manager that registered ---------------------------------
def test_a_dead_managers_secret_is_not_sent_to_what_listens_on_its_port_now(tmp_path):
    from nni.experiment import rest
    listener = Listener()
    try:
        exp_dir = register_and_exit(tmp_path, "deadmgr1", listener.port)
        secret = (exp_dir / "secret").read_text().strip()
        assert rest.get(listener.port, "/check-status") == {}
        assert "?token=" not in rest.webui_url(listener.port)
    finally:
        listener.close()
    assert listener.requests and all(secret.encode() not in r and b"authorization" not in r.lower()
                                     for r in listener.requests), listener.requests


def test_a_secret_is_not_sent_when_the_managers_pid_now_belongs_to_another_process(tmp_path, sleeper):
    from nni.experiment import rest
    from nni.manager.secret import load_or_create_secret
    listener = Listener()
    exp_dir = tmp_path / "experiments" / "recycled"
    secret = load_or_create_secret(exp_dir)
    write_entry("recycled", port=listener.port, pid=sleeper.pid, pid_start=other_start(sleeper.pid),
                dir=str(exp_dir), status="RUNNING", start_time=time.time() * 1000)
    try:
        assert rest.get(listener.port, "/check-status") == {}
    finally:
        listener.close()
    assert listener.requests and all(secret.encode() not in r for r in listener.requests), listener.requests


def test_a_secret_file_others_could_read_or_wrote_is_not_reused(tmp_path):
    from nni.manager.secret import load_or_create_secret
    exp_dir = tmp_path / "exp"
    first = load_or_create_secret(exp_dir)
    assert load_or_create_secret(exp_dir) == first          # resume: its own secret again
    os.chmod(exp_dir / "secret", 0o644)                      # readable by every user for a while
    second = load_or_create_secret(exp_dir)
    assert second != first and (os.stat(exp_dir / "secret").st_mode & 0o777) == 0o600
    if os.geteuid() == 0:
        os.chown(exp_dir / "secret", 65534, 65534)           # a file someone else put there
        os.chmod(exp_dir / "secret", 0o600)
        third = load_or_create_secret(exp_dir)
        assert third not in (first, second) and os.stat(exp_dir / "secret").st_uid == 0


# -- items 5 and 6: nnictl stop ------------------------------------------------------------------
def test_nnictl_stop_never_signals_a_process_that_got_the_managers_pid(tmp_path, sleeper):
    write_entry("recycled", port=1, pid=sleeper.pid, pid_start=other_start(sleeper.pid),
                dir=str(tmp_path / "experiments" / "recycled"), status="RUNNING", start_time=time.time() * 1000)
    out = nnictl("stop", "recycled")
    assert out.returncode == 0 and "is not running" in out.stdout, out
    out = nnictl("stop", "--all")
    assert out.returncode == 0 and "No experiment is running" in out.stdout, out
    # A SIGTERM sent by nnictl was delivered before it returned.
    assert sleeper.poll() is None, "the process that got the manager's pid was signalled"
    listing = nnictl("experiment", "list", "--all")
    assert "STOPPED" in listing.stdout, listing


def test_nnictl_stop_says_so_when_the_manager_does_not_end(tmp_path, monkeypatch, capsys):
    """A manager that neither answers nor ends on SIGTERM: no 'stopped', exit status 1, the pid named."""
    from nni.cli import _commands
    from nni.cli.__main__ import main
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    exp_dir = tmp_path / "experiments" / "stuck"
    ready = tmp_path / "ready"
    stuck = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, time
        from nni.manager import registry
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        registry.update_entry("stuck", port={port}, pid=os.getpid(), dir={str(exp_dir)!r}, status="RUNNING",
                              start_time=time.time() * 1000)
        open({str(ready)!r}, "w").close()
        time.sleep(600)
    """)])
    try:
        wait_for(ready.exists, what="the stuck manager to register")
        monkeypatch.setattr(_commands, "STOP_WAIT_SECONDS", 3.0, raising=False)
        started = time.monotonic()
        code = main(["stop", "stuck"])
        out = capsys.readouterr()
        assert code == 1, out
        assert "stopped." not in out.out and "did not stop" in out.err and str(stuck.pid) in out.err, out
        assert stuck.poll() is None and time.monotonic() - started < 25
    finally:
        stuck.kill()
        stuck.wait()


# -- a resume ends what a dead manager's local trials left, and nothing else -----------------------
def test_a_resume_kills_the_recorded_trial_groups_and_spares_a_recycled_pid(tmp_path):
    """The local service's clean-up after a crash: the process a trial's attempt recorded in the
    store (pid and start) has its group killed; a pid that now belongs to another process (its
    start differs) is left alone; an experiment of an earlier version kept it in ``trial.pid``."""
    import asyncio
    import signal

    from nni.experiment.config import ExperimentConfig
    from nni.runtime.process import start_ticks
    from nni.training_service.base import InterruptedTrial, ServiceContext
    from nni.training_service.local import LocalTrainingService

    def group() -> subprocess.Popen:   # a trial's process group: its leader and a child
        return subprocess.Popen(["/bin/sh", "-c", "sleep 600 & wait"], start_new_session=True)

    left, legacy, recycled = group(), group(), group()
    try:
        trials = []
        for name, process in (("left", left), ("legacy", legacy), ("recycled", recycled)):
            trial_dir = tmp_path / "trials" / name
            trial_dir.mkdir(parents=True)
            record = f"{process.pid} {start_ticks(process.pid) if name != 'recycled' else other_start(process.pid)}"
            if name == "legacy":
                (trial_dir / "trial.pid").write_text(record)
                trials.append(InterruptedTrial(name, str(trial_dir)))
            else:
                trials.append(InterruptedTrial(name, str(trial_dir), record))
        config = ExperimentConfig.from_dict({
            "searchSpace": {"x": {"_type": "choice", "_value": [1]}}, "trialCommand": "true",
            "trialCodeDirectory": str(tmp_path), "trialConcurrency": 1, "tuner": {"name": "Random"},
            "trainingService": {"platform": "local"}}).canonical_copy()
        service = LocalTrainingService(ServiceContext.from_config(
            config, experiment_id="resumed", experiment_dir=tmp_path, port=1))

        async def clean_up() -> None:
            await service.start()
            try:
                await service.cleanup_interrupted(trials)
            finally:
                await service.stop()

        asyncio.run(clean_up())
        assert left.wait(60) == -signal.SIGKILL
        assert legacy.wait(60) == -signal.SIGKILL
        time.sleep(0.5)   # what a wrong kill would need to land
        assert recycled.poll() is None, "a process whose start differs from the record was killed"
    finally:
        for process in (left, legacy, recycled):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
