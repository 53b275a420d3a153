"""Issue 27 (web UI speed, experiments side by side) and issue 30 items 10 and 14, through real parts.

* Speed: pages draw with plotly.js's basic bundle (1.2 MB) and fetch the full one (4.8 MB)
  only for parallel coordinates; a big scatter is thinned, and zooming in draws every point
  of the zoomed range (so each one can still be reached and clicked). The timings themselves
  are measured by ``benchmarks/webui.py``, not here.
* ``nnictl webui``: every experiment of the user, read from their stores by a small server
  (no manager started), 2-8 of them compared, a stopped one opened read-only, in Chromium at
  desktop and phone widths; it stops on SIGTERM leaving nothing behind.
* ``nnictl webui url`` with only a ``nnictl view`` running gives the view's address.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for
from nni.experiment import Experiment, rest
from nni.manager import registry
from store_rows import insert_rows
from test_webui import QUICK_TRIAL, SPACE, WAIT_MS, Console, expect, ui

NNICTL = str(Path(sys.executable).with_name("nnictl"))
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}
# What the page's own code may decode before its first chart (issue 27): the basic bundle and the modules.
FIRST_PAGE_SCRIPT_BYTES = 1_500_000
# Script resources by address, as the browser recorded them: [url, bytes decoded].
SCRIPTS = ("() => performance.getEntriesByType('resource').filter(r => r.name.endsWith('.js'))"
           ".map(r => [r.name, r.decodedBodySize])")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: the web UI tests drive Debian's chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def new_page(browser, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.set_default_navigation_timeout(WAIT_MS)
    tab.console = Console(tab)
    return context, tab


@pytest.fixture
def page(browser):
    context, tab = new_page(browser)
    yield tab
    context.close()


def screenshot(tab, name: str) -> None:
    """``webui-NAME.png`` under $NNI_TEST_ARTIFACTS when set (``=docs/images`` refreshes the docs' images)."""
    folder = os.environ.get("NNI_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tab.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        tab.screenshot(path=str(Path(folder) / f"webui-{name}.png"), full_page=True)


def no_sideways_scroll(tab) -> None:
    width = tab.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"


# -- speed: the basic bundle first, the full one only where needed -------------------------------
def test_pages_draw_with_the_basic_bundle_and_only_parallel_coordinates_load_the_full_one(make_experiment, page):
    exp = make_experiment(QUICK_TRIAL, SPACE, concurrency=3, max_trials=6)
    exp.start(port=0)
    assert exp.wait(timeout=240) == "DONE"
    e = expect()
    page.goto(ui(exp, "#/overview"))
    e(page.locator("#overview-metric .scatterlayer .trace").first.locator(".point")).to_have_count(6)
    scripts = page.evaluate(SCRIPTS)
    assert not [u for u, _ in scripts if re.search(r"/webui/plotly-\d[^/]*\.min\.js$", u)], \
        "the overview fetched plotly.js's full bundle"
    assert any("plotly-basic" in u for u, _ in scripts)
    decoded = sum(size for _, size in scripts)
    assert decoded <= FIRST_PAGE_SCRIPT_BYTES, f"{decoded} bytes of script before the first chart"

    # The Charts page: every chart but the parallel coordinates with the basic bundle; the
    # full one arrives when the parallel coordinates come on screen, and they are drawn.
    page.goto(ui(exp, "#/charts"))
    e(page.locator("#chart-metric .scatterlayer .trace").first.locator(".point")).to_have_count(6)
    e(page.locator("#chart-importance .barlayer")).to_have_count(1)
    page.locator("#chart-parcoords").scroll_into_view_if_needed()
    e(page.locator("#chart-parcoords .parcoords")).to_have_count(1)
    full = [u for u, _ in page.evaluate(SCRIPTS) if re.search(r"/webui/plotly-\d[^/]*\.min\.js$", u)]
    assert len(full) == 1
    # Both bundles live side by side: the metric chart still answers clicks (basic bundle).
    page.locator("#chart-metric .scatterlayer .trace").first.locator(".point").first.click(force=True)
    e(page).to_have_url(re.compile(r"#/trial/"))
    page.console.assert_clean("the overview and charts pages with both bundles")


# -- speed: a big scatter is thinned; zooming in reaches every point ------------------------------
def big_store(directory: Path, n: int, register: bool = True) -> Path:
    """A stopped experiment of ``n`` trials (every one with a final result) written straight into a
    real store, registered as the manager would (unless ``register`` is False), so ``Experiment.view``
    serves it."""
    from nni.manager.store import Store
    path = directory / "db" / "nni.sqlite"
    path.parent.mkdir(parents=True)
    store = Store(path)
    store.set_meta(id=directory.name, status="STOPPED", start_time=1_700_000_000.0, end_time=1_700_050_000.0,
                   optimize_mode="maximize", config={"experimentName": "big", "maxTrialNumber": n,
                                                     "trialConcurrency": 4, "searchSpace": SPACE,
                                                     "tuner": {"name": "Random"},
                                                     "trainingService": {"platform": "local"},
                                                     "trialCommand": "true", "trialCodeDirectory": "."})
    store.close()
    rng = random.Random(7)
    trials, params, metrics = [], [], []
    for i in range(n):
        tid = f"b{i:06d}"
        start = 1_700_000_000.0 + i
        trials.append((tid, i, "SUCCEEDED", str(directory / "trials" / tid), start, start, start + 1, 0, None))
        params.append((i, tid, 0, "algorithm", json.dumps({"x": rng.random(), "lr": 0.01, "opt": "sgd"}), start))
        metrics.append((tid, i, "FINAL", 0, json.dumps(rng.random()), start + 1))
    insert_rows(path, trials, params, metrics)
    if register:
        registry.update_entry(directory.name, name="big", dir=str(directory), status="STOPPED",
                              start_time=1_700_000_000.0, port=None, pid=None)
    return path


def test_a_big_scatter_is_thinned_and_zooming_in_draws_every_point_of_the_range(tmp_path, page):
    n = 20_000
    big_store(tmp_path / "bigexp", n)
    viewer = Experiment.view("bigexp", port=0, non_blocking=True)
    try:
        e = expect()
        page.goto(ui(viewer, "#/charts"))
        points = page.locator("#chart-metric .scatterlayer .trace").first.locator(".point")
        e(page.locator("#chart-metric .annotation-text")).to_contain_text(f"of {n:,} points drawn")
        drawn = points.count()
        assert 500 < drawn <= 3_500, f"{drawn} of {n} points drawn"
        # The best result is always among them (each column's highest point is kept).
        best = rest.get(viewer.port, "/ui/trials?sort=metric&order=desc&limit=1")["trials"][0]
        ids = page.evaluate("() => document.getElementById('chart-metric').data[0].customdata")
        assert best["trialJobId"] in ids
        # Zoom to trials 1000-1999: every one of their 1,000 points is drawn, and each opens its trial.
        page.evaluate("() => window.Plotly.relayout(document.getElementById('chart-metric'),"
                      " {'xaxis.range': [999.5, 1999.5], 'yaxis.range': [-0.05, 1.05]})")
        wait_for(lambda: points.count() == 1000, timeout=60, what="every point of the zoomed range")
        shown = page.evaluate("() => document.getElementById('chart-metric').data[0].customdata")
        assert sorted(shown) == [f"b{i:06d}" for i in range(1000, 2000)]
        e(page.locator("#chart-metric .annotation-text")).to_have_count(0)   # nothing left out: no note
        points.nth(500).click(force=True)
        e(page).to_have_url(re.compile(r"#/trial/b001\d{3}$"))
        page.console.assert_clean("a thinned chart")
    finally:
        viewer.stop()


# -- nnictl webui -----------------------------------------------------------------------------
def start_webui() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([NNICTL, "webui", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"nnictl webui printed {line!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(0)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def best_metric(experiment_id: str) -> float:
    """The best default metric in the experiment's store: the lowest (Random's default mode is minimize)."""
    from nni.manager.experiment_dir import ExperimentDir
    import sqlite3
    db = sqlite3.connect(ExperimentDir(registry.get_entry(experiment_id)["dir"]).database)
    try:
        values = [json.loads(v) for (v,) in db.execute("SELECT value FROM metrics WHERE type = 'FINAL'")]
    finally:
        db.close()
    return min(v["default"] if isinstance(v, dict) else v for v in values)


def test_nnictl_webui_lists_compares_and_opens_every_experiment(make_experiment, browser):
    first = make_experiment(QUICK_TRIAL, SPACE, concurrency=3, max_trials=3, experiment_name="first-one")
    assert first.run(port=0)
    second = make_experiment(QUICK_TRIAL, SPACE, concurrency=2, max_trials=4, experiment_name="second-one")
    second.config.tuner.class_args = {"seed": 2}
    assert second.run(port=0)
    resumed = Experiment.resume(first.id, port=0, wait_completion=False)   # a last resume to show
    resumed.stop()
    best = best_metric(first.id)
    # An experiment the registry no longer knows, left in the default experiments root.
    big_store(Path.home() / "nni-experiments" / "unlisted", 40, register=False)
    proc, url = start_webui()
    base = url.split("/?")[0]
    try:
        # Owner-only secret, a wrong token refused, 2-8 experiments to compare.
        secret_file = Path(os.environ["NNI_NG_HOME"]) / "webui" / "secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/?token=wrong", timeout=30)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as few:
            urllib.request.urlopen(f"{base}/api/v1/nni/ui/experiments/compare?ids={first.id}", timeout=30)
        assert few.value.code == 400 and "2 to 8" in json.loads(few.value.read())["error"]
        # `nnictl webui url` names this server when no experiment is served.
        out = subprocess.run([NNICTL, "webui", "url"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == url, out.stderr
        # The unlisted one is found in ~/nni-experiments and opens read-only (and is registered).
        listed = json.loads(urllib.request.urlopen(f"{base}/api/v1/nni/ui/experiments", timeout=60).read())
        assert {e["id"] for e in listed["experiments"]} == {first.id, second.id, "unlisted"}
        opened = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{base}/api/v1/nni/ui/experiments/unlisted/open", data=b"{}", method="POST",
            headers={"Content-Type": "application/json"}), timeout=120).read())
        assert opened["readOnly"] and registry.get_entry("unlisted")["status"] == "VIEWED"
        assert len(rest.get(int(opened["url"].split(":")[2].split("/")[0]), "/trial-jobs")) == 40
        out = subprocess.run([NNICTL, "webui", "url", "unlisted"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == opened["url"], out.stderr

        for viewport in (DESKTOP, PHONE):
            context, tab = new_page(browser, viewport)
            try:
                e = expect()
                tab.goto(url)
                rows = tab.locator("#experiments-table tbody tr")
                e(rows).to_have_count(3)
                old = tab.locator(f"#experiments-table tr[data-id='{first.id}']")
                e(old).to_contain_text("first-one")
                e(old.locator("td[data-col='tuner']")).to_have_text("Random")
                e(old.locator("td[data-col='trials']")).to_have_text("3 / 3")
                e(tab.locator("#experiments-table thead")).to_contain_text("Created")
                e(tab.locator("#experiments-table thead")).to_contain_text("Last resumed")
                assert old.locator("td[data-col='resumed']").inner_text() != "never"
                other = tab.locator(f"#experiments-table tr[data-id='{second.id}']")
                e(other.locator("td[data-col='resumed']")).to_have_text("never")
                assert float(old.locator("td[data-col='best']").inner_text().split()[0]) == pytest.approx(best, rel=1e-5)
                no_sideways_scroll(tab)
                if viewport is DESKTOP:
                    screenshot(tab, "standalone-experiments")
                # The filter keeps what matches.
                tab.fill("#experiments-filter", "second-one")
                e(rows).to_have_count(1)
                tab.fill("#experiments-filter", "")
                e(rows).to_have_count(3)
                # Two ticked: compared side by side.
                tab.locator(f"input.select-experiment[data-id='{first.id}']").check()
                e(tab.locator("#experiments-compare")).to_be_disabled()
                tab.locator(f"input.select-experiment[data-id='{second.id}']").check()
                tab.click("#experiments-compare")
                for chart in ("#chart-experiments-by-trial", "#chart-experiments-by-time"):
                    e(tab.locator(f"{chart} .scatterlayer .trace")).to_have_count(2)
                e(tab.locator("#experiments-best tbody tr")).to_have_count(2)
                cell = tab.locator(f"#experiments-best tr[data-id='{first.id}'] td[data-col='best']")
                assert float(cell.inner_text().split()[0]) == pytest.approx(best, rel=1e-5)
                for key in ("maxTrialNumber", "trialConcurrency", "tuner.classArgs.seed"):
                    e(tab.locator(f"#experiments-diff tr[data-key='{key}']")).to_have_count(1)
                e(tab.locator("#experiments-diff tr[data-key='searchSpace.x._type']")).to_have_count(0)
                e(tab.locator("#experiments-configs > div")).to_have_count(2)   # and the whole configs
                e(tab.locator(f"#experiments-configs > div[data-id='{second.id}'] pre")).to_contain_text('"second-one"')
                no_sideways_scroll(tab)
                if viewport is DESKTOP:
                    screenshot(tab, "experiments-compare")
                # A stopped one opens read-only, served by this server as `nnictl view` does.
                tab.go_back()
                e(rows).to_have_count(3)
                tab.locator(f"button.open-experiment[data-id='{second.id}']").click()
                link = tab.locator(f"a.opened-experiment[data-id='{second.id}']")
                e(link).to_have_count(1)
                view_url = link.get_attribute("href")
                assert registry.get_entry(second.id)["status"] == "VIEWED"
                tab.goto(view_url)
                e(tab.locator("#readonly-badge")).to_be_visible()
                e(tab.locator("#overview-metric .scatterlayer .trace").first.locator(".point")).to_have_count(4)
                no_sideways_scroll(tab)
                tab.console.assert_clean(f"nnictl webui at {viewport['width']} px")
            finally:
                context.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    # Nothing left: the server and the view it opened are gone, the view's entry restored.
    view_base = view_url.split("/?")[0]
    assert not answers(base) and not answers(view_base)
    entry = registry.get_entry(second.id)
    assert not entry["alive"] and entry["status"] == "DONE"
    assert not registry.get_entry("unlisted")["alive"]
    assert not (Path(os.environ["NNI_NG_HOME"]) / "webui" / "server.json").exists()


# -- issue 30 item 10: `nnictl webui url` with only a view running -----------------------------------
def test_webui_url_gives_the_address_of_a_view(make_experiment):
    exp = make_experiment(QUICK_TRIAL, SPACE, concurrency=2, max_trials=2)
    assert exp.run(port=0)
    out = subprocess.run([NNICTL, "view", exp.id, "--port", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    try:
        port = registry.get_entry(exp.id)["port"]
        url = subprocess.run([NNICTL, "webui", "url"], capture_output=True, text=True, timeout=60)
        assert url.returncode == 0, url.stderr
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=\S+", url.stdout.strip())
        # The address works: its token logs a browser in (a redirect that sets the cookie).
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        assert b"nni-ng" in opener.open(url.stdout.strip(), timeout=60).read()
    finally:
        subprocess.run([NNICTL, "stop", exp.id], capture_output=True, text=True, timeout=120)
    wait_for(lambda: not registry.get_entry(exp.id)["alive"], what="the view to end")
