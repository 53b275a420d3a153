"""Issue 27, the first chart: what the overview and charts pages wait for before drawing it.

* ``/ui/metric-series``: the metric-by-trial chart's data alone (final results with a numeric
  metric, in trial order), the same points as ``/ui/chart-data`` holds, a fraction of its bytes.
* The overview draws its chart from it, asked for as the app starts (beside ``/ui/overview``,
  not after it), and never fetches the whole chart data; the charts page draws its first chart
  from it too and the other charts from ``/ui/chart-data``. Thinned as before: every point
  stays reachable by zooming in (tests/test_webui_speed_compare.py).
* The UI's first snapshot of a store is built in one statement, no longer as the incremental
  updates do: whatever state the store was in, its rows are what the incremental updates give.

The timings are measured by ``benchmarks/webui.py`` (docs/webui.md, "Speed"), not here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from store_rows import insert_rows
from test_webui import WAIT_MS, Console, Server, _fill_store, browser, expect  # noqa: F401 - browser: a fixture

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}


def serve(tmp_path: Path, n: int) -> tuple[Server, dict[str, Any]]:
    path = tmp_path / "db" / "nni.sqlite"
    path.parent.mkdir()
    truth = _fill_store(path, n)
    return Server(path), truth


def open_page(browser, server: Server, route: str, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    """A fresh browser profile on ``route``; the UI's API requests are recorded in order."""
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.console = Console(tab)
    asked: list[str] = []
    tab.on("request", lambda r: asked.append(r.url.split("/api/v1/nni", 1)[1]) if "/api/v1/nni/" in r.url else None)
    tab.goto(f"http://127.0.0.1:{server.port}/?token={server.secret}{route}")
    return context, tab, asked


# -- the endpoint -------------------------------------------------------------------------------
def test_metric_series_holds_the_chart_datas_numeric_results_in_trial_order(tmp_path):
    """Multi-phase trials (a result per phase), dict results, and results without a number."""
    from nni.manager.store import Store
    server, truth = serve(tmp_path, 40)
    writer = Store(tmp_path / "db" / "nni.sqlite")
    try:
        # A trial of two phases, each with its final result; one whose result has no number.
        writer.add_trial("multi", 40, "/nowhere/multi", 1000, {"lr": 0.01, "opt": "sgd", "layers": 1})
        writer.add_parameter("multi", 1001, 1, {"lr": 0.02, "opt": "adam", "layers": 2})
        writer.add_metric("multi", 1000, "FINAL", 0, json.dumps(0.25))
        writer.add_metric("multi", 1001, "FINAL", 0, json.dumps({"default": 0.75, "acc": 0.5}))
        writer.add_trial("words", 41, "/nowhere/words", 1002, {"lr": 0.03, "opt": "sgd", "layers": 3})
        writer.add_metric("words", 1002, "FINAL", 0, json.dumps("not a number"))
        _, series = server.get("/metric-series")
        _, chart = server.get("/chart-data")
        results = chart["results"]
        numeric = [i for i, m in enumerate(results["metric"]) if isinstance(m, (int, float))]
        for key in ("trialJobId", "sequenceId", "parameterIndex", "metric"):
            assert series[key] == [results[key][i] for i in numeric], key
        assert set(series) == {"trialJobId", "sequenceId", "parameterIndex", "metric"}
        assert series["trialJobId"][-2:] == ["multi", "multi"] and series["parameterIndex"][-2:] == [0, 1]
        assert series["metric"][-2:] == [0.25, 0.75] and "words" not in series["trialJobId"]
        assert len(series["metric"]) == len(truth) + 2
        assert series["sequenceId"] == sorted(series["sequenceId"])
    finally:
        writer.close()
        server.close()


