"""Trial throughput: how many trivial trials per second an experiment gets through.

Run from the repository root with the project's interpreter::

    .venv/bin/python benchmarks/throughput.py [--quick] [--trials 100] [--concurrency 2,4] [--repeat 1]
                                              [--nni3-python PATH | --skip-nni3]

For every concurrency N it measures, on this machine:

* floor       -- ``python -c "import nni"`` started TRIALS times by a pool of N concurrent
                 subprocesses (the interpreter the trials use): the best any experiment
                 manager could do with trials that import nni;
* nni-ng      -- an experiment of this project (Python API, local training service,
                 Random tuner) of TRIALS trivial trials, wall time around start() + wait();
* NNI 3.0     -- the same experiment on NNI 3.0, run by NNI 3.0's own virtualenv in a
                 subprocess, timed from just before ``start()`` to the last trial's end time
                 in its REST data; plus its own floor (NNI 3.0's ``import nni`` is far heavier).

The table goes to stdout and to benchmarks/results/throughput.md; progress goes to stderr.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from contextlib import contextmanager

from nni.runtime.process import start_ticks
from nni.training_service import _subreaper

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_NNI3_PYTHON = "/work/nni3-venv/bin/python"
RESULTS = HERE / "results" / "throughput.md"
SEARCH_SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}
TRIAL_SCRIPT = "import nni; p = nni.get_next_parameter(); nni.report_final_result(p['x'])\n"


# -- small helpers -------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


@contextmanager
def ticking(label: str, every: float = 5.0) -> Iterator[None]:
    """Print '<label>: Ns elapsed' to stderr every few seconds while the block runs."""
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            log(f"{label}: {time.monotonic() - start:.0f}s elapsed")

    log(f"{label}: started")
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        log(f"{label}: finished in {time.monotonic() - start:.1f}s")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 (and the one after it, which NNI has used for helpers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair found")


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of ``root``'s descendants (Linux /proc; empty elsewhere)."""
    found = ((pid, start_ticks(pid)) for pid in _subreaper.descendants(root))
    return {(pid, start) for pid, start in found if start is not None}


