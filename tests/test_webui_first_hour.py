"""The web UI items of "the first hour" (issue 30), in Chromium against real experiments.

- A re-run trial shows its latest attempt (status, duration, curve), its earlier attempts one
  click away and labelled; ``nnictl trial ls`` and the trials table show the latest attempt's
  duration, not the first start to the last end with the idle time between.
- A FAILED trial says why in the trials table and its page, whose log opens on stderr.
- The overview warns of trials that ended without ``report_final_result()``.
- Every objective of a multi-objective experiment is shown (overview, top trials, trials
  table, trial page); the Pareto front is a page of the UI (nav bar, trial links, phone width,
  the old ``/pareto`` address redirects), and its "best" per objective is on the front.
- The trials filter names every bad term, shows no stale rows or count, and logs nothing in
  the browser's console.
- Chart legends: one entry per state in "Duration per trial", one per curve in
  "Intermediate results"; at 390 px the trials table's Metric column is on screen.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request

import pytest

from test_webui import CHROMIUM, WAIT_MS, Console, browser, expect, page, shot, ui, wait_until  # noqa: F401

# Attempt 1 reports 5 intermediate results, then fails with a traceback. Attempt 2 (a re-run)
# reports 5 others, waits for the test's go-ahead, and succeeds with a final result.
RERUN_TRIAL = """
    import os, sys, time, nni
    p = nni.get_next_parameter()
    attempt = int(os.environ["NNI_TRIAL_ATTEMPT"])
    for step in range(5):
        nni.report_intermediate_result(attempt * 10 + step)
    if attempt == 1:
        print("stdout of attempt 1")
        raise ValueError("boom in attempt 1")
    print("stderr of attempt 2", file=sys.stderr, flush=True)
    print("stdout of attempt 2", flush=True)
    deadline = time.time() + 240
    while not os.path.exists("go") and time.time() < deadline:
        time.sleep(0.1)
    nni.report_final_result(0.5)
