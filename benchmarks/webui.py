"""Web UI speed: time to first chart per page, script bytes sent, main-thread blocking while live.

Run from the repository root with the project's interpreter::

    python benchmarks/webui.py [--sizes 300,100000] [--live-trials 120] [--compare DIR] [--skip-live]
                               [--repeat N] [--fresh-server]
    python benchmarks/webui.py --quick      # 300 trials and a live run of 12, as a stranger (~20 s; CI)

For each store size it builds a synthetic experiment store (trials with three parameters,
two intermediate results each and, for 80 % of them, a final result), serves it the way
``nnictl view`` does (``rest.build_app`` in a subprocess, so ``--compare`` can serve it
with another checkout's code) with a secret, and opens each page in headless Chromium
(Playwright) at its ``?token=`` address, as ``nnictl webui url`` prints it:

* **first chart (cold)**: from navigation start (the ``?token=`` address, whose redirect
  sets the login cookie) to the first drawn trace of the page's main chart, in a fresh
  browser profile (empty cache);
* **first chart (warm)**: the page's address after that redirect loaded again in the same
  profile (cached files, the cookie set), as a reload does;
* **scripts**: bytes of JavaScript as sent (compressed) and as decoded, on the cold load.

Then a live experiment (trivial trials, real manager) runs with the Charts page open, and
the page's long tasks (main-thread tasks over 50 ms, from ``PerformanceObserver``) are
summed: the share of the time the page could not answer input while trials finished.

* **slowest data**: the longest of the page's JSON requests before its first chart (on a
  cold server, the first one waits for the server's snapshot of the store).

``--repeat N`` loads each page cold N times (a new browser profile each; the first page,
the overview, on a new server each time) and shows the medians; ``--fresh-server`` starts a
new server for every cold load of every page (by default the pages after the overview find
the server's snapshot built).

``--compare DIR`` runs everything a second time with the code in DIR (for instance
``git archive <commit> nni | tar -x -C DIR``) and prints it beside ours. The table goes to
stdout and to benchmarks/results/webui.md; progress goes to stderr; the raw figures go to
benchmarks/results/webui.json, and ``--reuse`` keeps those, measuring only what is missing.
A full run (not ``--quick``) also rewrites the table in docs/webui.md ("Speed"), between its
``webui-benchmark`` markers, with the command, machine, load and commit it was measured with.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))   # run as a script: its folder's helpers
from _docs_block import DocsBlock  # noqa: E402

RESULTS = HERE / "results" / "webui.md"
DOC = REPO / "docs" / "webui.md"
DOC_START, DOC_END = "<!-- webui-benchmark:start -->", "<!-- webui-benchmark:end -->"
SAVED = HERE / "results" / "webui.json"   # raw figures, for --reuse
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 180_000

# Each page and the selector of its main chart's first drawn trace.
PAGES = [
    ("overview", "#/overview", "#overview-metric .scatterlayer .trace"),
    ("charts", "#/charts", "#chart-metric .scatterlayer .trace"),
    ("trial", "#/trial/{trial}", "#chart-trial-intermediate .scatterlayer .trace"),
    ("compare", "#/compare?ids={pair}", "#chart-compare .scatterlayer .trace"),
]

# The secret comes in the environment; code from before secrets (--compare) takes none.
# NNI_BENCH_STRANGER: the owner's own loopback clients need no secret; as anyone else, the
# browser gets in only with the token, which is what this checks.
SERVER = """
import asyncio, inspect, os, sys
from aiohttp import web
from nni.manager.rest import build_app
from nni.manager.store import Store

if os.environ.get("NNI_BENCH_STRANGER"):
    try:
        from nni.manager._security import OwnerCheck
        OwnerCheck.__call__ = lambda self, request: False
    except ImportError:
        pass

async def main():
    store = Store(sys.argv[1], readonly=True)
    takes_secret = "secret" in inspect.signature(build_app).parameters
    app = build_app(store, None, secret=os.environ["NNI_BENCH_SECRET"]) if takes_secret else build_app(store, None)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[2])).start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

