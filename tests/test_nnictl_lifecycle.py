"""The experiment lifecycle through the real ``nnictl`` executable: resume after a crash, view,
update, export/import, trial and log commands, algo registration, and their error paths."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from conftest import pid_alive, wait_for, write_config
from nni.experiment import rest
from nni.manager import registry
from test_nnictl import nnictl, wait_done

STREAMING_TRIAL = """
import nni, time
p = nni.get_next_parameter()
for step in range(6):
    nni.report_intermediate_result(p["x"] * step)
    time.sleep(0.15)
nni.report_final_result(p["x"])
"""


@pytest.fixture
def make_config(write, tmp_path):
    write("exp/trial.py", STREAMING_TRIAL)
    write("exp/search_space.json", json.dumps({"x": {"_type": "uniform", "_value": [0, 1]}}))

    def config(**overrides) -> Path:
        data = {
            "experimentName": "lifecycle",
            "searchSpaceFile": "search_space.json",
            "trialCommand": f"{sys.executable} trial.py",
            "trialConcurrency": 2,
            "maxTrialNumber": 6,
            "experimentWorkingDirectory": str(tmp_path / "experiments"),
            "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 3}},
            "trainingService": {"platform": "local"},
        }
        return write_config(tmp_path / "exp", data, **overrides)
    return config


def create(config: Path) -> tuple[str, int]:
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 0, out.stderr
    exp_id, port = re.search(r"Experiment (\w+) (?:started|resumed).*http://127\.0\.0\.1:(\d+)",
                             out.stdout, re.S).groups()
    return exp_id, int(port)


def resume(exp_id: str) -> int:
    out = nnictl("resume", exp_id, "--port", "0")
    assert out.returncode == 0, out.stderr
    return int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))


def resume_to_done(exp_id: str) -> list[dict]:
    """Resume the experiment, let it finish, stop it: its trial jobs when it was DONE."""
    port = resume(exp_id)
    try:
        assert wait_done(port) == "DONE"
        return rest.get(port, "/trial-jobs")
    finally:
        nnictl("stop", exp_id)


def entry(exp_id: str) -> dict:
    return json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{exp_id}.json").read_text())


def database(exp_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{exp_dir / 'db' / 'nni.sqlite'}?mode=ro", uri=True)


def trial_pids(exp_dir: Path) -> list[int]:
    """The trials' launchers (process group leaders), as the store keeps them for a resume."""
    with closing(database(exp_dir)) as db:
        return [int(process.split()[0]) for (process,) in
                db.execute("SELECT process FROM attempts WHERE process IS NOT NULL")]




def read_lines_until(process: subprocess.Popen, done, timeout: float = 90.0) -> str:
    """Read ``process``'s stdout (on a thread) until ``done(text so far)``; return the text."""
    import threading
    lines: list[str] = []

    def pump() -> None:
        for line in process.stdout:
            lines.append(line)
    threading.Thread(target=pump, daemon=True).start()
    try:
        return wait_for(lambda: (lambda text: text if done(text) else None)("".join(lines)), timeout,
                        "the expected output")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the output so far:\n{''.join(lines)}") from None