# -- the pages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_overview_draws_its_chart_from_the_metric_series_asked_for_beside_the_overview(tmp_path, browser, viewport):
    n = 5_000   # over the 3,000 points a chart draws: thinned, as 100,000 would be
    server, truth = serve(tmp_path, n)
    try:
        e = expect()
        context, tab, asked = open_page(browser, server, "#/overview", viewport)
        try:
            e(tab.locator("#overview-metric .scatterlayer .trace").first.locator(".point").first).to_be_attached()
            e(tab.locator("#overview-metric .annotation-text")).to_contain_text(f"of {len(truth):,} points drawn")
            e(tab.locator("#top-trials tbody tr")).to_have_count(10)
            # Only what the chart draws, asked for beside the overview as the app starts, not
            # after its answer (by request order, not by timings that race), and once.
            assert asked.count("/ui/metric-series") == 1 and asked.count("/ui/overview") == 1, asked
            assert "/ui/chart-data" not in asked, asked
            assert sorted(asked[:2]) == ["/ui/metric-series", "/ui/overview"], asked   # both as the app starts
            # Every point of the chart is the page's to zoom into: the whole series is there.
            ids = tab.evaluate("() => document.getElementById('overview-metric').__nniSource[0].customdata")
            assert len(ids) == len(truth) and set(ids) == set(truth)
            tab.console.assert_clean(f"the overview of {n:,} trials at {viewport['width']} px")
        finally:
            context.close()

        # The charts page: its first chart from the series as well, the other charts from the whole data.
        context, tab, asked = open_page(browser, server, "#/charts", viewport)
        try:
            e(tab.locator("#chart-metric .annotation-text")).to_contain_text(f"of {len(truth):,} points drawn")
            e(tab.locator("#chart-duration .scatterlayer .trace, #chart-duration .barlayer .trace").first).to_be_attached()
            assert asked.index("/ui/metric-series") < asked.index("/ui/chart-data"), asked
            assert sorted(asked[:2]) == ["/ui/metric-series", "/ui/overview"], asked   # both as the app starts
            tab.console.assert_clean(f"the charts page of {n:,} trials at {viewport['width']} px")
        finally:
            context.close()
    finally:
        server.close()


# -- the first snapshot -------------------------------------------------------------------------
def _grow(path: Path, rng: random.Random, first: int, count: int) -> None:
    """``count`` more trials in every state a store holds: multi-phase ones, re-run ones, ones
    without a parameter set or a final result, results of no parameter set, dict results."""
    trials, params, metrics = [], [], []
    events, attempts = [], []
    for i in range(first, first + count):
        tid = f"g{i:05d}"
        status = rng.choice(["WAITING", "RUNNING", "SUCCEEDED", "SUCCEEDED", "FAILED", "EARLY_STOPPED"])
        started = None if status == "WAITING" else 1_700_000_000.0 + i
        ended = started + 3 if started and status not in ("RUNNING",) else None
        trials.append((tid, i, status, f"/nowhere/{tid}", 1_700_000_000.0 + i, started, ended, None, None))
        phases = 0 if i % 11 == 0 else (3 if i % 7 == 0 else 1)
        for phase in range(phases):
            pid = i * 10 + phase
            params.append((pid, tid, phase, "algorithm", json.dumps({"x": rng.random(), f"k{phase}": phase}), 1.0))
            metrics += [(tid, pid, "PERIODICAL", s, json.dumps(rng.random()), 1.0) for s in range(rng.randint(0, 3))]
            if status == "SUCCEEDED" and rng.random() < 0.8:
                value = rng.choice([rng.random(), {"default": rng.random(), "acc": rng.random()}, {"loss": 1.0}])
                metrics.append((tid, None if i % 13 == 0 else pid, "FINAL", 0, json.dumps(value), 1.0))
        if i % 9 == 0 and started:   # ran again: its latest attempt's start counts
            events.append((1.0, "TRIAL_ATTEMPT_QUEUED", tid, "re-run"))
            attempts += [(tid, 1, started, started, ended, "FAILED"), (tid, 2, started + 5, started + 6, None, "RUNNING")]
    insert_rows(path, trials, params, metrics)
    import sqlite3
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO events(timestamp, kind, trial_id, message) VALUES (?,?,?,?)", events)
        db.executemany("INSERT INTO attempts(trial_id, attempt, submit_time, start_time, end_time, status)"
                       " VALUES (?,?,?,?,?,?)", attempts)
    db.close()


