"""The local service's launchers, forked by one spawner per experiment (training_service/_subreaper.py).

Real experiments, real trial processes; the spawner is the real ``_subreaper.py --serve``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import pid_alive, wait_for

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def _ignored_signals(status_text: str) -> set[int]:
    mask = int(next(line.split()[1] for line in status_text.splitlines() if line.startswith("SigIgn:")), 16)
    return {sig for sig in range(1, 65) if mask & (1 << (sig - 1))}


def test_trial_commands_start_with_sigpipe_at_its_default(make_experiment):
    """A trial's shell starts as it would from a terminal: SIGPIPE not ignored (Python, which
    the launcher is, ignores it; an inherited 'ignore' makes ``yes | head`` print
    'Broken pipe' errors and loop-writing tools run on after their reader quit)."""
    exp = make_experiment("", SPACE, concurrency=1, max_trials=1)
    exp.config.trial_command = ('yes | head -n 1 >/dev/null; '
                                'cat /proc/self/status > "$NNI_OUTPUT_DIR/status"')
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    (trial_dir,) = (exp_dir / "trials").iterdir()
    ignored = _ignored_signals((trial_dir / "status").read_text())
    assert signal.SIGPIPE not in ignored and signal.SIGXFSZ not in ignored, ignored
    assert "Broken pipe" not in (trial_dir / "stderr").read_text()


def _spawner_pid() -> int:
    """The spawner: this process's child running ``_subreaper.py --serve`` (the manager runs in-process)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and b"--serve" in argv and any(a.endswith(b"_subreaper.py") for a in argv):
            return int(entry)
    raise AssertionError("no spawner among this process's children")


def test_a_trial_whose_spawner_died_ends_failed_and_nothing_of_it_runs_on(make_experiment):
    """If the spawner is killed (OOM killer, a stray kill), the trials it started do not run on
    unseen: they are killed with everything they started, and end FAILED with the reason."""
    trial = """
        import os, subprocess, sys, time, nni
        nni.get_next_parameter()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pids"), "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        time.sleep(300)
    """
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    pids_file = wait_for(lambda: next((p for p in (exp_dir / "trials").glob("*/pids")
                                       if len(p.read_text().split()) == 2), None), what="the trial's pids")
    pids = [int(p) for p in pids_file.read_text().split()]
    os.kill(_spawner_pid(), signal.SIGKILL)

    db = exp_dir / "db" / "nni.sqlite"

    def ended() -> tuple | None:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT status, message FROM trials WHERE status NOT IN "
                                "('WAITING', 'RUNNING')").fetchone()

    status, message = wait_for(ended, what="the trial's end")
    assert status == "FAILED" and "without an exit status" in message, (status, message)
    deadline = time.monotonic() + 60
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)


def _only_trial_dir(exp) -> Path:
    (trial_dir,) = (Path(exp.config.experiment_working_directory) / exp.id / "trials").iterdir()
    return trial_dir


def test_a_plain_trial_command_runs_without_a_shell_and_sees_what_the_shell_gave(make_experiment, tmp_path):
    """``python trial.py`` needs no shell: the launcher starts the program itself (dash would
    only fork and wait, ~1.5 ms of CPU a trial). What the program gets is what ``/bin/sh -c``
    gave it: its words (quotes removed), ``PWD`` the working directory, the trial's variables."""
    trial = """
        import json, os, sys, nni
        nni.get_next_parameter()
        parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "seen.json"), "w") as f:
            json.dump({"argv": sys.argv, "pwd": os.environ.get("PWD"), "cwd": os.getcwd(),
                       "trial": os.environ.get("NNI_TRIAL_JOB_ID"),
                       "parent": [a.decode() for a in parent if a]}, f)
        nni.report_final_result(1.0)
    """
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=1)
    exp.config.trial_command += " 'two words' \"\" plain"
    assert exp.run(port=0) is True
    trial_dir = _only_trial_dir(exp)
    seen = json.loads((trial_dir / "seen.json").read_text())
    assert seen["argv"] == ["trial.py", "two words", "", "plain"]
    assert seen["pwd"] == seen["cwd"] == str(tmp_path / "code")
    assert seen["trial"] == trial_dir.name
    # the parent is the trial's launcher (the forked spawner), not /bin/sh
    assert any(a.endswith("_subreaper.py") for a in seen["parent"]), seen["parent"]


@pytest.mark.parametrize("suffix", ["", "; exit $?"], ids=["no shell", "shell"])
def test_a_trial_killed_by_a_signal_ends_as_under_the_shell(make_experiment, suffix):
    """With or without the shell, a program killed by signal N ends its trial 'exit code 128+N'
    with dash's message ('Segmentation fault') in the stderr shown."""
    trial = """
        import os, signal, nni
        nni.get_next_parameter()
        os.kill(os.getpid(), signal.SIGSEGV)
    """
    exp = make_experiment(trial, SPACE, concurrency=1, max_trials=1)
    exp.config.trial_command += suffix
    exp.run(port=0)
    db = Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite"
    with sqlite3.connect(db) as conn:
        status, message = conn.execute("SELECT status, message FROM trials").fetchone()
    assert status == "FAILED" and message.startswith("exit code 139") and "Segmentation fault" in message, message


def test_a_plain_command_the_system_cannot_run_is_left_to_the_shell(make_experiment, tmp_path):
    """A program that is not found, or a script without ``#!``, goes to the shell as before:
    it says what is wrong (exit code 127) or runs the script itself."""
    script = tmp_path / "code" / "run-me"
    exp = make_experiment("", SPACE, concurrency=1, max_trials=1)
    script.write_text('echo "from a script without #!: $NNI_TRIAL_JOB_ID" > "$NNI_OUTPUT_DIR/out"\n')
    script.chmod(0o755)
    exp.config.trial_command = "./run-me"
    assert exp.run(port=0) is True
    assert _only_trial_dir(exp).joinpath("out").read_text().startswith("from a script without #!: ")


def _dash_words(arguments: str) -> list[str]:
    """The words /bin/sh makes of ``arguments`` (after a program name), as it passes them on."""
    out = subprocess.run(["/bin/sh", "-c", "printf '[%s]' " + arguments], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout[1:-1].split("][") if out.stdout else []


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab1-_./:,+=@%^ '\"", max_size=24))
def test_the_words_of_a_plain_command_are_the_shells(arguments):
    """The launcher splits a plain command itself only where dash would make the same words of it."""
    from nni.training_service._subreaper import _plain_words
    words = _plain_words("printf " + arguments)
    if words is None:   # not plain (an unclosed quote): left to the shell
        return
    assert words[0] == "printf"
    # printf with no format argument beyond '[%s]' prints one '[]' for no words: compare the words given
    assert [f"[{w}]" for w in words[1:]] == [f"[{w}]" for w in _dash_words(arguments)] or \
        (not words[1:] and _dash_words(arguments) == [""]), (arguments, words)