def test_create_list_stop_resume_finish_export_and_import(make_config, write, tmp_path):
    # The trials hold before their final result until "go" exists, so the stop below always
    # comes while they run, however slow the machine is.
    go = tmp_path / "go"
    write("exp/held.py", STREAMING_TRIAL.replace("nni.report_final_result", (
        "import os\ndeadline = time.monotonic() + 120\n"
        f"while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
        "nni.report_final_result")))
    exp_id, port = create(make_config(maxTrialNumber=6, trialCommand=f"{sys.executable} held.py"))
    try:
        wait_for(lambda: len(rest.get(port, "/trial-jobs")) >= 2, what="trials to start")
        listing = nnictl("experiment", "list")
        assert listing.returncode == 0 and exp_id in listing.stdout and "RUNNING" in listing.stdout
        ls = nnictl("trial", "ls", exp_id)
        assert ls.returncode == 0 and "TRIAL" in ls.stdout and ls.stdout.count("RUNNING") >= 1
        # One trial killed by the user: it stays USER_CANCELED and counted after the resume.
        user_killed = next(j for j in rest.get(port, "/trial-jobs") if j["status"] == "RUNNING")["trialJobId"]
        assert nnictl("trial", "kill", exp_id, "--trial_id", user_killed).returncode == 0
        wait_for(lambda: sum(j["status"] == "RUNNING" for j in rest.get(port, "/trial-jobs")) >= 1,
                 what="a trial running after the kill")
    finally:
        stopped = nnictl("stop", exp_id)
    assert stopped.returncode == 0, stopped.stderr
    listing = nnictl("experiment", "list", "--all")
    assert re.search(rf"{exp_id}\s+lifecycle\s+STOPPED", listing.stdout), listing.stdout
    shown = json.loads(nnictl("experiment", "show", exp_id).stdout)
    assert shown["id"] == exp_id and shown["status"] == "STOPPED"
    done_before = succeeded_count(tmp_path / "experiments" / exp_id)
    with database(tmp_path / "experiments" / exp_id) as db:
        canceled = dict(db.execute("SELECT t.trial_id, p.parameters FROM trials t JOIN parameters p"
                                   " ON p.trial_id = t.trial_id WHERE t.status = 'USER_CANCELED'").fetchall())
    canceled.pop(user_killed)
    assert canceled, "the stop came while trials ran"

    go.write_text("")
    jobs = resume_to_done(exp_id)
    # The trials the stop canceled are resumed as a crash's are (issue 30): their parameters run
    # again in new trials and they do not count against maxTrialNumber; the one the user
    # killed counts, so 5 of the 6 succeed.
    by_id = {j["trialJobId"]: j for j in jobs}
    for trial_id in canceled:
        assert by_id[trial_id]["status"] == "SYS_CANCELED"
    assert by_id[user_killed]["status"] == "USER_CANCELED"
    counted = [j for j in jobs if j["status"] != "SYS_CANCELED"]
    assert len(counted) == 6 and sum(j["status"] == "SUCCEEDED" for j in counted) == 5
    assert succeeded_count(tmp_path / "experiments" / exp_id) == 5 >= done_before
    rerun = {json.dumps(json.loads(j["hyperParameters"][0])["parameters"], sort_keys=True)
             for j in counted if j["status"] == "SUCCEEDED"}
    for parameters in canceled.values():
        assert json.dumps(json.loads(parameters), sort_keys=True) in rerun
    with database(tmp_path / "experiments" / exp_id) as db:
        messages = {m for (m,) in db.execute("SELECT message FROM trials WHERE status = 'SYS_CANCELED'")}
    assert messages == {"canceled when the experiment stopped; its parameters run again in a new trial"}

    csv_path, json_path = tmp_path / "out.csv", tmp_path / "out.json"
    assert nnictl("experiment", "export", exp_id, "--type", "csv", "--filename", str(csv_path)).returncode == 0
    out = nnictl("experiment", "export", exp_id, "--type", "json", "--filename", str(json_path), "--intermediate")
    assert out.returncode == 0, out.stderr
    rows = json.loads(json_path.read_text())
    succeeded = [j for j in jobs if j["status"] == "SUCCEEDED"]
    assert len(rows) == len(succeeded)
    for row in rows:
        assert row["value"] == pytest.approx(row["parameter"]["x"])
        assert len(row["intermediate"]) == 6
    with csv_path.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and {"trialJobId", "x", "value"} <= set(table[0])

    # Import into a new experiment: its tuner is given the prior results.
    new_id, new_port = create(make_config(maxTrialNumber=2, trialConcurrency=1))
    try:
        out = nnictl("experiment", "import", new_id, "--filename", str(json_path))
        assert out.returncode == 0, out.stderr
        assert f"Imported {len(rows)} results" in out.stdout
        out = nnictl("experiment", "import", new_id, "--filename", str(csv_path))
        assert out.returncode == 0, out.stderr
        assert wait_done(new_port) == "DONE"
        events = database(tmp_path / "experiments" / new_id).execute(
            "SELECT message FROM events WHERE kind = 'DATA_IMPORTED'").fetchall()
        assert [e[0] for e in events] == [f"{len(rows)} results imported"] * 2
    finally:
        nnictl("stop", new_id)