LIVE = """
import json, sys, time
from nni.experiment import Experiment
exp = Experiment("local")
exp.config.trial_command = sys.executable + " trial.py"
exp.config.trial_code_directory = sys.argv[1]
exp.config.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}
exp.config.tuner.name = "Random"
exp.config.trial_concurrency = 4
exp.config.max_trial_number = int(sys.argv[2])
exp.config.experiment_working_directory = sys.argv[3]
exp.start(port=0)
print(json.dumps({"url": getattr(exp, "webui_url", None) or exp.url}), flush=True)
exp.wait()
statuses = [t.status for t in exp.list_trial_jobs()]
print(json.dumps({"done": True, "succeeded": statuses.count("SUCCEEDED"), "trials": len(statuses)}), flush=True)
sys.stdin.readline()
exp.stop()
"""

LIVE_TRIAL = """
import os, time, nni
while not os.path.exists("go"):   # the first trials wait until the page is open
    time.sleep(0.05)
p = nni.get_next_parameter()
for step in range(3):
    nni.report_intermediate_result(p["x"] * (step + 1))
    time.sleep(0.1)
nni.report_final_result(p["x"] + p["y"])
"""

# Records every long task of the page from the start (before any script runs).
LONGTASKS = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longtasks.push([entry.startTime, entry.duration]);
}).observe({type: "longtask", buffered: true});
"""


def log(message: str) -> None:
    print(f"[webui] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_store(path: Path, n: int) -> list[str]:
    """A store of n finished trials (see the module doc); returns the trial ids."""
    sys.path.insert(0, str(REPO))
    from nni.manager.store import Store
    store = Store(path)
    store.set_meta(id=f"bench{n}", status="STOPPED", start_time=1_700_000_000.0, end_time=1_700_100_000.0,
                   optimize_mode="maximize",
                   config={"experimentName": f"bench-{n}", "maxTrialNumber": n, "trialConcurrency": 4, "searchSpace": {
                       "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]},
                       "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
                       "layers": {"_type": "randint", "_value": [1, 9]}}})
    store.close()
    rng = random.Random(0)
    trials, params, metrics, ids = [], [], [], []
    for i in range(n):
        tid = f"t{i:06d}"
        ids.append(tid)
        ok = i % 5 != 4
        start = 1_700_000_000.0 + i
        trials.append((tid, i, "SUCCEEDED" if ok else "EARLY_STOPPED", f"/nowhere/{tid}", start, start,
                       start + rng.random() * 100, 0, None))
        p = {"lr": 10 ** rng.uniform(-4, -1), "opt": rng.choice(["sgd", "adam"]), "layers": rng.randint(1, 8)}
        params.append((i, tid, 0, "algorithm", json.dumps(p), start))
        metrics += [(tid, i, "PERIODICAL", s, json.dumps(rng.random()), start) for s in range(2)]
        if ok:
            metrics.append((tid, i, "FINAL", 0, json.dumps(rng.random()), start))
    sys.path.insert(0, str(REPO / "tests"))
    from store_rows import insert_rows
    insert_rows(path, trials, params, metrics)
    return ids


def env_for(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code)}


def serve(path: Path, code: Path, stranger: bool) -> tuple[subprocess.Popen, str, str]:
    """The store served as `nnictl view` does; (process, base URL, secret)."""
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = {**env_for(code), "NNI_BENCH_SECRET": secret, **({"NNI_BENCH_STRANGER": "1"} if stranger else {})}
    # cwd: `python -c` puts the working directory first on sys.path; it must not be a checkout.
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(path), str(port)], env=env,
                            stdout=subprocess.PIPE, text=True, cwd=path.parent)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the web UI server did not start (exit code {proc.wait()})")
    return proc, f"http://127.0.0.1:{port}", secret


def wait_for_chart(tab: Any, selector: str, refused: list[str]) -> None:
    """Until ``selector`` is in the page; fails at once when the server refused the page a
    request (401/403: a page that can never draw), else after WAIT_MS."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        try:
            # short waits, so a refusal is seen within a second; the selector's wait itself
            # returns as soon as it is attached, so the time measured does not change
            tab.wait_for_selector(selector, state="attached", timeout=1000)
            return
        except PlaywrightTimeout:
            if refused:
                raise RuntimeError(f"{tab.url}: the server refused {len(refused)} request(s), e.g. {refused[0]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tab.url}: no {selector!r} after {WAIT_MS / 1000:.0f} s") from None