"""

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}
IDLE_GAP = 6.0   # seconds between attempt 1's end and the re-run: no one's run time


def _format_duration_seconds(text: str) -> float:
    """Seconds from the UI's formatDuration ('4.2s', '12s', '1m 05s') or nnictl's ('0m 07s')."""
    text = text.strip()
    if re.fullmatch(r"[\d.]+s", text):
        return float(text[:-1])
    match = re.fullmatch(r"(?:(\d+)h )?(\d+)m (\d+)s", text)
    assert match, f"not a duration: {text!r}"
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _nnictl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nni.cli", *args], capture_output=True, text=True, timeout=120)


def _trial(exp, trial_id: str) -> dict:
    from nni.experiment import rest
    return rest.get(exp.port, f"/trial-jobs/{trial_id}")


def _curve(tab, selector: str) -> list[dict]:
    return tab.evaluate(f"() => document.querySelector('{selector}').data.map(t => ({{x: t.x, y: t.y, name: t.name}}))")


def test_a_failed_then_rerun_trial_shows_its_latest_attempt(make_experiment, page, tmp_path, shot):
    exp = make_experiment(RERUN_TRIAL, SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    e = expect()
    (trial_id,) = [j.trialJobId for j in wait_until(lambda: exp.list_trial_jobs(), what="the trial")]
    wait_until(lambda: _trial(exp, trial_id)["status"] == "FAILED", timeout=120, what="attempt 1 to fail")

    # A FAILED trial: the table says why (exit code and the exception), its page opens on stderr.
    page.goto(ui(exp, "#/trials"))
    reason = page.locator(f"#trials-table tr[data-trial-id='{trial_id}'] td[data-col='status'] .reason")
    e(reason).to_have_text("exit code 1 · ValueError: boom in attempt 1")
    page.goto(ui(exp, f"#/trial/{trial_id}"))
    e(page.locator("#trial-failure")).to_contain_text("exit code 1 · ValueError: boom in attempt 1")
    e(page.locator("#trial-log")).to_contain_text("ValueError: boom in attempt 1")
    assert page.locator(".tabs button.active").inner_text() == "stderr"
    e(page.locator("#trial-exit-code")).to_have_text("1")

    time.sleep(IDLE_GAP)   # the idle time between the attempts, on purpose
    assert exp.rerun_trials([trial_id]) == [trial_id]
    wait_until(lambda: _trial(exp, trial_id)["status"] == "RUNNING"
               and len([m for m in exp.get_job_metrics(trial_id).get(trial_id, [])]) >= 10,
               timeout=120, what="attempt 2 to report its 5 results")
    job = _trial(exp, trial_id)
    latest = job["attempts"][-1]
    assert [a["attempt"] for a in job["attempts"]] == [1, 2]
    # REST: the trial's startTime is the running attempt's, so its duration is that attempt's.
    assert job["startTime"] == latest["startTime"]
    # nnictl trial ls: RUNNING for as long as attempt 2 has run, not since attempt 1 began.
    before = time.time() * 1000
    out = _nnictl("trial", "ls", exp.id)
    after = time.time() * 1000
    assert out.returncode == 0, out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith(trial_id)]
    assert "RUNNING" in line
    shown = _format_duration_seconds(re.search(r"(\d+h )?\d+m \d+s", line).group(0))
    assert shown <= (after - latest["startTime"]) / 1000 + 1
    assert shown < IDLE_GAP, f"trial ls shows {shown} s: the first attempt's start and the idle gap are counted"

    (tmp_path / "code" / "go").write_text("")
    wait_until(lambda: _trial(exp, trial_id)["status"] == "SUCCEEDED", timeout=120, what="attempt 2 to succeed")
    job = _trial(exp, trial_id)
    first, latest = job["attempts"]
    assert first["status"] == "FAILED" and "boom in attempt 1" in first["reason"]
    latest_seconds = (job["endTime"] - latest["startTime"]) / 1000
    whole_seconds = (job["endTime"] - first["startTime"]) / 1000
    assert whole_seconds - latest_seconds >= IDLE_GAP

    # The trial's page: the latest attempt (status, duration, curve with steps 0-4), labelled.
    page.goto(ui(exp, f"#/trial/{trial_id}"))
    e(page.locator("#shown-attempt")).to_have_text(" attempt 2 of 2")
    e(page.locator("#trial-head .status").first).to_have_text("SUCCEEDED")
    e(page.locator("#chart-trial-intermediate[data-attempt='2'] .scatterlayer .trace")).to_have_count(1)
    shown = _format_duration_seconds(page.inner_text("#trial-duration"))
    assert abs(shown - latest_seconds) <= 1, (shown, latest_seconds)
    (curve,) = _curve(page, "#chart-trial-intermediate")
    assert curve["x"] == [0, 1, 2, 3, 4] and curve["y"] == [20, 21, 22, 23, 24]
    assert page.locator(".tabs button.active").inner_text() == "stdout"   # it succeeded in the end
    e(page.locator("#trial-log-info")).to_contain_text("all 2 attempts")
    # stdout, shared by the attempts too: the latest attempt's part only.
    e(page.locator("#trial-log[data-attempt='2']")).to_contain_text("stdout of attempt 2")
    assert "stdout of attempt 1" not in page.inner_text("#trial-log")
    from nni.experiment import rest
    part = rest.get(exp.port, f"/ui/trials/{trial_id}/log?stream=stdout&attempt=1")
    assert "stdout of attempt 1" in part["text"] and "stdout of attempt 2" not in part["text"], part
    # stderr, shared by the attempts: the latest attempt's part only (no traceback of attempt 1).
    page.click(".tabs button[data-stream='stderr']")
    e(page.locator("#trial-log[data-attempt='2']")).to_contain_text("stderr of attempt 2")
    assert "boom in attempt 1" not in page.inner_text("#trial-log")
    shot(page, "rerun")
    # The earlier attempt is one click away: its status, reason, duration and own curve.
    e(page.locator("#attempt-2")).to_contain_text("Attempt 2 (latest)")
    page.click("#attempt-1")
    e(page.locator("#shown-attempt")).to_have_text(" attempt 1 of 2 (an earlier run)")
    e(page.locator("#trial-head .status").first).to_have_text("FAILED")
    e(page.locator("#trial-failure")).to_contain_text("boom in attempt 1")
    e(page.locator("#trial-log[data-attempt='1']")).to_contain_text("ValueError: boom in attempt 1")
    assert "stderr of attempt 2" not in page.inner_text("#trial-log")
    page.click(".tabs button[data-stream='stdout']")
    e(page.locator("#trial-log[data-attempt='1']")).to_contain_text("stdout of attempt 1")
    assert "stdout of attempt 2" not in page.inner_text("#trial-log")
    e(page.locator("#chart-trial-intermediate[data-attempt='1'] .scatterlayer .trace")).to_have_count(1)
    (curve,) = _curve(page, "#chart-trial-intermediate")
    assert curve["x"] == [0, 1, 2, 3, 4] and curve["y"] == [10, 11, 12, 13, 14]
    first_seconds = (first["endTime"] - first["startTime"]) / 1000
    assert abs(_format_duration_seconds(page.inner_text("#trial-duration")) - first_seconds) <= 1

    # The charts and the compare page draw the latest attempt's curve too, from step 0.
    (series,) = rest.get(exp.port, f"/ui/intermediate?trials={trial_id}")["series"]
    assert series["sequence"] == [0, 1, 2, 3, 4] and series["value"] == [20, 21, 22, 23, 24]
    # The trials table: the latest attempt's duration too.
    page.goto(ui(exp, "#/trials?status=SUCCEEDED"))
    page.locator("#columns-button").click()
    duration = page.locator(f"#trials-table tr[data-trial-id='{trial_id}'] td[data-col='duration']")
    e(duration).to_be_visible()
    assert abs(_format_duration_seconds(duration.inner_text()) - latest_seconds) <= 1
    page.console.assert_clean("the pages of a re-run trial")


# Multi-objective: results by sequence number, so the test knows the front. Trial #0 ends
# without a final result; #6 fails; #1 and #2 tie on acc, #2 is cheaper (it dominates #1).
MO_TRIAL = """
    import os, nni
    p = nni.get_next_parameter()
    seq = int(os.environ["NNI_TRIAL_SEQ_ID"])
    for step in range(3):
        nni.report_intermediate_result({"default": step / 10 + seq, "acc": step / 10 + seq})
    results = {1: (0.9, 5.0), 2: (0.9, 1.0), 3: (0.5, 0.5), 4: (0.7, 3.0), 5: (0.3, 0.1)}
    if seq == 6:
        raise SystemExit(3)
    if seq in results:
        acc, cost = results[seq]
        nni.report_final_result({"default": acc, "acc": acc, "cost": cost})
