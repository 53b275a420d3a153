"""nnictl and the Python API tell the truth about an experiment's life (issue 13).

One status everywhere (list, status, show, check-status, view), an experiment whose trials
all fail says so (and stops early), resume comes back on its port, ``trial ls --head`` ranks
final results in the manager's direction, a busy port leaves nothing behind, the store's
multi-row writes are transactions, and ``top`` behaves in a pipe.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import wait_for, write_config
from nni.experiment import rest
from test_nnictl import NNICTL, nnictl, wait_done
from test_nnictl_lifecycle import create


@pytest.fixture
def config_file(write, tmp_path):
    write("exp/trial.py", """
        import nni
        p = nni.get_next_parameter()
        nni.report_final_result(p["x"])
    """)

    def config(**overrides) -> Path:
        data = {
            "experimentName": "truth",
            "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
            "trialCommand": f"{sys.executable} trial.py",
            "trialCodeDirectory": str(tmp_path / "exp"),
            "trialConcurrency": 1,
            "maxTrialNumber": 2,
            "experimentWorkingDirectory": str(tmp_path / "experiments"),
            "tuner": {"name": "Random", "classArgs": {"seed": 7}},
            "trainingService": {"platform": "local"},
        }
        return write_config(tmp_path / "exp", data, **overrides)
    return config


def listed(exp_id: str) -> dict[str, str]:
    """The row of ``nnictl experiment list --all`` for ``exp_id``, by column."""
    out = nnictl("experiment", "list", "--all")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header, rule = lines[0], lines[1]
    # Columns are separated by two spaces under a rule of dashes: cut each row at the rule's gaps.
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    names = [header[a:b + 2].strip() for a, b in spans]
    for line in lines[2:]:
        cells = [line[a:(spans[i + 1][0] if i + 1 < len(spans) else None)].strip() for i, (a, _) in enumerate(spans)]
        if cells[0] == exp_id:
            return dict(zip(names, cells))
    raise AssertionError(f"{exp_id} not listed:\n{out.stdout}")


def status_line(exp_id: str) -> str:
    out = nnictl("experiment", "status", exp_id)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- item 3, 5 and 9: one status everywhere, real CREATED/RESUMED/ENDED, resume on its own port ----------
def test_list_status_show_and_check_status_agree_through_done_stop_view_and_resume(config_file):
    exp_id, port = create(config_file())
    assert wait_done(port) == "DONE"
    # DONE but still serving: every command says DONE (list used to say RUNNING).
    assert rest.get(port, "/check-status")["status"] == "DONE"
    assert listed(exp_id)["STATUS"] == "DONE"
    assert status_line(exp_id).startswith(f"{exp_id}: DONE")
    assert json.loads(nnictl("experiment", "show", exp_id).stdout)["status"] == "DONE"
    row = listed(exp_id)
    created = row["CREATED"]
    assert not row["RESUMED"]                   # never resumed
    assert created and row["ENDED"]            # it has ended, though its manager still serves

    assert nnictl("stop", exp_id).returncode == 0
    assert listed(exp_id)["STATUS"] == "DONE" and status_line(exp_id).startswith(f"{exp_id}: DONE")

    out = nnictl("view", exp_id, "--port", "0")
    assert out.returncode == 0, out.stderr
    view_port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
    try:
        assert rest.get(view_port, "/check-status")["status"] == "VIEWED"
        assert rest.get(view_port, "/experiment")["status"] == "VIEWED"
        assert json.loads(nnictl("experiment", "show", exp_id).stdout)["status"] == "VIEWED"
        assert status_line(exp_id).startswith(f"{exp_id}: VIEWED")
        row = listed(exp_id)
        assert row["STATUS"] == "VIEWED" and row["CREATED"] == created and row["ENDED"]
    finally:
        assert nnictl("stop", exp_id).returncode == 0
    wait_for(lambda: listed(exp_id)["STATUS"] == "DONE", what="the view to end")

    # Resume without --port: the port it had (free again now), not 8080.
    time.sleep(1.1)   # so a CREATED showing the resume time would differ from the creation time
    out = nnictl("resume", exp_id)
    assert out.returncode == 0, out.stderr
    assert f"http://127.0.0.1:{port}" in out.stdout, out.stdout
    try:
        row = listed(exp_id)
        assert row["PORT"] == str(port) and row["CREATED"] == created     # its creation, not this resume
        assert row["RESUMED"] and row["RESUMED"] != created               # this resume, labelled
        assert row["STATUS"] == rest.get(port, "/check-status")["status"]
    finally:
        nnictl("stop", exp_id)


def test_resume_takes_a_free_port_when_its_own_is_busy(config_file):
    exp_id, port = create(config_file())
    assert wait_done(port) == "DONE"
    nnictl("stop", exp_id)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # its old connections may linger
        busy.bind(("127.0.0.1", port))
        busy.listen()
        out = nnictl("resume", exp_id)
    assert out.returncode == 0, out.stderr
    new_port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
    try:
        assert new_port != port and f"port {port}" in out.stdout and "in use" in out.stdout
        assert rest.get(new_port, "/experiment")["id"] == exp_id
    finally:
        nnictl("stop", exp_id)


# -- item 4: all trials failed -----------------------------------------------------------------
def test_an_experiment_whose_trials_all_failed_says_so_everywhere(config_file):
    exp_id, port = create(config_file(trialCommand="nosuchcommand_xyz", maxTrialNumber=3))
    assert wait_done(port) == "DONE"          # fewer than maxFailedTrialsAtStart (5): it runs its budget
    checked = rest.get(port, "/check-status")
    assert checked["errors"] == []
    [warning] = checked["warnings"]
    assert re.fullmatch(r"all 3 trials failed; last: exit code 127: .*nosuchcommand_xyz.*not found", warning), warning
    assert rest.get(port, "/progress")["warnings"] == [warning]
    assert f"warning: {warning}" in status_line(exp_id)
    nnictl("stop", exp_id)
    # Stopped: read from the store, the same words.
    assert f"warning: {warning}" in status_line(exp_id)


def test_the_first_failures_stop_the_experiment_and_run_says_why_on_its_last_line(make_experiment, capsys):
    exp = make_experiment("raise SystemExit('no data file at /nowhere/data.csv')\n",
                          {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency=1, max_trials=20,
                          max_failed_trials_at_start=2)
    assert exp.run(port=0) is False
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Experiment failed: the first 2 trials all failed"), err[-3:]
    assert err[-1].endswith("last: exit code 1: no data file at /nowhere/data.csv")
    assert "maxFailedTrialsAtStart" in err[-1]
    from test_local_experiment import exp_jobs_after_run
    jobs = exp_jobs_after_run(exp)
    assert [j.status for j in jobs] == ["FAILED", "FAILED"]       # 18 trials not wasted


def test_all_failed_under_the_limit_ends_done_with_a_warning_on_runs_last_line(make_experiment, capsys):
    exp = make_experiment("import sys; sys.exit(3)\n", {"x": {"_type": "uniform", "_value": [0, 1]}},
                          concurrency=2, max_trials=3)
    assert exp.run(port=0) is True
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "Warning: all 3 trials failed; last: exit code 3 (stderr was empty)", err[-3:]


def test_failures_after_a_success_or_with_the_check_off_do_not_stop_the_experiment(make_experiment, tmp_path):
    # The first trial succeeds, the rest fail: not a broken setup, so the budget is spent.
    trial = """
        import os, nni
        p = nni.get_next_parameter()
        if os.environ["NNI_TRIAL_SEQ_ID"] != "0":
            raise SystemExit(f"bad x {p['x']}")
        nni.report_final_result(p["x"])
    """
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = make_experiment(trial, space, concurrency=1, max_trials=5, max_failed_trials_at_start=2)
    assert exp.run(port=0) is True
    from test_local_experiment import exp_jobs_after_run
    assert [j.status for j in exp_jobs_after_run(exp)] == ["SUCCEEDED"] + ["FAILED"] * 4

    off = make_experiment("raise SystemExit(2)\n", space, concurrency=2, max_trials=6, max_failed_trials_at_start=0)
    off.config.experiment_working_directory = str(tmp_path / "off")
    assert off.run(port=0) is True
    assert [j.status for j in exp_jobs_after_run(off)] == ["FAILED"] * 6


# -- item 6: trial ls --head / --tail ----------------------------------------------------------
def test_trial_ls_head_ranks_final_results_in_the_managers_direction(config_file, write):
    # TPE minimizes unless told otherwise. Trials 0-2 report finals 3, 1, 2; trial 3 reports a
    # tempting intermediate -100 and keeps running: it has no result and must not be ranked.
    write("exp/ranked.py", """
        import os, time, nni
        nni.get_next_parameter()
        seq = int(os.environ["NNI_TRIAL_SEQ_ID"])
        if seq == 3:
            nni.report_intermediate_result(-100)
            time.sleep(300)
        nni.report_final_result([3.0, 1.0, 2.0][seq])
    """)
    exp_id, port = create(config_file(trialCommand=f"{sys.executable} ranked.py", maxTrialNumber=4,
                                      trialConcurrency=4, tuner={"name": "TPE"}))
    try:
        def ready() -> bool:
            jobs = rest.get(port, "/trial-jobs")
            return (sum(j["status"] == "SUCCEEDED" for j in jobs) == 3
                    and len(rest.get(port, "/metric-data")) == 4)
        wait_for(ready, what="three results and the running trial's intermediate value")
        head = nnictl("trial", "ls", exp_id, "--head", "2")
        assert head.returncode == 0, head.stderr
        rows = [line.split() for line in head.stdout.splitlines()[2:]]
        assert [(r[1], r[3]) for r in rows] == [("1", "1"), ("2", "2")], head.stdout
        tail = nnictl("trial", "ls", exp_id, "--tail", "1")
        assert [line.split()[1] for line in tail.stdout.splitlines()[2:]] == ["0"], tail.stdout
        assert "RUNNING" not in head.stdout + tail.stdout
    finally:
        nnictl("stop", exp_id)
    # Stopped: the same ranking, read from the store.
    head = nnictl("trial", "ls", exp_id, "--head", "2")
    assert [line.split()[1] for line in head.stdout.splitlines()[2:]] == ["1", "2"], head.stdout


# -- item 7: a busy port leaves nothing behind ---------------------------------------------------
def test_a_busy_port_leaves_no_directory_registry_entry_or_thread(config_file, make_experiment, tmp_path):
    from nni.manager.launcher import LaunchError
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = nnictl("create", "--config", str(config_file()), "--port", str(port))
        assert out.returncode == 1 and f"port {port} on 127.0.0.1 is not available" in out.stderr

        exp = make_experiment("import nni\n", {"x": {"_type": "uniform", "_value": [0, 1]}})
        with pytest.raises(LaunchError, match=f"port {port}"):
            exp.start(port=port)
    experiments = tmp_path / "experiments"
    assert not experiments.exists() or list(experiments.iterdir()) == []
    registry = Path(os.environ["NNI_NG_HOME"]) / "experiments"
    assert not registry.exists() or list(registry.glob("*.json")) == []
    assert "No experiments." in nnictl("experiment", "list", "--all").stdout
    import threading
    assert not any(t.name == "nni-manager" and t.is_alive() for t in threading.enumerate())


# -- item 8: multi-row writes are transactions -----------------------------------------------------
def test_a_crash_between_a_trials_two_inserts_leaves_neither(tmp_path):
    database = tmp_path / "db" / "nni.sqlite"
    # A real process dies (os._exit: no cleanup, no rollback) after the trial row is written
    # and before its parameter row is.
    code = textwrap.dedent(f"""
        import os
        from nni.manager.store import Store
        store = Store({str(database)!r})
        store.add_trial("keep1", 0, "/t/keep1", 0, {{"x": 1}})
        store.set_meta(a=1, b=2)
        store._insert_parameter = lambda *args, **kwargs: os._exit(9)
        store.add_trial("lost1", 1, "/t/lost1", 1, {{"x": 2}})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 9, out.stderr
    db = sqlite3.connect(database)
    assert [r[0] for r in db.execute("SELECT trial_id FROM trials")] == ["keep1"]
    assert [r[0] for r in db.execute("SELECT trial_id FROM parameters")] == ["keep1"]
    db.close()

    from nni.manager.store import Store
    store = Store(database)
    try:
        # A failing second insert (a parameter id already used) rolls the trial row back too.
        with pytest.raises(sqlite3.IntegrityError):
            store.add_trial("lost2", 2, "/t/lost2", 0, {"x": 3})
        assert store.trial("lost2") is None
        store.add_trial("next", 2, "/t/next", 5, {"x": 4})       # the store is usable afterwards
        assert store.parameters("next")[0]["parameters"] == {"x": 4}
    finally:
        store.close()


# -- item 9: top in a pipe ---------------------------------------------------------------------------
def test_top_piped_into_head_exits_quietly(config_file, write):
    write("exp/slow.py", "import nni, time\nnni.get_next_parameter()\ntime.sleep(300)\n")
    exp_id, port = create(config_file(trialCommand=f"{sys.executable} slow.py", maxTrialNumber=5))
    try:
        wait_for(lambda: any(j["status"] == "RUNNING" for j in rest.get(port, "/trial-jobs")), what="a trial")
        out = subprocess.run(["bash", "-o", "pipefail", "-c", f"'{NNICTL}' top {exp_id} --time 0.5 | head -2"],
                             capture_output=True, text=True, timeout=120, env=os.environ.copy())
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""
        first, second = out.stdout.splitlines()
        assert first.startswith(f"Experiment {exp_id}  RUNNING") and first.endswith("best -")
        assert second == "Trials: RUNNING 1"
    finally:
        nnictl("stop", exp_id)