def watch_refusals(tab: Any) -> list[str]:
    refused: list[str] = []
    tab.on("response", lambda r: refused.append(f"{r.status} {r.url.split('?')[0]}")
           if r.status in (401, 403) else None)
    return refused


def page_load(context: Any, url: str, selector: str) -> dict[str, Any]:
    """Open url; the time from navigation start to the selector, the script bytes, and the
    address the page ended at (without the token)."""
    tab = context.new_page()
    refused = watch_refusals(tab)
    try:
        tab.goto(url, wait_until="commit", timeout=WAIT_MS)
        wait_for_chart(tab, selector, refused)
        first = tab.evaluate("() => performance.now()")
        scripts = tab.evaluate("""() => performance.getEntriesByType('resource')
            .filter(r => r.initiatorType === 'script' || r.initiatorType === 'link' && r.name.endsWith('.js')
                         || r.name.endsWith('.js'))
            .reduce((a, r) => [a[0] + r.transferSize, a[1] + r.decodedBodySize], [0, 0])""")
        data = tab.evaluate("""(first) => performance.getEntriesByType('resource')
            .filter(r => r.name.includes('/api/v1/nni/') && r.responseEnd <= first)
            .reduce((a, r) => Math.max(a, r.responseEnd - r.requestStart), 0)""", first)
        return {"first": first / 1000, "sent": scripts[0], "decoded": scripts[1], "data": data / 1000, "url": tab.url}
    finally:
        tab.close()


def measure_pages(browser: Any, server: Any, ids: list[str], overview_chart: bool,
                  repeat: int, fresh_server: bool) -> dict[str, dict[str, Any]]:
    """Each page ``repeat`` times, cold (a new browser profile; with ``fresh_server`` a new
    server too) then warm; the medians, and every run's figures under ``runs``."""
    answer = {}
    base, secret = server()
    started = True   # the server has just started
    for name, route, selector in PAGES:
        if name == "overview" and not overview_chart:
            answer[name] = {"first": None, "warm": None, "sent": None, "decoded": None}
            continue
        runs = []
        for _ in range(repeat):
            # the first page (each repeat) always on a new server; with fresh_server every page
            if not started and (fresh_server or name == PAGES[0][0]):
                base, secret = server()
            started = False
            url = f"{base}/?token={secret}{route.format(trial=ids[0], pair=f'{ids[0]},{ids[1]}')}"
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            try:
                cold = page_load(context, url, selector)
                warm = page_load(context, cold.pop("url"), selector)
            finally:
                context.close()
            runs.append({**cold, "warm": warm["first"]})
        answer[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        if repeat > 1:
            answer[name]["runs"] = runs
        m = answer[name]
        log(f"  {name}: first chart {m['first']:.2f} s cold, {m['warm']:.2f} s warm"
            f"{f' (medians of {repeat})' if repeat > 1 else ''}; scripts {m['sent'] / 1e6:.2f} MB sent")
    return answer


def measure_live(browser: Any, code: Path, trials: int, work: Path) -> dict[str, float]:
    """Long-task time of the Charts page while a live experiment runs `trials` trivial trials."""
    code_dir = work / "live-code"
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "trial.py").write_text(textwrap.dedent(LIVE_TRIAL))
    env = {**env_for(code), "NNI_NG_HOME": str(work / "home")}
    proc = subprocess.Popen([sys.executable, "-c", LIVE, str(code_dir), str(trials), str(work / "experiments")],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work)
    try:
        # the address the experiment printed: with ?token= when the code has secrets
        url = json.loads(proc.stdout.readline())["url"].rstrip("/")
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(LONGTASKS)
        tab = context.new_page()
        refused = watch_refusals(tab)
        tab.goto(f"{url}/#/charts" if "?" not in url else f"{url}#/charts", timeout=WAIT_MS)
        # Before any result the chart is empty (axes, or a message): the page is ready once it is drawn.
        wait_for_chart(tab, "#chart-metric .main-svg, #chart-metric .chart-empty", refused)
        begin = tab.evaluate("() => performance.now()")
        (code_dir / "go").touch()
        ended = json.loads(proc.stdout.readline() or "{}")
        if ended.get("succeeded") != trials:
            raise RuntimeError(f"live experiment: {ended.get('succeeded')} of {trials} trials succeeded ({ended})")
        end = tab.evaluate("() => performance.now()")
        tasks = [(s, d) for s, d in tab.evaluate("() => window.__longtasks") if s >= begin]
        context.close()
        blocked = sum(d for _, d in tasks)
        wall = (end - begin) / 1000
        log(f"  live: {trials} trials in {wall:.1f} s, long tasks {blocked / 1000:.2f} s"
            f" ({100 * blocked / (end - begin):.0f} %), longest {max((d for _, d in tasks), default=0):.0f} ms")
        return {"wall": wall, "blocked": blocked / 1000, "share": blocked / (end - begin),
                "longest": max((d for _, d in tasks), default=0.0) / 1000, "count": len(tasks)}
    finally:
        try:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            proc.wait(60)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()