def kill_known(processes: set[tuple[int, str]]) -> int:
    """SIGKILL every recorded process still alive (the start time guards against pid reuse)."""
    killed = 0
    for pid, start in processes:
        if start_ticks(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of every descendant reaped so far.

    The CPU a trial costs is the figure a loaded machine does not blur: wall time there
    depends on what else runs, while trials/s on an idle machine is about cores / CPU per trial.
    """
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- results -------------------------------------------------------------------------------
@dataclass
class Run:
    seconds: float                      # start -> all trials ended
    trials: int
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.trials / self.seconds


@dataclass
class Row:
    concurrency: int
    name: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""                      # "not installed", an error, ...
    floor: "Row | None" = None          # the floor this row is compared with

    @property
    def best(self) -> Run | None:
        return max(self.runs, key=lambda r: r.rate) if self.runs else None

    @property
    def median_rate(self) -> float | None:
        return statistics.median(r.rate for r in self.runs) if self.runs else None


# -- floor ---------------------------------------------------------------------------------
def run_floor(python: str, trials: int, concurrency: int, cwd: Path) -> Run:
    """Start ``python -c 'import nni'`` ``trials`` times, ``concurrency`` at a time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}

    def one(_: int) -> float:
        start = time.perf_counter()
        subprocess.run([python, "-c", "import nni"], cwd=cwd, env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start

    cpu = cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lifetimes = list(pool.map(one, range(trials)))
    seconds = time.perf_counter() - start
    return Run(seconds, trials, {"lifetime_median": statistics.median(lifetimes),
                                 "cpu_ms": (cpu_seconds() - cpu) * 1000 / trials})


# -- nni-ng (this project) -----------------------------------------------------------------
def _random_registered() -> bool:
    try:
        from nni.algorithms.registry import create_algorithm
        create_algorithm("tuner", name="Random", class_args={})
        return True
    except Exception:
        return False


def _fallback_tuner() -> Any:
    from nni.tuner import Tuner

    class UniformTuner(Tuner):
        """Stand-in for the built-in Random tuner while that one is not registered."""

        def __init__(self) -> None:
            self.space: dict[str, Any] = {}

        def update_search_space(self, search_space: dict[str, Any]) -> None:
            self.space = search_space

        def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
            return {k: random.uniform(*v["_value"]) for k, v in self.space.items()}

        def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
            pass

    return UniformTuner()


def _drop_log_handlers(under: Path) -> None:
    """The manager adds a file handler per experiment to the 'nni' logger; drop ours."""
    logger = logging.getLogger("nni")
    for handler in list(logger.handlers):
        filename = getattr(handler, "baseFilename", "")
        if filename and Path(filename).is_relative_to(under):
            logger.removeHandler(handler)
            handler.close()


def ours_breakdown(db_path: Path, concurrency: int) -> dict[str, Any]:
    """Median per-trial latencies from the experiment's own store (times are time.time())."""
    if not db_path.exists():
        return {}
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        trials = db.execute("SELECT trial_id, submit_time, start_time, end_time FROM trials "
                            "ORDER BY sequence_id").fetchall()
        metric_at = dict(db.execute("SELECT trial_id, MIN(timestamp) FROM metrics GROUP BY trial_id").fetchall())
    except sqlite3.Error:
        return {}
    finally:
        db.close()

    def med(values: list[float]) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) * 1000 if values else None

    # The store may keep metric timestamps in ms (NNI's REST convention) or s.
    scale = 1000.0 if metric_at and max(metric_at.values()) > 1e11 else 1.0
    submit = [t[1] for t in trials]
    ends = sorted(t[3] for t in trials if t[3] is not None)
    return {
        "submit_to_spawned_ms": med([t[2] - t[1] for t in trials if t[2] and t[1]]),
        "spawned_to_metric_ms": med([metric_at[t[0]] / scale - t[2] for t in trials
                                     if t[2] and metric_at.get(t[0])]),
        "metric_to_end_ms": med([t[3] - metric_at[t[0]] / scale for t in trials
                                 if t[3] and metric_at.get(t[0])]),
        "lifetime_ms": med([t[3] - t[2] for t in trials if t[2] and t[3]]),
        # A slot frees at the k-th end and is refilled by submission number k + N.
        "end_to_next_submit_ms": med([submit[k + concurrency] - ends[k]
                                      for k in range(min(len(ends), len(submit) - concurrency))]),
    }


def run_ours(python: str, trials: int, concurrency: int, tmp: Path, timeout: float) -> Run:
    from nni.experiment import Experiment

    code_dir = tmp / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "trial.py").write_text(TRIAL_SCRIPT)
    working_dir = tmp / "experiments"
    use_builtin = _random_registered()
    exp = Experiment("local") if use_builtin else Experiment(_fallback_tuner(), "local")
    exp.config.trial_command = f"{shlex.quote(python)} trial.py"
    exp.config.trial_code_directory = str(code_dir)
    exp.config.search_space = SEARCH_SPACE
    if use_builtin:
        exp.config.tuner.name = "Random"
    exp.config.trial_concurrency = concurrency
    exp.config.max_trial_number = trials
    exp.config.experiment_working_directory = str(working_dir)
    state = None
    cpu = cpu_seconds()
    try:
        start = time.perf_counter()
        exp.start(port=0)
        ready = time.perf_counter() - start
        state = exp.wait(timeout=timeout)
        seconds = time.perf_counter() - start
        # The check below (a REST listing of every trial) is the benchmark's, not the
        # experiment's: its CPU is left out, as the floor does no such check.
        listing_cpu = cpu_seconds()
        counts: dict[str, int] = {}
        for job in exp.list_trial_jobs():
            counts[job.status] = counts.get(job.status, 0) + 1
        listing_cpu = cpu_seconds() - listing_cpu
    finally:
        stop_start = time.perf_counter()
        exp.stop()
        stop_seconds = time.perf_counter() - stop_start
        _drop_log_handlers(tmp)
    if state != "DONE" or counts.get("SUCCEEDED", 0) != trials:
        raise RuntimeError(f"nni-ng experiment ended {state} with trials {counts}")
    # Everything the experiment ran is reaped once stop() returned (the manager runs in this process).
    detail = {"ready_ms": ready * 1000, "stop_ms": stop_seconds * 1000,
              "cpu_ms": (cpu_seconds() - cpu - listing_cpu) * 1000 / trials,
              "tuner": "Random" if use_builtin else "fallback UniformTuner"}
    if exp.id:
        detail.update(ours_breakdown(working_dir / exp.id / "db" / "nni.sqlite", concurrency))
    return Run(seconds, trials, detail)


