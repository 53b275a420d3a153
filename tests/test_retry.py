"""Attempts, retries and re-runs on the local platform: real trial processes, a real manager.

A trial that fails by itself is retried only with ``retryFailedTrials``; ended trials run
again in bulk (Python API, nnictl, after a resume) as new attempts of the same trials, and
their results reach the tuner. The lost-machine and lease cases run on the real remote and
Ray services (tests/test_remote.py, tests/test_ray.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import wait_for
from nni.experiment import rest
from nni.tuner import Tuner

SPACE = {"x": {"_type": "randint", "_value": [0, 1000]}}

#: Fails (exit 3) on its first attempt, reports x on later ones; leaves a marker per attempt in
#: its output directory (the same directory for every attempt).
FLAKY_TRIAL = """
    import os, pathlib, sys, nni
    p = nni.get_next_parameter()
    attempt = int(os.environ["NNI_TRIAL_ATTEMPT"])
    out = pathlib.Path(os.environ["NNI_OUTPUT_DIR"])
    (out / f"attempt-{attempt}").write_text(str(p["x"]))
    nni.report_intermediate_result(attempt)
    if attempt == 1:
        print("first attempt fails", file=sys.stderr)
        sys.exit(3)
    nni.report_final_result(p["x"])
"""


class RecordingTuner(Tuner):
    """Gives x = 10, 20, 30, ...; remembers every result it is given, and how."""

    def __init__(self) -> None:
        self.received: list[tuple[int, dict, float]] = []
        self.imported: list[dict] = []
        self.ended: list[tuple[int, bool]] = []
        self.count = 0

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        self.count += 1
        return {"x": 10 * self.count}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.received.append((parameter_id, parameters, value))

    def import_data(self, data):
        self.imported.extend(data)

    def trial_end(self, parameter_id, success, **kwargs):
        self.ended.append((parameter_id, success))


def attempts_of(job) -> list[dict]:
    return job.attempts


def test_failed_trial_is_retried_only_with_retry_failed_trials(make_experiment):
    tuner = RecordingTuner()
    exp = make_experiment(FLAKY_TRIAL, SPACE, tuner=tuner, concurrency=1, max_trials=1,
                          retry_failed_trials=True, max_trial_retries=1)
    exp.start(port=0)
    assert exp.wait(timeout=60) == "DONE"
    (job,) = exp.list_trial_jobs()
    assert job.status == "SUCCEEDED" and job.finalMetricData[0].data == 10
    first, second = attempts_of(job)
    assert (first["attempt"], first["status"], second["attempt"], second["status"]) == (1, "FAILED", 2, "SUCCEEDED")
    assert first["reason"].startswith("exit code 3") and first["machine"] == second["machine"] == "local"
    out = Path(job.trialDir)
    assert (out / "attempt-1").read_text() == (out / "attempt-2").read_text() == "10"   # same directory
    assert "first attempt fails" in (out / "stderr").read_text()   # earlier attempts' output is kept
    # The tuner sees one result and one end for the parameter set, the ordinary way.
    assert [(r[1], r[2]) for r in tuner.received] == [({"x": 10}, 10)] and not tuner.imported
    assert tuner.ended == [(job.hyperParameters[0].parameter_id, True)]
    # Intermediate results of both attempts are kept, numbered one after the other.
    metrics = exp.get_job_metrics(job.trialJobId)[job.trialJobId]
    assert [(m.type, m.sequence, m.data) for m in metrics if m.type == "PERIODICAL"] == \
        [("PERIODICAL", 0, 1), ("PERIODICAL", 1, 2)]
    exp.stop()

    # Without retryFailedTrials a trial that fails by itself is FAILED at once (a bug fails every attempt).
    plain = make_experiment(FLAKY_TRIAL, SPACE, tuner=RecordingTuner(), concurrency=1, max_trials=1,
                            experiment_working_directory=str(Path(exp.config.experiment_working_directory) / "b"))
    plain.start(port=0)
    assert plain.wait(timeout=60) == "DONE"
    (job,) = plain.list_trial_jobs()
    assert job.status == "FAILED" and [a["status"] for a in attempts_of(job)] == ["FAILED"]


def test_bulk_rerun_from_python_continues_a_done_experiment_and_feeds_the_tuner(make_experiment):
    tuner = RecordingTuner()
    exp = make_experiment(FLAKY_TRIAL, SPACE, tuner=tuner, concurrency=2, max_trials=3)
    exp.start(port=0)
    assert exp.wait(timeout=60) == "DONE"
    jobs = exp.list_trial_jobs()
    assert [j.status for j in jobs] == ["FAILED"] * 3 and not tuner.received
    ids = [j.trialJobId for j in jobs]

    # The budget is spent: re-runs that must fit in it are refused, naming the field.
    with pytest.raises(rest.RestError) as info:
        exp.rerun_trials(status="FAILED", extend_budget=False)
    assert info.value.status == 409 and "extendBudget" in str(info.value)
    with pytest.raises(rest.RestError) as info:
        exp.rerun_trials(status="RUNNING")
    assert info.value.status == 400 and "status" in str(info.value)
    with pytest.raises(rest.RestError) as info:
        exp.rerun_trials(["nosuch"])
    assert info.value.status == 404

    assert sorted(exp.rerun_trials(status="FAILED")) == sorted(ids)
    assert exp.wait(timeout=60) == "DONE"
    jobs = {j.trialJobId: j for j in exp.list_trial_jobs()}
    assert sorted(jobs) == sorted(ids)      # the same trials, none added: counted once
    for job in jobs.values():
        x = job.hyperParameters[0].parameters["x"]
        assert job.status == "SUCCEEDED" and job.finalMetricData[0].data == x
        assert [(a["attempt"], a["status"]) for a in attempts_of(job)] == [(1, "FAILED"), (2, "SUCCEEDED")]
        assert attempts_of(job)[1]["cause"] == "re-run requested by the user (it was FAILED)"
    # The tuner had been told these trials failed, so their results reach it as imported data.
    assert sorted(d["value"] for d in tuner.imported) == [10, 20, 30]
    assert all(d["parameter"] == {"x": d["value"]} for d in tuner.imported)
    assert exp.get_experiment_profile()["status"] == "DONE"
    # Nothing left to re-run; a succeeded trial is skipped with the reason.
    assert exp.rerun_trials(status="FAILED") == []
    assert exp.rerun_trials([ids[0]]) == []


def _write_nnictl_experiment(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(textwrap.dedent(FLAKY_TRIAL))
    (code / "recording_tuner.py").write_text(textwrap.dedent(f"""
        import json
        from nni.tuner import Tuner

        LOG = {str(tmp_path / 'tuner.log')!r}

        def log(kind, data):
            with open(LOG, "a") as f:
                f.write(json.dumps([kind, data]) + "\\n")

        class RecordingTuner(Tuner):
            def __init__(self):
                self.count = 0
            def update_search_space(self, search_space):
                pass
            def generate_parameters(self, parameter_id, **kwargs):
                self.count += 1
                return {{"x": 10 * self.count}}
            def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
                log("received", [parameters, value])
            def import_data(self, data):
                log("imported", data)
    """))
    config = {
        "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(code),
        "trialConcurrency": 3, "maxTrialNumber": 3, "searchSpace": SPACE,
        "experimentWorkingDirectory": str(tmp_path / "experiments"),
        "tuner": {"className": "recording_tuner.RecordingTuner", "codeDirectory": str(code)},
        "trainingService": {"platform": "local"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_bulk_rerun_from_nnictl_after_resume(tmp_path):
    from test_nnictl import nnictl

    config = _write_nnictl_experiment(tmp_path)
    out = nnictl("create", "--config", str(config), "--port", "0")
    assert out.returncode == 0, out.stderr
    exp_id = re.search(r"Experiment (\w+) started", out.stdout).group(1)
    try:
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
        wait_for(lambda: rest.get(port, "/check-status")["status"] == "DONE", 60, "the 3 trials to fail")
        assert nnictl("stop", exp_id).returncode == 0
        out = nnictl("resume", exp_id, "--port", "0")
        assert out.returncode == 0, out.stderr
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out.stdout).group(1))
        wait_for(lambda: rest.get(port, "/check-status")["status"] == "DONE", 60, "the resumed experiment")

        out = nnictl("trial", "rerun", exp_id, "--all-failed")
        assert out.returncode == 0, out.stderr
        assert re.match(rf"Re-running 3 trial\(s\) of experiment {exp_id} \(on top of maxTrialNumber\)", out.stdout)
        wait_for(lambda: rest.get(port, "/check-status")["status"] == "DONE"
                 and all(j["status"] == "SUCCEEDED" for j in rest.get(port, "/trial-jobs")), 60, "the re-runs")
        jobs = rest.get(port, "/trial-jobs")
        assert len(jobs) == 3
        for job in jobs:
            assert [(a["attempt"], a["status"]) for a in job["attempts"]] == [(1, "FAILED"), (2, "SUCCEEDED")]
        out = nnictl("trial", "rerun", exp_id, "--trial_id", jobs[0]["trialJobId"])
        assert out.returncode == 0 and "not re-run: it is SUCCEEDED" in out.stderr
        assert "No trial of experiment" in out.stdout
    finally:
        nnictl("stop", exp_id)
    # The resumed tuner never generated these parameters: the results reach it as imported data.
    log = [json.loads(line) for line in (tmp_path / "tuner.log").read_text().splitlines()]
    imported = sorted(d["value"] for kind, data in log if kind == "imported" for d in data)
    assert imported == [10, 20, 30]
    db = sqlite3.connect(tmp_path / "experiments" / exp_id / "db" / "nni.sqlite")
    assert db.execute("SELECT count(*) FROM metrics WHERE type='FINAL'").fetchone()[0] == 3


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page():
    import os
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: the web UI test drives Debian's chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(20_000)
        tab.on("dialog", lambda dialog: dialog.accept())   # the re-run confirmation
        yield tab
        browser.close()


def test_bulk_rerun_from_the_web_ui_button(make_experiment, page):
    from playwright.sync_api import expect
    tuner = RecordingTuner()
    exp = make_experiment(FLAKY_TRIAL, SPACE, tuner=tuner, concurrency=3, max_trials=3)
    exp.start(port=0)
    assert exp.wait(timeout=60) == "DONE"
    ids = [j.trialJobId for j in exp.list_trial_jobs("FAILED")]
    assert len(ids) == 3

    page.goto(f"{exp.webui_url}#/trials")   # the printed address, with its secret
    expect(page.locator("#rerun")).to_be_disabled()
    for trial_id in ids:
        page.locator(f"input.select-trial[data-id='{trial_id}']").check()
    expect(page.locator("#rerun")).to_have_text("Re-run (3)")
    page.click("#rerun")   # the confirmation dialog is accepted
    wait_for(lambda: exp.get_status() == "DONE" and all(j.status == "SUCCEEDED" for j in exp.list_trial_jobs()),
             60, "the re-runs to succeed")
    assert sorted(j.trialJobId for j in exp.list_trial_jobs()) == sorted(ids)
    assert sorted(d["value"] for d in tuner.imported) == [10, 20, 30]
    # The page follows on its own: the rows turn SUCCEEDED, the selection is cleared.
    for trial_id in ids:
        expect(page.locator(f"#trials-table tbody tr[data-trial-id='{trial_id}']")).to_contain_text("SUCCEEDED")
    expect(page.locator("#rerun")).to_be_disabled()