def run(code: Path, sizes: list[int], live_trials: int, skip_live: bool, work: Path,
        results: dict[str, Any], save: Any, stranger: bool = False, repeat: int = 1,
        fresh_server: bool = False) -> dict[str, Any]:
    """Measure what `results` (figures of an earlier run, with --reuse) does not hold yet."""
    from playwright.sync_api import sync_playwright
    overview_chart = (code / "nni" / "manager" / "webui" / "static" / "js" / "pages" / "experiments.js").exists()
    results.setdefault("sizes", {})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        results["chromium"] = browser.version
        try:
            for n in sizes:
                if str(n) in results["sizes"]:
                    continue
                store = work / f"store-{n}" / "db" / "nni.sqlite"
                if not store.exists():
                    store.parent.mkdir(parents=True)
                    log(f"filling a store with {n} trials")
                    fill_store(store, n)
                ids = [f"t{i:06d}" for i in range(2)]
                log(f"{n} trials with {code}")
                servers: list[subprocess.Popen] = []

                def server() -> tuple[str, str]:
                    """A new server (the old one stopped): what a cold load starts from."""
                    for proc in servers:
                        proc.terminate()
                        proc.wait(30)
                    servers.clear()
                    proc, base, secret = serve(store, code, stranger)
                    servers.append(proc)
                    return base, secret
                try:
                    results["sizes"][str(n)] = measure_pages(browser, server, ids, overview_chart, repeat, fresh_server)
                finally:
                    for proc in servers:
                        proc.terminate()
                        proc.wait(30)
                save()
            if not skip_live and "live" not in results:
                results["live"] = measure_live(browser, code, live_trials, Path(tempfile.mkdtemp(dir=work)))
                save()
        finally:
            browser.close()
    return results


def fmt(value: Any, unit: str = "s") -> str:
    if value is None:
        return "–"
    if unit == "MB":
        return f"{value / 1e6:.2f}"
    if unit == "%":
        return f"{100 * value:.0f} %"
    return f"{value:.2f}"