# -- the launch path alone -------------------------------------------------------------------
def run_launch_path(count: int, cwd: Path) -> dict[str, float]:
    """CPU (this process and its children) and round trip per start of ``/bin/true``, one at a
    time: through the local service's spawner (a launcher forked per trial: subreaper, new
    session, output files, its end reported back) and by ``subprocess.run``, the bare cost of
    a process. What the spawner path costs beyond the bare one is the launcher's price on
    every trial; its own start and end are measured apart (a spawner that starts nothing) and
    left out."""
    import asyncio

    from nni.training_service._spawner import Spawner

    out, err = cwd / "launch.out", cwd / "launch.err"

    async def spawner_run(n: int) -> list[float]:
        spawner = await Spawner.start()
        trips = []
        try:
            for _ in range(n):
                started = time.perf_counter()
                trial = await spawner.spawn("/bin/true", cwd=str(cwd), env={}, stdout=out, stderr=err)
                await trial.wait()
                trips.append(time.perf_counter() - started)
        finally:
            await spawner.close()
        return trips

    def timed(work: Callable[[], list[float]]) -> tuple[float, list[float]]:
        cpu = cpu_seconds()
        trips = work()
        return cpu_seconds() - cpu, trips

    def bare() -> list[float]:
        trips = []
        for _ in range(count):
            started = time.perf_counter()
            subprocess.run(["/bin/true"], cwd=cwd, check=True)
            trips.append(time.perf_counter() - started)
        return trips

    best: dict[str, float] = {}
    for _ in range(2):   # two rounds, each side's least CPU: the same load for both
        base_cpu, _ = timed(lambda: asyncio.run(spawner_run(0)))
        spawner_cpu, spawner_trips = timed(lambda: asyncio.run(spawner_run(count)))
        bare_cpu, bare_trips = timed(bare)
        for key, value in (("spawner_cpu_ms", (spawner_cpu - base_cpu) / count * 1000),
                           ("spawner_trip_ms", statistics.median(spawner_trips) * 1000),
                           ("bare_cpu_ms", bare_cpu / count * 1000),
                           ("bare_trip_ms", statistics.median(bare_trips) * 1000)):
            best[key] = min(best.get(key, value), value)
    return best