"""
OBJECTIVES = [{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}]


def _get(exp, path: str):
    from nni.experiment import rest
    return rest.get(exp.port, path)


def test_multi_objective_pareto_filter_legends_and_warnings(make_experiment, browser, shot):
    exp = make_experiment(MO_TRIAL, SPACE, concurrency=2, max_trials=7, objectives=OBJECTIVES)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    jobs = {j.sequenceId: j.trialJobId for j in exp.list_trial_jobs()}
    e = expect()

    # -- the filter check answers 200 with every bad term, and selects nothing ------------
    answer = _get(exp, "/ui/trials?filter=" + urllib.request.quote("nope>1 metric>abc acc>0.5 x>"))
    assert answer["total"] == 0 and answer["trials"] == []
    assert len(answer["filterErrors"]) == 3, answer["filterErrors"]
    assert "'nope'" in answer["filterErrors"][0] and "abc" in answer["filterErrors"][1]

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    console = Console(tab)
    try:
        # -- overview: the warning, every objective in the best card and the top trials ----
        tab.goto(ui(exp, "#/overview"))
        e(tab.locator("#without-final")).to_contain_text("1 trial ended without report_final_result()")
        e(tab.locator("#card-best h2")).to_have_text("Best acc (maximize)")
        e(tab.locator("#best-objectives")).to_contain_text("cost (min)")
        # #1 and #2 tie on acc; #2 costs less: #1 is dominated, #2 is the best named.
        e(tab.locator("#card-best a[href^='#/trial/']")).to_have_text(jobs[2])
        e(tab.locator("#best-objectives tr:nth-child(2) td")).to_have_text("1")
        e(tab.locator("#top-trials th[data-metric='cost']")).to_have_count(1)
        cost_cells = tab.locator("#top-trials tbody td[data-metric='cost']").all_inner_texts()
        assert sorted(map(float, cost_cells)) == [0.1, 0.5, 1, 3, 5]
        tab.goto(ui(exp, f"#/trial/{jobs[0]}"))
        e(tab.locator("#trial-no-final")).to_contain_text("ended without calling report_final_result()")
        # The failed trial says why in the table.
        tab.goto(ui(exp, "#/trials"))
        e(tab.locator(f"#trials-table tr[data-trial-id='{jobs[6]}'] .reason")).to_have_text("exit code 3; stderr was empty")
        e(tab.locator("#trials-table thead th[data-sort='metric:cost']")).to_have_count(1)

        # -- the trials filter: every bad term named, no stale rows or count, no 400s --------
        tab.fill("#trial-filter", "acc>0.6")
        e(tab.locator("#trials-summary")).to_have_text("1–3 of 3 trials")
        tab.fill("#trial-filter", "nope>1 metric>abc acc>0.6")
        e(tab.locator("#filter-error .filter-problem")).to_have_count(2)
        e(tab.locator("#trials-table tbody tr[data-trial-id]")).to_have_count(0)
        e(tab.locator("#trials-summary")).to_have_text("Filter not applied: 2 bad terms")
        tab.fill("#trial-filter", "cost<=1")
        e(tab.locator("#trials-summary")).to_have_text("1–3 of 3 trials")
        assert tab.locator("#filter-error").is_hidden()

        # -- the Pareto page is a view of the UI: nav bar, trial links, best on the front ----
        tab.goto(ui(exp, "#/overview"))
        tab.click("#nav-pareto")
        tab.wait_for_url(re.compile(r"/#/pareto$"))
        e(tab.locator("#chart[data-front-size]")).to_have_attribute("data-front-size", "3")
        e(tab.locator("#nav-pareto")).to_have_class("active")
        assert tab.inner_text("#front-size") == "3"
        assert sorted(tab.locator("#front tbody td a").all_inner_texts()) == sorted([jobs[2], jobs[3], jobs[5]])
        best_acc = tab.locator("#best-list li").first
        e(best_acc).to_contain_text("best acc: 0.9")
        assert best_acc.get_attribute("data-trial-id") == jobs[2], "the best acc named is dominated (#1)"
        e(tab.locator("#hv[data-points] .main-svg").first).to_be_visible()
        shot(tab, "pareto")
        tab.click(f"#front tbody a:text-is('{jobs[3]}')")
        tab.wait_for_url(re.compile(f"#/trial/{jobs[3]}$"))
        e(tab.locator(".final-result")).to_have_text("default: 0.5, acc: 0.5, cost: 0.5")
        # The old address still works: a redirect to the view.
        tab.goto(f"http://127.0.0.1:{exp.port}/pareto")
        tab.wait_for_url(re.compile(r"/#/pareto$"))
        e(tab.locator("#front tbody tr")).to_have_count(3)

        # -- legends: one per state in durations, one per curve in intermediate results -----
        tab.goto(ui(exp, "#/charts"))
        e(tab.locator("#chart-duration .legend .traces")).to_have_count(2)
        assert sorted(tab.locator("#chart-duration .legend .legendtext").all_text_contents()) == ["FAILED", "SUCCEEDED"]
        curves = tab.locator("#chart-intermediate .scatterlayer .trace")
        e(curves.first).to_be_visible()
        e(tab.locator("#chart-intermediate .legend .traces")).to_have_count(curves.count())
        assert curves.count() >= 5
        console.assert_clean("the multi-objective pages")
    finally:
        context.close()

    # -- a phone: the Pareto view and the trials table's Metric column fit the screen ------
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    tab.set_default_timeout(WAIT_MS)
    console = Console(tab)
    try:
        tab.goto(ui(exp, "#/pareto"))
        e(tab.locator("#chart[data-front-size='3'] .main-svg").first).to_be_visible()
        e(tab.locator("#hv[data-points]")).to_have_count(1)
        assert tab.evaluate("() => document.documentElement.scrollWidth") == 390
        shot(tab, "phone-pareto")
        box = tab.locator("#nav-pareto").bounding_box()
        assert box and box["x"] + box["width"] <= 390
        tab.goto(ui(exp, "#/trials"))
        e(tab.locator("#trials-table tbody tr[data-trial-id]").first).to_be_visible()
        assert tab.evaluate("() => document.documentElement.scrollWidth") == 390
        box = tab.locator("#trials-table th[data-sort='metric']").bounding_box()
        assert box["x"] + box["width"] <= 390, f"the Metric column is off-screen at x={box['x']}"
        console.assert_clean("the phone pages")
    finally:
        phone.close()
    # nnictl trial ls --pareto: a column for every objective
    out = _nnictl("trial", "ls", exp.id, "--pareto")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split()
    assert "ACC" in header and "COST" in header, out.stdout
    (row,) = [ln for ln in out.stdout.splitlines() if ln.startswith(jobs[3])]
    assert "0.5" in row.split()