def _every_row(server: Server) -> tuple[Any, ...]:
    _, page = server.get("/trials?limit=1000&sort=sequenceId")
    _, chart = server.get("/chart-data")
    _, overview = server.get("/overview")
    rows = [{k: v for k, v in t.items() if k != "duration"} for t in page["trials"]]   # duration: now - start
    return rows, page["parameterKeys"], page["metricKeys"], chart, overview["counts"], overview["best"]


def test_the_first_snapshot_is_the_one_the_incremental_updates_build(tmp_path):
    """One server follows the store as it grows (its updates); one reads the grown store at once
    (the first build): every row, every chart column, the counts and the best result agree."""
    from nni.manager.store import Store
    path = tmp_path / "db" / "nni.sqlite"
    path.parent.mkdir()
    store = Store(path)
    store.set_meta(id="grown", status="STOPPED", config={"searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}})
    store.close()
    rng = random.Random(3)
    following = Server(path)
    try:
        for first in range(0, 300, 60):
            _grow(path, rng, first, 60)
            following.get("/trials?limit=1")   # the incremental update of each step
        db = __import__("sqlite3").connect(path)
        with db:   # a trial ended and one ran again since the last step
            db.execute("UPDATE trials SET status = 'SUCCEEDED', end_time = 2e9 WHERE status = 'RUNNING'"
                       " AND sequence_id = (SELECT MIN(sequence_id) FROM trials WHERE status = 'RUNNING')")
        db.close()
        grown = _every_row(following)
    finally:
        following.close()
    fresh = Server(path)
    try:
        built = _every_row(fresh)
    finally:
        fresh.close()
    assert len(built[0]) == 300
    assert any(r["phases"] == 3 for r in built[0]) and any(r["phases"] == 0 for r in built[0])
    assert any(r["intermediates"] for r in built[0])
    for name, a, b in zip(("rows", "parameter keys", "metric keys", "chart data", "counts", "best"), grown, built):
        assert a == b, f"{name} differ between the updated snapshot and the first build"


def test_a_page_shows_the_same_intermediate_results_before_and_after_they_are_counted_for_every_row(tmp_path):
    """A page sorted and filtered by other columns reads only its own rows' intermediate results;
    sorting or filtering by them counts every row's: the answers agree, and so do the
    early-stopped curves of the charts page."""
    server, _ = serve(tmp_path, 0)
    try:
        rng = random.Random(5)
        _grow(tmp_path / "db" / "nni.sqlite", rng, 0, 400)

        def rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
            return [{k: v for k, v in t.items() if k != "duration"} for t in answer["trials"]]
        _, curves = server.get("/intermediate?top=30")
        _, before = server.get("/trials?limit=1000&sort=metric&order=desc")
        assert any(t["intermediates"] for t in before["trials"])
        _, everything = server.get("/trials?limit=1000&sort=metric&order=desc&filter=intermediates%3E%3D0")
        _, after = server.get("/trials?limit=1000&sort=metric&order=desc")
        assert rows(before) == rows(everything) == rows(after) and len(before["trials"]) == 400
        _, later = server.get("/intermediate?top=30")
        assert curves == later
        assert any(c["status"] == "EARLY_STOPPED" for c in curves["series"])
        _, by_latest = server.get("/trials?limit=5&sort=latest&order=desc")
        latest = sorted((t["latestMetric"] for t in before["trials"] if t["latestMetric"] is not None), reverse=True)
        assert [t["latestMetric"] for t in by_latest["trials"]] == latest[:5]
    finally:
        server.close()