def succeeded_count(exp_dir: Path) -> int:
    with database(exp_dir) as db:
        return db.execute("SELECT COUNT(*) FROM trials WHERE status = 'SUCCEEDED'").fetchone()[0]


def test_kill_dash_nine_then_resume_loses_nothing_and_counts_every_trial_once(make_config, tmp_path):
    exp_id, port = create(make_config(maxTrialNumber=8, trialConcurrency=3))
    exp_dir = tmp_path / "experiments" / exp_id
    manager_pid = entry(exp_id)["pid"]

    def streaming() -> bool:
        with database(exp_dir) as db:
            running = db.execute("SELECT COUNT(*) FROM trials WHERE status = 'RUNNING'").fetchone()[0]
            periodical = db.execute("SELECT COUNT(*) FROM metrics WHERE type = 'PERIODICAL'").fetchone()[0]
        return running >= 2 and periodical >= 3
    wait_for(streaming, what="running trials with streamed metrics")
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), what="the manager to die")
    # The reaper ends the dead manager's trials: no orphan keeps running.
    wait_for(lambda: not any(pid_alive(p) for p in trial_pids(exp_dir)), timeout=60, what="orphans to end")
    with database(exp_dir) as db:
        before = db.execute("SELECT trial_id, parameter_id, type, sequence, value FROM metrics ORDER BY id").fetchall()
        interrupted = db.execute("SELECT trial_id FROM trials WHERE status IN ('RUNNING', 'WAITING')").fetchall()
    assert before and interrupted
    assert "STOPPED" in nnictl("experiment", "list", "--all").stdout   # a dead pid shows as stopped

    jobs = resume_to_done(exp_id)
    with database(exp_dir) as db:
        after = db.execute("SELECT trial_id, parameter_id, type, sequence, value FROM metrics ORDER BY id").fetchall()
    assert after[:len(before)] == before                          # every metric reported before the kill
    states = {j["trialJobId"]: j["status"] for j in jobs}
    assert all(states[t] in ("SYS_CANCELED", "SUCCEEDED") for (t,) in interrupted)
    counted = [j for j in jobs if j["status"] != "SYS_CANCELED"]
    assert len(counted) == 8 and all(j["status"] == "SUCCEEDED" for j in counted)
    # Each interrupted parameter set ran again exactly once; nothing else repeated.
    params = [json.loads(h)["parameters"]["x"] for j in counted for h in j["hyperParameters"]]
    assert len(params) == len(set(params)) == 8
    canceled_params = {json.loads(h)["parameters"]["x"] for j in jobs if j["status"] == "SYS_CANCELED"
                       for h in j["hyperParameters"]}
    assert canceled_params <= set(params)
    assert not any(pid_alive(p) for p in trial_pids(exp_dir))


def test_view_serves_a_stopped_experiment_read_only(make_config, tmp_path):
    exp_id, port = create(make_config(maxTrialNumber=2))
    assert wait_done(port) == "DONE"
    nnictl("stop", exp_id)
    out = nnictl("view", exp_id, "--port", "0")
    assert out.returncode == 0, out.stderr
    view_port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
    try:
        assert len(rest.get(view_port, "/trial-jobs")) == 2
        assert rest.get(view_port, "/experiment")["status"] == "VIEWED"
        with pytest.raises(rest.RestError, match="409"):
            rest.put(view_port, "/experiment?update_type=TRIAL_CONCURRENCY", {"params": {"trialConcurrency": 3}})
        again = nnictl("view", exp_id, "--port", "0")
        assert again.returncode == 1 and "already viewed" in again.stderr
        ls = nnictl("trial", "ls", exp_id)
        assert ls.returncode == 0 and ls.stdout.count("SUCCEEDED") == 2
    finally:
        stopped = nnictl("stop", exp_id)
    assert stopped.returncode == 0
    wait_for(lambda: not entry(exp_id)["pid"] or not pid_alive(entry(exp_id)["pid"]), what="the viewer to end")
    assert re.search(rf"{exp_id}\s+lifecycle\s+DONE", nnictl("experiment", "list", "--all").stdout)


