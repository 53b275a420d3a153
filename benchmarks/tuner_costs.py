"""Tuner costs: time and memory per suggestion as the history grows, and resume of a large experiment.

    .venv/bin/python benchmarks/tuner_costs.py            # the full table (~10 min on 2 quiet cores)
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tuner_costs.py   # on a shared, loaded
        # machine: BLAS threads that spin for a core nobody gives them would count as the tuner's CPU time
    .venv/bin/python benchmarks/tuner_costs.py --quick    # small sizes, no resume (<= 30 s; CI)
    .venv/bin/python benchmarks/tuner_costs.py --from-results benchmarks/results/tuner_costs.json
    .venv/bin/python benchmarks/tuner_costs.py --from-results benchmarks/results/tuner_costs.json --update-docs
    .venv/bin/python benchmarks/tuner_costs.py --tuners TPE,GP --resume 0 \
        --merge benchmarks/results/tuner_costs.json --update-docs   # measure two tuners again, keep the rest

Suggestion cost: a tuner gets N results (``receive_trial_result`` of random parameter sets;
SMAC gets them by ``import_data``, as a resumed experiment gives them), then one more result
arrives before each timed ``generate_parameters`` (so no cached model is reused), median of
``--repeats``; the peak of Python's allocations (tracemalloc, numpy's included) is taken
over one further suggestion.  Single-objective tuners run on a 4-parameter numeric space
(uniform, loguniform, randint, numeric choice), NSGA2 and MOTPE on DTLZ2 with 3 objectives.

Resume (``--resume``, not in ``--quick``): a store with 5,000 finished trials of each
tuner, written with direct SQL in the real schema, resumed by ``python -m nni.manager
--resume`` (what ``nnictl resume`` starts); timed from the start of that process to the
first new trial in the store.

Raw output: benchmarks/results/tuner_costs[_quick].json; the markdown table printed and, with
``--update-docs``, written between the markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))   # run as a script or loaded by path: its folder's helpers
from _docs_block import DocsBlock  # noqa: E402

DOCS_BLOCK = DocsBlock(ROOT / "docs" / "benchmarks.md", "<!-- tuner_costs:begin -->", "<!-- tuner_costs:end -->")

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "n": {"_type": "randint", "_value": [1, 9]},
    "c": {"_type": "choice", "_value": [0.5, 1.0, 2.0, 4.0]},
}
MO_SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(5)}
OBJECTIVES = [{"metric": f"f{i}", "mode": "minimize"} for i in range(3)]

# tuner name -> (constructor kwargs, multi-objective)
TUNERS: dict[str, tuple[dict, bool]] = {
    "TPE": ({}, False),
    "GP": ({}, False),
    "Metis": ({}, False),
    "SMAC": ({}, False),
    "NSGA2": ({}, True),
    "MOTPE": ({}, True),
}
FULL_SIZES = [100, 1000, 2000, 5000]
QUICK_SIZES = [100, 500]
# targets of issues 31 and 28 (100 results) on 2 quiet cores: (tuner, results) -> (seconds, MB)
TARGETS = {("GP", 5000): (1.0, 300), ("GP", 100): (0.05, None), ("TPE", 100): (0.001, None), ("NSGA2", 5000): (0.1, None), ("MOTPE", 5000): (0.1, None),
           ("Metis", 1000): (0.5, None),
           ("SMAC", 5000): (5.0, None)}   # the target is at 3,000 imported rows; 5,000 is harder
RESUME_TARGET_S = 10.0


def _make(name: str, seed: int = 0) -> Any:
    from nni.algorithms.hpo.gp_tuner import GPTuner
    from nni.algorithms.hpo.metis_tuner import MetisTuner
    from nni.algorithms.hpo.motpe_tuner import MOTPETuner
    from nni.algorithms.hpo.nsga2_tuner import NSGA2Tuner
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    kwargs, multi = TUNERS[name]
    if name == "SMAC":
        from nni.algorithms.hpo.smac_tuner import SMACTuner
        tuner = SMACTuner(optimize_mode="minimize", seed=seed)
    elif multi:
        tuner = {"NSGA2": NSGA2Tuner, "MOTPE": MOTPETuner}[name](objectives=OBJECTIVES, seed=seed, **kwargs)
    else:
        tuner = {"TPE": TpeTuner, "GP": GPTuner, "Metis": MetisTuner}[name](
            optimize_mode="minimize", seed=seed, **kwargs)
    tuner.update_search_space(MO_SPACE if multi else SPACE)
    return tuner


def _random_params(rng: random.Random, multi: bool) -> dict:
    if multi:
        return {k: rng.random() for k in MO_SPACE}
    return {"x": rng.random(), "lr": 10 ** rng.uniform(-4, -1), "n": rng.randint(1, 8),
            "c": rng.choice([0.5, 1.0, 2.0, 4.0])}


def _value(p: dict, multi: bool) -> Any:
    if multi:   # DTLZ2, 3 objectives, 5 variables
        g = sum((p[f"x{i}"] - 0.5) ** 2 for i in range(2, 5))
        a, b = p["x0"] * math.pi / 2, p["x1"] * math.pi / 2
        return {"default": (1 + g) * math.cos(a) * math.cos(b), "f0": (1 + g) * math.cos(a) * math.cos(b),
                "f1": (1 + g) * math.cos(a) * math.sin(b), "f2": (1 + g) * math.sin(a)}
    return (p["x"] - 0.3) ** 2 + (math.log10(p["lr"]) + 2.5) ** 2 / 4 + abs(p["n"] - 5) / 8 + 0.1 * p["c"]


def bench_suggestion(name: str, n: int, repeats: int) -> dict[str, Any]:
    """Seconds per suggestion (median) and peak MB of one, after ``n`` results."""
    multi = TUNERS[name][1]
    rng = random.Random(n)
    tuner = _make(name)
    rows = [_random_params(rng, multi) for _ in range(n)]
    started = time.perf_counter()
    if name == "SMAC":
        tuner.import_data([{"parameter": p, "value": _value(p, multi)} for p in rows])
    else:
        for i, p in enumerate(rows):
            tuner.receive_trial_result(i, p, _value(p, multi))
    feed_s = time.perf_counter() - started
    times, cpu = [], []
    pid = n
    for r in range(repeats + 1):
        if r or name != "SMAC":   # SMAC: the first suggestion after the import is the one the issue timed
            p = _random_params(rng, multi)
            tuner.receive_trial_result(pid, p, _value(p, multi))
            pid += 1
        started, cpu_started = time.perf_counter(), time.process_time()
        params = tuner.generate_parameters(pid)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        tuner.receive_trial_result(pid, params, _value(params, multi))
        pid += 1
        if name == "SMAC" and r == 0:
            first, first_cpu = times[0], cpu[0]
    p = _random_params(rng, multi)
    tuner.receive_trial_result(pid, p, _value(p, multi))
    tracemalloc.start()
    tuner.generate_parameters(pid + 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the first timed suggestion is left out (GP/Metis: a cold hyperparameter fit; SMAC: shown apart)
    out = {"tuner": name, "n": n, "s": statistics.median(times[1:]), "cpu_s": statistics.median(cpu[1:]),
           "times": times, "cpu_times": cpu, "peak_mb": peak / 2**20, "feed_s": feed_s}
    if name == "SMAC":
        out["first_s"], out["first_cpu_s"] = first, first_cpu
    return out


# ---- resume -------------------------------------------------------------------------------------
RESUME_TUNERS = {"TPE": "TPE", "GP": "GPTuner", "Metis": "MetisTuner", "SMAC": "SMAC", "NSGA2": "NSGA2",
                 "MOTPE": "MOTPE"}


def make_store(work: Path, tuner: str, trials: int) -> Path:
    """An experiment directory with ``trials`` SUCCEEDED trials of ``tuner`` (direct SQL, real schema)."""
    from nni.experiment import Experiment
    from nni.manager.store import Store
    multi = TUNERS[tuner][1]
    exp_dir = work / "experiments" / "costs"
    (work / "code").mkdir(parents=True, exist_ok=True)
    exp = Experiment("local")
    exp.config.trial_command = "true"
    exp.config.trial_code_directory = str(work / "code")
    exp.config.search_space = MO_SPACE if multi else SPACE
    exp.config.trial_concurrency = 1
    exp.config.max_trial_number = trials + 1     # one new trial, then DONE
    exp.config.experiment_working_directory = str(work / "experiments")
    exp.config.tuner.name = RESUME_TUNERS[tuner]
    if multi:
        exp.config.objectives = OBJECTIVES
    else:
        exp.config.tuner.class_args = {"optimize_mode": "minimize"}
    config = exp.config.canonical_copy()
    store = Store(exp_dir / "db" / "nni.sqlite")
    now = time.time() - 3600
    store.set_meta(id="costs", config=config.json(), start_time=now, end_time=now + 3000, status="STOPPED")
    store.add_event("EXPERIMENT_CREATED")
    store.close()
    rng = random.Random(0)
    trial_rows, params, metrics = [], [], []
    for i in range(trials):
        tid = f"t{i:06d}"
        p = _random_params(rng, multi)
        trial_rows.append((tid, i, "SUCCEEDED", str(exp_dir / "trials" / tid), now, now + 1, now + 2, 0, None))
        params.append((i, tid, 0, "algorithm", json.dumps(p), now))
        metrics.append((tid, i, "FINAL", 0, json.dumps(_value(p, multi)), now + 2))
    sys.path.insert(0, str(ROOT / "tests"))
    from store_rows import insert_rows
    insert_rows(exp_dir / "db" / "nni.sqlite", trial_rows, params, metrics)
    return exp_dir


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_resume(tuner: str, trials: int) -> dict[str, Any]:
    """Seconds from starting the resumed manager to the first new trial in its store."""
    with tempfile.TemporaryDirectory(prefix="nni-costs-") as tmp:
        work = Path(tmp)
        exp_dir = make_store(work, tuner, trials)
        env = {**os.environ, "NNI_NG_HOME": str(work / "home"), "HOME": str(work / "home")}
        started = time.perf_counter()
        manager = subprocess.Popen([sys.executable, "-m", "nni.manager", "--resume", "costs", "--dir", str(exp_dir),
                                    "--port", "0", "--foreground"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=env, cwd=work, text=True)
        out: dict[str, Any] = {"tuner": tuner, "trials": trials}
        try:
            db = exp_dir / "db" / "nni.sqlite"
            deadline = started + 300
            while time.perf_counter() < deadline:
                if manager.poll() is not None:
                    out["error"] = f"manager exited {manager.returncode}: {manager.stderr.read()[-500:]}"
                    break
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
                try:
                    row = con.execute("SELECT COUNT(*) FROM trials WHERE sequence_id >= ?", (trials,)).fetchone()
                finally:
                    con.close()
                if row[0]:
                    out["s"] = time.perf_counter() - started
                    out["cpu_s"] = _process_cpu_s(manager.pid)
                    break
                time.sleep(0.05)
            else:
                out["error"] = "no new trial within 300 s"
        finally:
            manager.terminate()
            try:
                manager.wait(60)
            except subprocess.TimeoutExpired:
                manager.kill()
                manager.wait()
    return out


def merge(old: dict, new: dict) -> dict:
    """``old`` with the suggestion rows (and resume rows) that ``new`` measured replaced by its own;
    each replaced row records the run it came from, listed in ``meta['merged']``."""
    run = {k: new["meta"][k] for k in ("command", "commit", "load_start", "load_end", "blas_threads")}
    measured = {(r["tuner"], r["n"]) for r in new["suggestion"]}
    rows = [r for r in old["suggestion"] if (r["tuner"], r["n"]) not in measured]
    rows += [{**r, "run": len(old["meta"].get("merged", []))} for r in new["suggestion"]]
    order = {t: i for i, t in enumerate(TUNERS)}
    rows.sort(key=lambda r: (order.get(r["tuner"], len(order)), r["n"]))
    resumed = {r["tuner"] for r in new["resume"]}
    resume = [r for r in old.get("resume", []) if r["tuner"] not in resumed] + new["resume"]
    meta = {**old["meta"], "merged": [*old["meta"].get("merged", []), run]}
    return {"meta": meta, "suggestion": rows, "resume": resume}


# ---- table --------------------------------------------------------------------------------------
def _fmt_s(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _mark(run: int) -> str:
    return "†" * (run + 1)


def render(data: dict) -> str:
    meta, rows = data["meta"], data["suggestion"]
    sizes = sorted({r["n"] for r in rows})
    tuners = [t for t in TUNERS if any(r["tuner"] == t for r in rows)]
    by = {(r["tuner"], r["n"]): r for r in rows}
    out = [f"Command: `{meta['command']}`; commit {meta['commit']}; {meta['machine']}; "
           f"load average {meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end; "
           f"Python {meta['python']}; BLAS threads: {meta.get('blas_threads', 'default')}.", "",
           *[f"Rows marked {_mark(i)}: measured later by `{m['command']}`; commit {m['commit']}; load average "
             f"{m['load_start']:.2f} at the start, {m['load_end']:.2f} at the end; BLAS threads: {m['blas_threads']}."
             for i, m in enumerate(meta.get("merged", []))],
           *([""] if meta.get("merged") else []),
           "Per suggestion after N results: median wall time [CPU time of the process, all threads] "
           "(peak MB of Python allocations). SMAC: the first suggestion after importing N rows, then the "
           "median of the next ones. ✓/✗: the target of issue 31 (28 at 100 results) met or not, judged on CPU time when the "
           "load average was above the number of cores (wall time then measures the other processes).", "",
           "| tuner | " + " | ".join(f"{n:,} results" for n in sizes) + " |",
           "|---|" + "---:|" * len(sizes)]
    loaded = max(meta["load_start"], meta["load_end"]) > meta.get("cores", 2)
    for t in tuners:
        cells = []
        for n in sizes:
            r = by.get((t, n))
            if r is None:
                cells.append("—")
                continue
            cell = f"{_fmt_s(r['s'])} [{_fmt_s(r['cpu_s'])}] ({r['peak_mb']:.0f} MB)"
            if "run" in r:
                cell += _mark(r["run"])
            if "first_s" in r:
                cell = f"first {_fmt_s(r['first_s'])} [{_fmt_s(r['first_cpu_s'])}], then {cell}"
                if (t, n) == ("SMAC", 5000):
                    cell += " (target: first < 5 s at 3,000 rows)"
            target = TARGETS.get((t, n))
            if target:
                run = meta["merged"][r["run"]] if "run" in r else meta
                row_loaded = max(run["load_start"], run["load_end"]) > meta.get("cores", 2)
                s = r.get("first_cpu_s" if row_loaded else "first_s", r["cpu_s"] if row_loaded else r["s"])
                ok = s < target[0] and (target[1] is None or r["peak_mb"] < target[1])
                cell += f" {'✓' if ok else '✗'} < {_fmt_s(target[0])}" + (f", {target[1]} MB" if target[1] else "")
            cells.append(cell)
        out.append(f"| {t} | " + " | ".join(cells) + " |")
    if data.get("resume"):
        out += ["", f"Resume of an experiment with {data['resume'][0]['trials']:,} finished trials to the first "
                f"new trial (`python -m nni.manager --resume`, what `nnictl resume` starts; target < "
                f"{RESUME_TARGET_S:.0f} s): wall seconds [CPU seconds of the manager process].", "",
                "| tuner | seconds |", "|---|---:|"]
        for r in data["resume"]:
            if "s" in r:
                ok = (r["cpu_s"] if loaded else r["s"]) < RESUME_TARGET_S
                cell = f"{r['s']:.1f} [{r['cpu_s']:.1f}] {'✓' if ok else '✗'}"
            else:
                cell = f"error: {r['error']}"
            out.append(f"| {r['tuner']} | {cell} |")
    return "\n".join(out)


def update_docs(table: str) -> None:
    DOCS_BLOCK.write(table)


def docs_table() -> str:
    """The table now between the markers of docs/benchmarks.md."""
    return DOCS_BLOCK.read()


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores{', ' + model if model else ''}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/tuner_costs.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 100 and 500, no resume (<= 30 s)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="default 100,1000,2000,5000")
    ap.add_argument("--tuners", type=lambda s: s.split(","), help=f"default {','.join(TUNERS)}")
    ap.add_argument("--repeats", type=int, default=3, help="timed suggestions per size (median; default 3)")
    ap.add_argument("--resume", type=int, default=None, metavar="TRIALS",
                    help="also time the resume of a store of TRIALS trials per tuner (default 5000 unless --quick)")
    ap.add_argument("--from-results", metavar="JSON", help="run nothing: print the table of an earlier results file")
    ap.add_argument("--update-docs", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--out", help="results JSON (default benchmarks/results/tuner_costs[_quick].json)")
    ap.add_argument("--merge", metavar="JSON",
                    help="keep the rows of this earlier results file that this run does not measure again "
                         "(the new rows carry their own commit and load; the table says which)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.from_results:
        table = render(json.loads(Path(args.from_results).read_text()))
        print(table)
        if args.update_docs:
            update_docs(table)
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    tuners = args.tuners or list(TUNERS)
    if "SMAC" in tuners:
        try:
            import smac  # noqa: F401
        except ImportError:
            print("SMAC skipped: the smac package is not installed", file=sys.stderr)
            tuners.remove("SMAC")
    resume_trials = args.resume if args.resume is not None else (0 if args.quick else 5000)
    load_start = os.getloadavg()[0]
    results: list[dict] = []
    for name in tuners:
        for n in sizes:
            r = bench_suggestion(name, n, args.repeats)
            results.append(r)
            print(f"  {name:6} {n:6,}: {_fmt_s(r['s'])} [{_fmt_s(r['cpu_s'])} CPU] per suggestion"
                  + (f" (first {_fmt_s(r['first_s'])})" if "first_s" in r else "")
                  + f", peak {r['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
    resume = []
    if resume_trials:
        for name in tuners:
            r = bench_resume(name, resume_trials)
            resume.append(r)
            print(f"  resume {name:6} {resume_trials:,}: " + (f"{r['s']:.1f} s" if "s" in r else r["error"]),
                  file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True).stdout.strip()
    data = {"meta": {"command": " ".join(["benchmarks/tuner_costs.py", *(argv if argv is not None else sys.argv[1:])]),
                     "commit": commit, "machine": _machine(), "load_start": load_start,
                     "load_end": os.getloadavg()[0], "python": sys.version.split()[0], "sizes": sizes,
                     "cores": os.cpu_count(),
                     "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default",
                     "repeats": args.repeats},
            "suggestion": results, "resume": resume}
    if args.merge:
        data = merge(json.loads(Path(args.merge).read_text()), data)
    table = render(data)
    data["table_markdown"] = table
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"tuner_costs{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    print(table)
    print(f"results: {out}", file=sys.stderr)
    if render(json.loads(out.read_text())) != table:   # the --from-results path must give the same table
        print("BROKEN: the table regenerated from the results file differs")
        return 1
    if args.update_docs:
        update_docs(table)
    failed = [r for r in resume if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