# -- NNI 3.0 (the peer, in its own virtualenv) ---------------------------------------------
def nni3_version(python: str) -> str | None:
    """NNI's version in that interpreter, or None when it is missing or broken."""
    try:
        out = subprocess.run([python, "-c", "import nni, nni.experiment; print(nni.__version__)"],
                             cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_nni3(python: str, trials: int, concurrency: int, tmp: Path, timeout: float) -> Run:
    code_dir = tmp / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "trial.py").write_text(TRIAL_SCRIPT)
    home = tmp / "home"          # NNI 3.0 keeps its experiment list in ~/nni-experiments
    home.mkdir(exist_ok=True)
    spec = {
        "trial_command": f"{shlex.quote(python)} trial.py",
        "trial_code_directory": str(code_dir),
        "search_space": SEARCH_SPACE,
        "concurrency": concurrency,
        "trials": trials,
        "working_directory": str(tmp / "experiments"),
        "port": free_port(),
        "timeout": timeout,
        "poll": 0.1,
    }
    spec_path, result_path, log_path = tmp / "spec.json", tmp / "result.json", tmp / "worker.log"
    spec_path.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NNI_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))}
    env["HOME"] = str(home)
    seen: set[tuple[int, str]] = set()
    with open(log_path, "wb") as worker_log:
        worker = subprocess.Popen([python, str(HERE / "_nni3_worker.py"), str(spec_path), str(result_path)],
                                  cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=worker_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout + 120
        while worker.poll() is None:
            seen |= descendants(worker.pid)     # NNI's node manager leaves our process group
            if time.monotonic() > deadline:
                raise TimeoutError(f"NNI 3.0 experiment did not finish in {timeout:.0f}s")
            time.sleep(0.5)
    finally:
        if worker.poll() is None:
            seen |= descendants(worker.pid)
            worker.send_signal(signal.SIGTERM)  # the worker stops its experiment in `finally`
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        leftover = kill_known(seen)
        if leftover:
            log(f"NNI 3.0: killed {leftover} leftover process(es)")
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if not result.get("ok") or result.get("last_trial_end") is None:
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        raise RuntimeError(f"NNI 3.0 experiment failed ({result.get('status')}, "
                           f"trials {result.get('trial_statuses')}); worker log tail:\n{tail}")
    succeeded = result.get("trial_statuses", {}).get("SUCCEEDED", 0)
    if succeeded != trials:
        raise RuntimeError(f"NNI 3.0: {succeeded}/{trials} trials succeeded: {result.get('trial_statuses')}")
    lifetimes = result.get("lifetimes") or []
    detail = {"ready_ms": result["ready"] * 1000, "stop_ms": result.get("stop_seconds", 0) * 1000,
              "seen_done_s": result["seen_done"],
              "lifetime_ms": statistics.median(lifetimes) * 1000 if lifetimes else None}
    return Run(result["last_trial_end"], trials, detail)


# -- driver --------------------------------------------------------------------------------
# Every run's directory, removed when the benchmark ends, not after its run: on an ext4 without
# a journal (this project's VMs) creating a file skips over inodes deleted in the last minute,
# reading each one's block: a file or directory then took 0.15-0.2 ms to create instead of
# ~0.02 ms, and a run started right after the previous run's files were deleted paid that on
# each of its trial's files (perf: ~2.5 ms a trial in `recently_deleted` and
# `find_get_block_common`), while the floor creates none. A user's experiment deletes nothing
# while it runs.
_RUN_DIRS: list[Path] = []


def measure_once(row: Row, attempt: int, repeat: int, label: str, once: Callable[[Path], Run]) -> bool:
    """One run of ``row``'s measurement; False (and the row's note says why) when it failed."""
    tmp = Path(tempfile.mkdtemp(prefix="nni-throughput-"))
    _RUN_DIRS.append(tmp)
    try:
        with ticking(f"{label} run {attempt}/{repeat}"):
            run = once(tmp)
        run.detail["load"] = os.getloadavg()[0]
        row.runs.append(run)
        log(f"{label} run {attempt}/{repeat}: {run.seconds:.2f}s, {run.rate:.2f} trials/s")
        return True
    except Exception as exc:
        row.note = f"failed: {exc}".splitlines()[0][:200]
        log(f"{label} run {attempt}/{repeat} FAILED: {exc}")
        return False


def measure(row: Row, repeat: int, label: str, once: Callable[[Path], Run]) -> None:
    for attempt in range(1, repeat + 1):
        if not measure_once(row, attempt, repeat, label, once):
            break


def measure_interleaved(pairs: list[tuple[Row, str, Callable[[Path], Run]]], repeat: int) -> None:
    """Run the measurements in turn, ``repeat`` rounds: on a shared machine a floor and the
    rate compared with it then see the same load (best of the rounds is reported)."""
    broken: set[int] = set()
    for attempt in range(1, repeat + 1):
        for index, (row, label, once) in enumerate(pairs):
            if index not in broken and not measure_once(row, attempt, repeat, label, once):
                broken.add(index)


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def render(rows: list[Row], args: argparse.Namespace, info: dict[str, Any]) -> str:
    lines = [
        "# Trial throughput",
        "",
        f"{args.trials} trivial trials per experiment; best of {args.repeat} run(s) "
        f"(median in parentheses). {info['machine']}",
        "",
        "| N | what | wall s | trials/s | % of floor | Δ wall ms/trial | Δ latency ms/trial | CPU ms/trial "
        "| CPU % of floor | load |",
        "|---|------|-------:|---------:|-----------:|----------------:|-------------------:|---:|---:|-----:|",
    ]
    for row in rows:
        best = row.best
        if best is None:
            lines.append(f"| {row.concurrency} | {row.name} | — | {row.note or 'n/a'} | | | | | | |")
            continue
        rate = f"{best.rate:.2f}"
        if len(row.runs) > 1:
            rate += f" ({row.median_rate:.2f})"
        pct = wall = latency = ""
        floor = row.floor.best if row.floor else None
        if floor is not None:
            pct = f"{100 * best.rate / floor.rate:.0f}%"
            delta = (best.seconds - floor.seconds) / best.trials * 1000
            wall = f"{delta:+.1f}"
            latency = f"{delta * row.concurrency:+.0f}"
        load = fmt(best.detail.get("load"), ".1f")
        cpu = min((r.detail["cpu_ms"] for r in row.runs if "cpu_ms" in r.detail), default=None)
        floor_cpu = min((r.detail["cpu_ms"] for r in row.floor.runs if "cpu_ms" in r.detail), default=None) \
            if row.floor else None
        cpu_pct = f"{100 * floor_cpu / cpu:.0f}%" if cpu and floor_cpu else ""
        lines.append(f"| {row.concurrency} | {row.name} | {best.seconds:.2f} | {rate} | {pct} | {wall} | {latency} "
                     f"| {fmt(cpu, '.1f')} | {cpu_pct} | {load} |")
    lines += [
        "",
        "- load: the 1-minute load average at the end of that (best) run; floor and nni-ng runs alternate "
        "(floor, nni-ng, floor, ...), so each pair saw about the same load.",
        "- CPU ms/trial: user + system CPU of everything the run started (the manager, which runs in the "
        "benchmark's process, included; start() to stop(), less the benchmark's own REST listing of the trials), "
        "per trial, least of the runs; CPU % of floor = floor's / this row's. "
        "Unlike trials/s it hardly depends on the machine's load: on an idle 2-core machine trials/s is about "
        "2 / CPU per trial once N >= 2.",
        "- floor: `python -c \"import nni\"` started by a pool of N concurrent subprocesses, same interpreter as "
        "the trials; % of floor, Δ wall (extra wall time per trial) and Δ latency (Δ wall × N: extra time each "
        "trial holds its slot) compare a row with the floor of its own interpreter.",
        "- nni-ng: wall time around `Experiment.start(port=0)` + `wait()`. NNI 3.0: from just before `start()` "
        "to the last trial's endTime in its REST data (its trials import NNI 3.0, hence its own floor).",
    ]
    breakdown = [(row, row.best) for row in rows if row.best and "submit_to_spawned_ms" in row.best.detail]
    if breakdown:
        lines += [
            "",
            "## nni-ng per-trial latency (median ms, best run, from the experiment's store)",
            "",
            "| N | start() ready | submit→spawned | spawned→final metric | metric→trial end | trial lifetime "
            "| floor process lifetime | slot end→next submit | stop() |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row, best in breakdown:
            d = best.detail
            floor_life = row.floor.best.detail.get("lifetime_median") if row.floor and row.floor.best else None
            lines.append(
                f"| {row.concurrency} | {fmt(d.get('ready_ms'), '.0f')} | {fmt(d.get('submit_to_spawned_ms'), '.1f')} "
                f"| {fmt(d.get('spawned_to_metric_ms'), '.1f')} | {fmt(d.get('metric_to_end_ms'), '.1f')} "
                f"| {fmt(d.get('lifetime_ms'), '.1f')} | {fmt(floor_life and floor_life * 1000, '.1f')} "
                f"| {fmt(d.get('end_to_next_submit_ms'), '.1f')} | {fmt(d.get('stop_ms'), '.0f')} |")
        tuners = {best.detail.get("tuner") for _, best in breakdown}
        lines += ["", f"Tuner used: {', '.join(sorted(t for t in tuners if t))}."]
    nni3 = [(row, row.best) for row in rows if row.best and "seen_done_s" in row.best.detail]
    if nni3:
        lines += ["", "NNI 3.0 details (best run): " + "; ".join(
            f"N={row.concurrency}: start() {r.detail['ready_ms'] / 1000:.1f}s, trial lifetime median "
            f"{fmt(r.detail.get('lifetime_ms'), '.0f')} ms, DONE seen by polling at {r.detail['seen_done_s']:.1f}s, "
            f"stop() {r.detail['stop_ms'] / 1000:.1f}s" for row, r in nni3) + "."]
    launch = info.get("launch_path")
    if isinstance(launch, dict):
        lines += [
            "",
            f"## Launch path alone (`/bin/true`, one at a time, {launch['count']} starts, least of 2 rounds)",
            "",
            "| how | CPU ms per start | round trip ms (median) |",
            "|---|---:|---:|",
            f"| local service's spawner (launcher: subreaper, session, files, end reported) "
            f"| {launch['spawner_cpu_ms']:.2f} | {launch['spawner_trip_ms']:.2f} |",
            f"| `subprocess.run` (the bare process) | {launch['bare_cpu_ms']:.2f} | {launch['bare_trip_ms']:.2f} |",
            "",
            "- CPU: this process and every process it started (spawner, launchers, `/bin/true`); "
            "the spawner's own start and end are measured apart and left out.",
        ]
    lines += ["", f"Interpreters: nni-ng `{info['ours_python']}`; NNI 3.0 `{info['nni3']}`.",
              f"Command: `{info['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="20 trials at concurrency 2, NNI 3.0 only with --nni3-python (a few seconds; CI)")
    parser.add_argument("--trials", type=int, help="trials per experiment (default 100; --quick 20)")
    parser.add_argument("--concurrency", help="comma-separated trialConcurrency values (default 2,4; --quick 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; best and median shown")
    parser.add_argument("--nni3-python",
                        help=f"python of a virtualenv with NNI 3.0 (default {DEFAULT_NNI3_PYTHON} if it exists, "
                             "but not with --quick)")
    parser.add_argument("--skip-nni3", action="store_true", help="do not run the NNI 3.0 peer")
    parser.add_argument("--skip-nni3-floor", action="store_true",
                        help="skip the floor of NNI 3.0's interpreter (its import alone takes ~1 s per trial)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for nni-ng trials and the floor (default: this one)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per experiment (default 900)")
    parser.add_argument("--output", type=Path, help=f"markdown copy of the table (default {RESULTS})")
    parser.add_argument("--launch-starts", type=int,
                        help="starts of /bin/true per side for the launch-path table (default 300; --quick 30; 0: skip)")
    args = parser.parse_args(argv)
    args.trials = args.trials or (20 if args.quick else 100)
    args.concurrency = args.concurrency or ("2" if args.quick else "2,4")
    args.output = args.output or (RESULTS.with_name("throughput_quick.md") if args.quick else RESULTS)
    if args.launch_starts is None:
        args.launch_starts = 30 if args.quick else 300
    if args.nni3_python is None and not args.quick and Path(DEFAULT_NNI3_PYTHON).exists():
        args.nni3_python = DEFAULT_NNI3_PYTHON
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.trials < 1 or args.repeat < 1 or not concurrencies or min(concurrencies) < 1:
        parser.error("--trials, --repeat and every concurrency must be >= 1")

    # nni-ng keeps its experiment registry under $NNI_NG_HOME: keep ours out of the user's.
    home = Path(tempfile.mkdtemp(prefix="nni-throughput-home-"))
    saved_home = os.environ.get("NNI_NG_HOME")
    os.environ["NNI_NG_HOME"] = str(home)
    neutral_cwd = Path(tempfile.mkdtemp(prefix="nni-throughput-cwd-"))  # `-c` must not import ./nni
    # Byte-code for the nni the trials import: with PYTHONDONTWRITEBYTECODE set (as on this
    # project's machines) a checkout has none, and every trial and floor process would compile
    # nni's modules again (~5 ms each), which would blur both sides.
    import compileall
    import nni as _nni
    compileall.compile_dir(str(Path(_nni.__file__).parent), quiet=2)

    nni3_python = None if args.skip_nni3 else args.nni3_python
    nni3_note = "skipped (--skip-nni3)" if args.skip_nni3 else \
        "skipped (--quick without --nni3-python)" if args.quick else "not installed"
    version = nni3_version(nni3_python) if nni3_python else None
    if nni3_python and not version:
        log(f"NNI 3.0 not usable with {nni3_python}")
        nni3_python = None
    elif version and not version.startswith("3."):
        log(f"note: {nni3_python} has NNI {version}, not 3.x")
    info: dict[str, Any] = {
        "machine": f"Machine: {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}.",
        "ours_python": args.python,
        "nni3": f"{nni3_python} (nni {version})" if nni3_python else nni3_note,
        "command": " ".join(["python benchmarks/throughput.py", *(argv if argv is not None else sys.argv[1:])]),
    }

    rows: list[Row] = []
    try:
        for n in concurrencies:
            floor = Row(n, 'floor: `python -c "import nni"`')
            ours = Row(n, "nni-ng", floor=floor)
            rows += [floor, ours]
            measure_interleaved([
                (floor, f"floor N={n}", lambda tmp: run_floor(args.python, args.trials, n, neutral_cwd)),
                (ours, f"nni-ng N={n}", lambda tmp: run_ours(args.python, args.trials, n, tmp, args.timeout)),
            ], args.repeat)
            nni3_floor = None
            if nni3_python and not args.skip_nni3_floor:
                nni3_floor = Row(n, 'floor NNI 3.0: `python -c "import nni"`')
                rows.append(nni3_floor)
                measure(nni3_floor, args.repeat, f"NNI 3.0 floor N={n}",
                        lambda tmp: run_floor(nni3_python, args.trials, n, neutral_cwd))
            peer = Row(n, "NNI 3.0", floor=nni3_floor, note="" if nni3_python else nni3_note)
            rows.append(peer)
            if nni3_python:
                measure(peer, args.repeat, f"NNI 3.0 N={n}",
                        lambda tmp: run_nni3(nni3_python, args.trials, n, tmp, args.timeout))
        if args.launch_starts > 0:
            with ticking("launch path"):
                info["launch_path"] = {"count": args.launch_starts,
                                       **run_launch_path(args.launch_starts, neutral_cwd)}
    except KeyboardInterrupt:
        log("interrupted: printing what was measured")
    finally:
        for run_dir in [home, neutral_cwd, *_RUN_DIRS]:
            shutil.rmtree(run_dir, ignore_errors=True)
        if saved_home is None:
            os.environ.pop("NNI_NG_HOME", None)
        else:
            os.environ["NNI_NG_HOME"] = saved_home

    table = render(rows, args, info)
    print(table)
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table)
        log(f"table written to {args.output}")
    except OSError as exc:
        log(f"could not write {args.output}: {exc}")
    if nni3_python is None:
        print(f"NNI 3.0 {nni3_note}")
    failed = [row for row in rows if row.note.startswith("failed")]
    for row in failed:
        print(f"BROKEN: {row.name} N={row.concurrency}: {row.note}")
    return 1 if failed or not any(row.runs for row in rows if row.name == "nni-ng") else 0


if __name__ == "__main__":
    sys.exit(main())