def test_update_trial_log_top_and_webui_commands_on_a_live_experiment(make_config, write, tmp_path):
    write("exp/slow.py", "import nni, time\np = nni.get_next_parameter()\nprint('hello from', nni.get_trial_id())\n"
                         "time.sleep(300)\nnni.report_final_result(p['x'])\n")   # runs until killed or stopped
    exp_id, port = create(make_config(trialCommand=f"{sys.executable} slow.py", trialConcurrency=1,
                                      maxTrialNumber=10))
    try:
        wait_for(lambda: any(j["status"] == "RUNNING" for j in rest.get(port, "/trial-jobs")), what="a trial")
        assert nnictl("update", "concurrency", exp_id, "--value", "3").returncode == 0
        wait_for(lambda: sum(j["status"] == "RUNNING" for j in rest.get(port, "/trial-jobs")) == 3,
                 what="three trials at once after the concurrency update")
        assert nnictl("update", "trialnum", exp_id, "--value", "4").returncode == 0
        assert nnictl("update", "duration", exp_id, "--value", "2h").returncode == 0
        space = write("exp/space2.json", json.dumps({"x": {"_type": "uniform", "_value": [5, 6]}}))
        assert nnictl("update", "searchspace", exp_id, "--filename", str(space)).returncode == 0
        params = rest.get(port, "/experiment")["params"]
        assert params["trialConcurrency"] == 3 and params["maxTrialNumber"] == 4
        assert params["maxExperimentDuration"] in (7200, "7200s", "2h")
        assert params["searchSpace"]["x"]["_value"] == [5, 6]

        running = next(j for j in rest.get(port, "/trial-jobs") if j["status"] == "RUNNING")
        wait_for(lambda: Path(running["trialDir"], "stdout").read_text().strip() != "", what="trial output")
        log = nnictl("log", "trial", exp_id, "--trial_id", running["trialJobId"])
        assert log.returncode == 0 and f"hello from {running['trialJobId']}" in log.stdout
        assert nnictl("log", "stdout", exp_id, "--path").stdout.strip().endswith(".log")
        assert nnictl("log", "stderr", exp_id).returncode in (0, 1)
        url = nnictl("webui", "url", exp_id)
        secret = Path(registry.get_entry(exp_id)["dir"], "secret").read_text().strip()
        assert url.returncode == 0 and url.stdout.strip() == f"http://127.0.0.1:{port}/?token={secret}"

        top = subprocess.Popen([sys.executable, "-m", "nni.cli", "top", exp_id, "--time", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = read_lines_until(top, lambda text: f"Experiment {exp_id}  RUNNING" in text
                                and running["trialJobId"] in text)
        top.send_signal(signal.SIGINT)
        top.communicate(timeout=60)
        assert "best -" in seen and "(-)" not in seen   # no result yet: no empty "best  (-)"

        killed = nnictl("trial", "kill", exp_id, "--trial_id", running["trialJobId"])
        assert killed.returncode == 0, killed.stderr
        assert rest.get(port, f"/trial-jobs/{running['trialJobId']}")["status"] == "USER_CANCELED"
        again = nnictl("trial", "kill", exp_id, "--trial_id", running["trialJobId"])
        assert again.returncode == 1 and "not running" in again.stderr
    finally:
        nnictl("stop", exp_id)


def test_error_paths_are_one_clear_line_and_exit_1(make_config, write, tmp_path):
    def fails(*args: str, expect: str) -> None:
        out = nnictl(*args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert expect in out.stderr, (args, out.stderr)
        assert out.stderr.strip().count("\n") == 0, out.stderr

    for command in (("resume", "nope"), ("view", "nope"), ("trial", "ls", "nope"), ("experiment", "show", "nope"),
                    ("experiment", "export", "nope", "--type", "csv", "--filename", "x.csv"),
                    ("log", "stdout", "nope"), ("webui", "url", "nope"), ("update", "concurrency", "nope",
                                                                           "--value", "2")):
        fails(*command, expect="no experiment with id 'nope'")
    fails("trial", "ls", expect="no experiment is running")

    exp_id, port = create(make_config(maxTrialNumber=1))
    assert wait_done(port) == "DONE"
    nnictl("stop", exp_id)
    fails("update", "concurrency", exp_id, "--value", "2", expect="is not running")
    fails("trial", "kill", exp_id, "--trial_id", "abc", expect="is not running")
    fails("experiment", "import", exp_id, "--filename", "x.json", expect="is not running")
    fails("webui", "url", exp_id, expect="nnictl view")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fails("resume", exp_id, "--port", str(busy.getsockname()[1]), expect="not available")
        fails("view", exp_id, "--port", str(busy.getsockname()[1]), expect="not available")

    live_id, live_port = create(make_config(maxTrialNumber=50, trialConcurrency=1))
    try:
        fails("resume", live_id, expect="already running")
        fails("update", "concurrency", live_id, "--value", "zero", expect="positive integer")
        fails("update", "concurrency", live_id, "--value", "0", expect="positive integer")
        fails("update", "duration", live_id, "--value", "soon", expect="maxExperimentDuration")
        fails("update", "searchspace", live_id, "--filename", str(tmp_path / "missing.json"), expect="missing.json")
        bad = write("bad.json", "[1, 2")
        fails("experiment", "import", live_id, "--filename", str(bad), expect="not valid JSON")
        wrong = write("wrong.json", json.dumps([{"params": {}}]))
        fails("experiment", "import", live_id, "--filename", str(wrong), expect="parameter")
        fails("trial", "kill", live_id, "--trial_id", "zzzzz", expect="no trial 'zzzzz'")
        fails("experiment", "delete", live_id, expect="is running")
        fails("create", "--config", str(make_config()), "--url_prefix", "/nni", expect="--url_prefix")
    finally:
        nnictl("stop", live_id)

    out = nnictl("experiment", "delete", exp_id)
    assert out.returncode == 0 and not (tmp_path / "experiments" / exp_id).exists()
    fails("experiment", "show", exp_id, expect="no experiment with id")


def test_a_registered_tuner_is_usable_by_name_and_listed(make_config, write, tmp_path, monkeypatch):
    write("algo/my_tuners.py", """
        from nni.tuner import Tuner

        class ConstantTuner(Tuner):
            def __init__(self, value=0.25):
                self.value = value
            def update_search_space(self, space):
                pass
            def generate_parameters(self, parameter_id, **kwargs):
                return {"x": self.value}
            def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
                pass
    """)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "algo"), os.environ.get("PYTHONPATH", "")]))
    meta = write("algo/meta.yml", "algoType: tuner\nbuiltinName: ConstantTuner\nclassName: my_tuners.ConstantTuner\n")
    out = nnictl("algo", "register", "--meta", str(meta))
    assert out.returncode == 0, out.stderr
    listing = nnictl("algo", "list").stdout
    assert re.search(r"ConstantTuner\s+tuner\s+registered\s+my_tuners.ConstantTuner", listing)
    assert re.search(r"TPE\s+tuner\s+built-in", listing)

    exp_id, port = create(make_config(maxTrialNumber=2, tuner={"name": "ConstantTuner",
                                                                  "classArgs": {"value": 0.75}}))
    try:
        assert wait_done(port) == "DONE"
        assert [r["parameter"]["x"] for r in rest.get(port, "/export-data")] == [0.75, 0.75]
    finally:
        nnictl("stop", exp_id)

    dup = nnictl("algo", "register", "--meta", str(meta))
    assert dup.returncode == 1 and "already registered" in dup.stderr
    clash = write("algo/tpe.yml", "algoType: tuner\nbuiltinName: tpe\nclassName: my_tuners.ConstantTuner\n")
    assert "built-in" in nnictl("algo", "register", "--meta", str(clash)).stderr
    missing = write("algo/missing.yml", "algoType: tuner\nbuiltinName: X\nclassName: nowhere.Tuner\n")
    assert "cannot import 'nowhere'" in nnictl("algo", "register", "--meta", str(missing)).stderr
    assert nnictl("algo", "unregister", "ConstantTuner").returncode == 0
    assert "ConstantTuner" not in nnictl("algo", "list").stdout
    gone = nnictl("algo", "unregister", "ConstantTuner")
    assert gone.returncode == 1 and "no registered algorithm" in gone.stderr


