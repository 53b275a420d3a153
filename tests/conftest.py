"""Shared fixtures: every test gets its own HOME, working directory, registry and experiment directory."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# A test run started in the background of a non-interactive shell (`pytest ... &`) has SIGINT
# ignored, and every process it starts would inherit that: the tests that end `nnictl top` or
# a foreground manager with Ctrl-C (SIGINT) need the default, as a terminal gives it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def nni_home(tmp_path, monkeypatch):
    """A private HOME, current directory and ``NNI_NG_HOME`` for each test.

    Nothing a test starts (nnictl, managers, trials: they inherit the environment) can
    write into the user's real ``~/nni-experiments`` or ``~/.nni-ng``.
    """
    user_home = tmp_path / "home"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    home = tmp_path / "nni-home"
    monkeypatch.setenv("NNI_NG_HOME", str(home))
    return home


@pytest.fixture
def write(tmp_path):
    """Write a dedented file under tmp_path and return its path."""
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path
    return _write


def write_config(directory: Path, data: dict, **overrides) -> Path:
    """Write ``data`` updated with ``overrides`` as a new YAML config file in ``directory``.

    Each call writes the next ``config-N.yml``, so a test may create several experiments.
    """
    import yaml
    path = directory / f"config-{len(list(directory.glob('config*')))}.yml"
    path.write_text(yaml.safe_dump({**data, **overrides}))
    return path


def nnictl_create(tmp_path: Path, trial_code: str, space: dict, *, tuner: str = "Random",
                  concurrency: int = 1, max_trials: int = 1, timeout: float = 120):
    """``nnictl create`` a local experiment running ``trial_code`` (dedented) as ``trial.py``.

    Returns the finished ``nnictl`` process (its output says the id and the web UI's URL).
    """
    import subprocess
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(textwrap.dedent(trial_code))
    config = write_config(tmp_path, {
        "searchSpace": space, "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(code), "trialConcurrency": concurrency, "maxTrialNumber": max_trials,
        "experimentWorkingDirectory": str(tmp_path / "experiments"), "tuner": {"name": tuner},
        "trainingService": {"platform": "local"}})
    return subprocess.run([sys.executable, "-m", "nni.cli", "create", "--config", str(config), "--port", "0"],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def make_experiment(tmp_path):
    """An Experiment whose trial code and working directory live in tmp_path; stopped afterwards."""
    from nni.experiment import Experiment
    created = []

    def _make(trial_code: str, space: dict, *, tuner=None, concurrency: int = 2, max_trials: int | None = 4,
              **fields) -> Experiment:
        code_dir = tmp_path / "code"
        code_dir.mkdir(exist_ok=True)
        (code_dir / "trial.py").write_text(textwrap.dedent(trial_code))
        exp = Experiment(tuner, "local") if tuner is not None else Experiment("local")
        exp.config.trial_command = f"{sys.executable} trial.py"
        exp.config.trial_code_directory = str(code_dir)
        exp.config.search_space = space
        exp.config.trial_concurrency = concurrency
        exp.config.max_trial_number = max_trials
        exp.config.experiment_working_directory = str(tmp_path / "experiments")
        if tuner is None:
            exp.config.tuner.name = "Random"
            exp.config.tuner.class_args = {"seed": 1}
        for key, value in fields.items():
            setattr(exp.config, key, value)
        created.append(exp)
        return exp

    yield _make
    for exp in created:
        exp.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float = 90.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned), failing after ``timeout`` s.

    The bound is generous on purpose: on a loaded machine (CI) a start can take many seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


#: A trial that starts a child process, writes "<own pid> <child pid>" to NNI_OUTPUT_DIR/pids, and sleeps.
TRIAL_WITH_CHILD = """
    import os, subprocess, sys, time, nni
    nni.get_next_parameter()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pids"), "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
"""


# A trial that double-forks a daemon (out of its process group, ignoring SIGTERM), reports,
# then ends; or, from sequence id {ends} on, keeps running.
DAEMON_TRIAL = """
    import os, signal, sys, time, nni
    nni.get_next_parameter()
    out = os.environ["NNI_OUTPUT_DIR"]
    if os.fork() == 0:            # the classic daemon: fork, setsid, fork, exit
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with open(os.path.join(out, "daemon.tmp"), "w") as f:
                f.write(str(os.getpid()))
            os.rename(os.path.join(out, "daemon.tmp"), os.path.join(out, "daemon.pid"))
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()
    while not os.path.exists(os.path.join(out, "daemon.pid")):
        time.sleep(0.05)
    nni.report_final_result(1.0)
    if nni.get_sequence_id() >= {ends}:
        time.sleep(120)
"""


def daemon_pid(trial_dir: str) -> int:
    """The pid of the daemon :data:`DAEMON_TRIAL` started in ``trial_dir`` (its output directory)."""
    path = Path(trial_dir, "daemon.pid")
    wait_for(path.exists, timeout=60, what="the daemon's pid file")
    return int(path.read_text())