def table(ours: dict[str, Any], other: dict[str, Any] | None, label: str) -> str:
    head = ("| trials | page | first chart, cold (s) | warm (s) | scripts sent (MB) | scripts decoded (MB)"
            " | slowest data, cold (s) |")
    rule = "|---|---|---|---|---|---|---|"
    if other:
        head += f" {label}: cold (s) | {label}: warm (s) | {label}: sent (MB) |"
        rule += "---|---|---|"
    rows = [head, rule]
    for n, pages in ours["sizes"].items():
        for name, m in pages.items():
            row = (f"| {int(n):,} | {name} | {fmt(m['first'])} | {fmt(m['warm'])} | {fmt(m['sent'], 'MB')}"
                   f" | {fmt(m['decoded'], 'MB')} | {fmt(m.get('data'))} |")
            if other:
                o = other["sizes"].get(n, {}).get(name, {})
                row += f" {fmt(o.get('first'))} | {fmt(o.get('warm'))} | {fmt(o.get('sent'), 'MB')} |"
            rows.append(row)
    lines = ["\n".join(rows)]
    for who, result in (("nni-ng (this)", ours), (label, other)):
        live = (result or {}).get("live")
        if live:
            lines.append(f"- live, {who}: {live['wall']:.1f} s of trials finishing with the Charts page open;"
                         f" main thread blocked by long tasks {live['blocked']:.2f} s ({fmt(live['share'], '%')}),"
                         f" {live['count']} long tasks, longest {1000 * live['longest']:.0f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="300 trials and a live run of 12, as a stranger, 30 s waits (~20 s; CI)")
    parser.add_argument("--stranger", action="store_true",
                        help="the page server treats the browser as another user's: only the token lets it in")
    parser.add_argument("--sizes", help="store sizes (trials), comma-separated (default 300,100000; --quick 300)")
    parser.add_argument("--live-trials", type=int, help="trials of the live experiment (default 120; --quick 12)")
    parser.add_argument("--skip-live", action="store_true", help="only the page loads")
    parser.add_argument("--repeat", type=int, default=1,
                        help="cold loads per page (a new browser profile each); the table shows medians")
    parser.add_argument("--fresh-server", action="store_true",
                        help="every cold load on a server just started (by default only each size's first page is)")
    parser.add_argument("--compare", type=Path, help="another checkout's root (holding nni/) to run beside ours")
    parser.add_argument("--compare-label", default="before")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the figures saved by an earlier run (results/webui.json); measure only the rest")
    args = parser.parse_args()
    global WAIT_MS, RESULTS, SAVED
    if args.quick:
        # a page that never draws fails in 30 s, not 3 minutes; the full run's files stay
        WAIT_MS = 30_000
        RESULTS, SAVED = RESULTS.with_name("webui_quick.md"), SAVED.with_name("webui_quick.json")
    sizes = [int(s) for s in (args.sizes or ("300" if args.quick else "300,100000")).split(",") if s]
    live_trials = args.live_trials or (12 if args.quick else 120)
    stranger = args.stranger or args.quick
    saved = json.loads(SAVED.read_text()) if args.reuse and SAVED.exists() else {}
    ours, other = saved.get("ours", {}), saved.get("other", {})

    def save() -> None:
        SAVED.parent.mkdir(parents=True, exist_ok=True)
        SAVED.write_text(json.dumps({"ours": ours, "other": other}, indent=1))

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="nni-webui-bench-") as tmp:
        work = Path(tmp)
        options = {"stranger": stranger, "repeat": args.repeat, "fresh_server": args.fresh_server}
        run(REPO, sizes, live_trials, args.skip_live, work, ours, save, **options)
        if args.compare:
            run(args.compare.resolve(), sizes, live_trials, args.skip_live, work, other, save, **options)
    other = other or None
    command = "python benchmarks/webui.py " + " ".join(a for a in sys.argv[1:])
    cold = ("each page's cold load on a server just started" if args.fresh_server
            else "each size's first page (the overview) on a server just started, the others on the same server")
    text = (f"`{command.strip()}` at commit {commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
            f" {machine()}, headless Chromium {ours.get('chromium', '?')}; load average {load_before:.1f}"
            f" at the start and {os.getloadavg()[0]:.1f} at the end (the machine is shared: higher load,"
            f" slower pages); {cold}"
            + (f"; medians of {args.repeat} cold loads per page" if args.repeat > 1 else "") + "\n\n"
            + table(ours, other, args.compare_label))
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    if not args.quick:
        update_doc(text)


def machine() -> str:
    """The CPU model and count (Linux's /proc/cpuinfo; the platform elsewhere)."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs"


def commit() -> str:
    """The checkout's commit, with ``+changes`` when files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    # this run's own output (the raw figures, the tables) is no change to the code measured
    ours = {str(p.relative_to(REPO)) for p in (RESULTS, SAVED, DOC)}
    changed = [line.split(None, 1)[1] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return head + ("+changes" if [path for path in changed if path not in ours] else "")


def update_doc(text: str) -> None:
    """Put ``text`` between the markers of docs/webui.md (left alone when they are missing)."""
    try:
        DocsBlock(DOC, DOC_START, DOC_END).write(text)
    except SystemExit as exc:
        log(f"{exc}: not updated")


if __name__ == "__main__":
    main()