def test_resume_keeps_the_phases_of_a_multi_phase_experiment(make_config, write, tmp_path):
    write("exp/phased.py", """
        import nni, time
        for phase in range(3):
            p = nni.get_next_parameter()
            if p is None:
                break
            time.sleep(0.4)
            nni.report_final_result(p["x"])
    """)
    exp_id, port = create(make_config(trialCommand=f"{sys.executable} phased.py", multiPhase=True,
                                      trialConcurrency=2, maxTrialNumber=4))
    exp_dir = tmp_path / "experiments" / exp_id
    manager_pid = entry(exp_id)["pid"]

    def some_phases_done() -> bool:
        with database(exp_dir) as db:
            return db.execute("SELECT COUNT(*) FROM metrics WHERE type = 'FINAL'").fetchone()[0] >= 3
    wait_for(some_phases_done, what="finished phases")
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), what="the manager to die")
    with database(exp_dir) as db:
        finished_before = db.execute("SELECT parameter_id, trial_id, parameter_index FROM parameters "
                                     "WHERE status = 'SUCCEEDED' ORDER BY parameter_id").fetchall()

    port = resume(exp_id)
    try:
        assert wait_done(port) == "DONE"
        rows = rest.get(port, "/export-data")
        jobs = rest.get(port, "/trial-jobs")
    finally:
        nnictl("stop", exp_id)
    with database(exp_dir) as db:
        finished_after = db.execute("SELECT parameter_id, trial_id, parameter_index FROM parameters "
                                    "WHERE status = 'SUCCEEDED' ORDER BY parameter_id").fetchall()
        open_phases = db.execute("SELECT COUNT(*) FROM parameters WHERE status = 'SYS_CANCELED'").fetchone()[0]
    assert set(finished_before) <= set(finished_after)      # finished phases kept, same trial and phase
    assert open_phases >= 1                                  # the phases open at the kill are marked
    assert len(rows) == len(finished_after)
    # maxTrialNumber counts trial jobs (as NNI); interrupted jobs do not count, so 4 full jobs ran
    full = [j for j in jobs if j["status"] == "SUCCEEDED"]
    assert len(full) == 4 and all(len(j["hyperParameters"]) == 3 for j in full)
    assert any(j["status"] == "SYS_CANCELED" for j in jobs)
    for job in jobs:
        indices = [json.loads(h)["parameter_index"] for h in job["hyperParameters"]]
        assert indices == list(range(len(indices)))


def test_python_api_resume_and_view(make_experiment):
    from nni.experiment import Experiment
    exp = make_experiment(STREAMING_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency=1, max_trials=3)
    exp.start(port=0)
    wait_for(lambda: any(j.status == "SUCCEEDED" for j in exp.list_trial_jobs()), what="a finished trial")
    exp.stop()
    assert exp.config.tuner.name == "Random"          # start() left the user's config alone

    resumed = Experiment.resume(exp.id, port=0, wait_completion=False)
    try:
        assert resumed.wait(timeout=240) == "DONE"
        jobs = resumed.list_trial_jobs()
    finally:
        resumed.stop()
    assert sum(j.status in ("SUCCEEDED", "USER_CANCELED") for j in jobs) == 3

    viewer = Experiment.view(exp.id, port=0, non_blocking=True)
    try:
        assert len(viewer.list_trial_jobs()) == len(jobs)
        assert viewer.get_status() == "VIEWED"      # NNI's status of a read-only view
    finally:
        viewer.stop()
    with pytest.raises(ValueError, match="no experiment with id"):
        Experiment.resume("nope", port=0)
