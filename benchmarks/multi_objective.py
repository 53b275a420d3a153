"""Multi-objective benchmark: final hypervolume of MOTPE, NSGA2 and Random beside Optuna's
NSGAIISampler and multi-objective TPESampler, in one run.

Run from the repository root with the project's venv::

    nice python -m benchmarks.multi_objective --quick     # 3 seeds, 100 trials, synthetic problems
    nice python -m benchmarks.multi_objective             # 10 seeds, 100 and 200 trials, all problems
    nice python -m benchmarks.multi_objective --peer-python /path/to/venv/bin/python
    python -m benchmarks.multi_objective --smoke         # ~10 s: every problem, 2 seeds, 40 trials (CI)
    python -m benchmarks.multi_objective --from-results benchmarks/results/multi_objective_smoke.json.gz

Optuna runs in its own venv, never the project's, through the mechanism of the tuner quality
benchmark (``benchmarks/tuner_quality``): one subprocess per run, started with the peer
interpreter as ``python -m benchmarks.multi_objective --peer '<job json>'``; this module
imports ``nni`` only for our own runs.  Without ``--peer-python`` the venv
``~/.cache/nni-ng/bench-venv`` is used (and created when missing).

Every (tuner, problem, seed) run goes to the largest budget; the hypervolume after each
budget is computed from the first ``budget`` results with a fixed reference point per
problem (below).  The table gives the median hypervolume [25th-75th percentile] over seeds
and the rank of that median (``r1`` = best; bold).  ``≈`` marks a cell of ours that a
Mann-Whitney test cannot tell apart (p > 0.05) from the better of Optuna's two samplers.
Results go to ``benchmarks/results/multi_objective[_quick|_smoke].json`` (``--out X.json.gz``
compresses them); ``--from-results`` prints the table of such files again.

Problems (all objectives minimised):

* ``zdt1``, ``zdt2``: Zitzler-Deb-Thiele, 30 variables in [0, 1], 2 objectives (convex and
  concave fronts); reference point (1.1, 11).
* ``dtlz2``: Deb-Thiele-Laumanns-Zitzler, 12 variables, 3 objectives (a sphere octant);
  reference point (3, 3, 3).
* ``rf_digits``: a random forest on scikit-learn's digits (holdout split), error against
  model size (total tree nodes); reference point (1.0, 12000).  Size, not fit time: fit
  time on a shared machine is noise, and the runs of different tuners happen at different
  moments, so their hypervolumes would not be comparable.  Space: randint, uniform,
  loguniform and choice.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks._peer_process import run_in_peer_venv

ROOT = Path(__file__).resolve().parents[1]
OURS = ("motpe", "nsga2", "random")
PEERS = ("optuna_nsga2", "optuna_tpe")


# ---- problems (numpy, plus scikit-learn for rf_digits; no nni) ---------------------------------
@dataclass(frozen=True)
class MOProblem:
    name: str
    space: dict
    fn: Callable[[dict], list[float]]
    metrics: tuple[str, ...]
    ref: tuple[float, ...]
    description: str


def _u(lo: float, hi: float) -> dict:
    return {"_type": "uniform", "_value": [lo, hi]}


def zdt1(p: dict) -> list[float]:
    x = np.array([p[f"x{i}"] for i in range(30)])
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(x[1:].mean())
    return [f1, g * (1.0 - math.sqrt(f1 / g))]


def zdt2(p: dict) -> list[float]:
    x = np.array([p[f"x{i}"] for i in range(30)])
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(x[1:].mean())
    return [f1, g * (1.0 - (f1 / g) ** 2)]


def dtlz2(p: dict) -> list[float]:
    x = np.array([p[f"x{i}"] for i in range(12)])
    g = float(((x[2:] - 0.5) ** 2).sum())
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return [(1 + g) * math.cos(a) * math.cos(b), (1 + g) * math.cos(a) * math.sin(b), (1 + g) * math.sin(a)]


@lru_cache(maxsize=None)
def _digits_split() -> tuple:
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1200], idx[1200:]
    return X[tr], y[tr], X[te], y[te]


def rf_digits(p: dict) -> list[float]:
    from sklearn.ensemble import RandomForestClassifier
    Xtr, ytr, Xte, yte = _digits_split()
    clf = RandomForestClassifier(n_estimators=int(p["n_estimators"]), max_depth=int(p["max_depth"]),
                                 max_features=float(p["max_features"]), min_samples_leaf=int(p["min_samples_leaf"]),
                                 criterion=p["criterion"], random_state=0, n_jobs=1)
    clf.fit(Xtr, ytr)
    err = 1.0 - float(clf.score(Xte, yte))
    nodes = float(sum(t.tree_.node_count for t in clf.estimators_))
    return [err, nodes]


PROBLEMS: dict[str, MOProblem] = {p.name: p for p in [
    MOProblem("zdt1", {f"x{i}": _u(0, 1) for i in range(30)}, zdt1, ("f1", "f2"), (1.1, 11.0),
              "ZDT1, 30 variables, 2 objectives"),
    MOProblem("zdt2", {f"x{i}": _u(0, 1) for i in range(30)}, zdt2, ("f1", "f2"), (1.1, 11.0),
              "ZDT2, 30 variables, 2 objectives"),
    MOProblem("dtlz2", {f"x{i}": _u(0, 1) for i in range(12)}, dtlz2, ("f1", "f2", "f3"), (3.0, 3.0, 3.0),
              "DTLZ2, 12 variables, 3 objectives"),
    MOProblem("rf_digits", {
        "n_estimators": {"_type": "randint", "_value": [1, 33]},
        "max_depth": {"_type": "randint", "_value": [1, 17]},
        "max_features": {"_type": "loguniform", "_value": [0.02, 1.0]},
        "min_samples_leaf": {"_type": "randint", "_value": [1, 11]},
        "criterion": {"_type": "choice", "_value": ["gini", "entropy"]},
    }, rf_digits, ("error", "nodes"), (1.0, 12000.0), "random forest on digits: error vs total tree nodes"),
]}
SYNTHETIC = ("zdt1", "zdt2", "dtlz2")


def hypervolume(F: list[list[float]], ref: tuple[float, ...]) -> float:
    """Exact hypervolume (2 or 3 minimised objectives) of ``F`` within ``ref``; no nni import,
    so the peers' process can use it too (checked against nni's own routine by the tests)."""
    P = np.array([f for f in F if all(v < r for v, r in zip(f, ref))], dtype=float).reshape(-1, len(ref))
    if not len(P):
        return 0.0
    if len(ref) == 2:
        return _hv2(P, np.array(ref))
    order = np.argsort(P[:, 2], kind="stable")
    P = P[order]
    vol = 0.0
    for i in range(len(P)):
        top = P[i + 1, 2] if i + 1 < len(P) else ref[2]
        vol += (top - P[i, 2]) * _hv2(P[: i + 1, :2], np.array(ref[:2]))
    return float(vol)


def _hv2(P: np.ndarray, r: np.ndarray) -> float:
    order = np.lexsort((P[:, 1], P[:, 0]))
    best, vol = r[1], 0.0
    for f0, f1 in P[order]:
        if f1 < best:
            vol += (r[0] - f0) * (best - f1)
            best = f1
    return float(vol)


def _drive(ask: Callable[[], tuple[Any, dict]], tell: Callable[[Any, dict, list[float]], None],
           fn: Callable[[dict], list[float]], budget: int, parallel: int) -> dict:
    from types import SimpleNamespace
    from benchmarks.tuner_quality.problems import drive
    # drive() takes a tuner-quality Problem (noisy or not); ours are deterministic vectors
    return drive(ask, tell, SimpleNamespace(observe=fn, fn=fn, noise=0.0), budget, parallel)


# ---- ours ----------------------------------------------------------------------------------
def run_ours(tuner_name: str, problem: str, seed: int, budget: int, parallel: int) -> dict:
    from nni.algorithms.registry import create_algorithm
    prob = PROBLEMS[problem]
    name = {"motpe": "MOTPE", "nsga2": "NSGA2", "random": "Random"}[tuner_name]
    args: dict = {"seed": seed}
    if name != "Random":
        args["objectives"] = [{"metric": m, "mode": "minimize"} for m in prob.metrics]
    tuner = create_algorithm("tuner", name=name, class_args=args)
    tuner.update_search_space(prob.space)
    ids = iter(range(budget))

    def ask() -> tuple[int, dict]:
        pid = next(ids)
        return pid, tuner.generate_parameters(pid)

    def tell(pid: int, params: dict, values: list[float]) -> None:
        # the manager's shape of a multi-objective final result: one dict, every metric
        tuner.receive_trial_result(pid, params, {"default": values[0], **dict(zip(prob.metrics, values))})
        tuner.trial_end(pid, True)

    return _drive(ask, tell, prob.fn, budget, parallel)


# ---- the peers (run in the peer venv) ------------------------------------------------------------
def run_peer(tuner_name: str, problem: str, seed: int, budget: int, parallel: int) -> dict:
    import warnings
    import optuna
    from benchmarks.tuner_quality.peer import optuna_params
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    prob = PROBLEMS[problem]
    if tuner_name == "optuna_nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:   # Optuna 5's defaults (multivariate), constant liar when trials are pending
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=parallel > 1)
    study = optuna.create_study(directions=["minimize"] * len(prob.metrics), sampler=sampler)

    def ask() -> tuple[Any, dict]:
        trial = study.ask()
        return trial, optuna_params(trial, prob.space)

    return _drive(ask, lambda trial, params, values: study.tell(trial, values), prob.fn, budget, parallel)


# ---- runner --------------------------------------------------------------------------------------
def _run_job(job: dict) -> dict:
    t0 = time.perf_counter()
    try:
        if job["tuner"] in PEERS:
            out = run_in_peer_venv(job["peer_python"], ["benchmarks.multi_objective", "--peer"], job)
        else:
            out = run_ours(job["tuner"], job["problem"], job["seed"], job["budget"], job["parallel"])
    except Exception as exc:   # one failing run must not lose the others
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["wall_s"] = time.perf_counter() - t0
    if "losses" in out:
        prob = PROBLEMS[job["problem"]]
        out["hv"] = {str(b): hypervolume(out["losses"][:b], prob.ref) for b in job["budgets"]}
    return {**job, **out}


def summarize(results: list[dict], budgets: list[int]) -> list[dict]:
    from benchmarks.tuner_quality.__main__ import _avg_ranks, mann_whitney_p
    rows = []
    runs = [r for r in results if "hv" in r]
    for parallel in sorted({r["parallel"] for r in runs}):
        for problem in PROBLEMS:
            group = [r for r in runs if r["problem"] == problem and r["parallel"] == parallel]
            if not group:
                continue
            tuners = [t for t in OURS + PEERS if any(r["tuner"] == t for r in group)]
            for b in budgets:
                hv = {t: [r["hv"][str(b)] for r in group if r["tuner"] == t] for t in tuners}
                med = {t: float(np.median(v)) for t, v in hv.items()}
                # rank of the medians, 1 = largest hypervolume
                ranks = dict(zip(tuners, _avg_ranks(-np.array([med[t] for t in tuners]))))
                best_peer = max((t for t in tuners if t in PEERS), key=lambda t: med[t], default=None)
                for t in tuners:
                    row = {"parallel": parallel, "problem": problem, "budget": b, "tuner": t, "seeds": len(hv[t]),
                           "median": med[t], "q25": float(np.percentile(hv[t], 25)),
                           "q75": float(np.percentile(hv[t], 75)), "rank": float(ranks[t])}
                    if best_peer and t in OURS:
                        row["best_peer"] = best_peer
                        row["p_vs_best_peer"] = mann_whitney_p(hv[t], hv[best_peer])
                    rows.append(row)
    return rows


def _cell(c: dict, best: bool) -> str:
    s = f"{c['median']:.5g} [{c['q25']:.5g}, {c['q75']:.5g}] r{c['rank']:g}"
    if best:
        s = f"**{s}**"
    if c.get("p_vs_best_peer", 0) > 0.05:
        s += " ≈"
    return s


def render(rows: list[dict], budgets: list[int]) -> str:
    from benchmarks.tuner_quality.__main__ import table_rows
    out = []
    for parallel in sorted({r["parallel"] for r in rows}):
        out.append(f"\n### {'Sequential' if parallel == 1 else f'Parallel: {parallel} pending trials'}"
                   f" (median hypervolume [25th, 75th percentile], rank; larger is better)\n")
        tuners = [t for t in OURS + PEERS if any(r["tuner"] == t and r["parallel"] == parallel for r in rows)]
        out.append("| problem | trials | seeds | " + " | ".join(tuners) + " |")
        out.append("|---|---|---|" + "---|" * len(tuners))
        sel = [r for r in rows if r["parallel"] == parallel]
        for problem, b, cells, line in table_rows(sel, PROBLEMS, budgets, tuners, _cell):
            seeds = sorted({c["seeds"] for c in cells.values()})
            seeds_cell = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
            out.append(f"| {problem} | {b} | {seeds_cell} | " + " | ".join(line) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 1 if a run failed."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.multi_objective", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, 100 trials, the synthetic problems")
    ap.add_argument("--smoke", action="store_true",
                    help="2 seeds, 20 and 40 trials, every problem; Optuna only with --peer-python (~10 s)")
    ap.add_argument("--seeds", type=int, help="seeds per (tuner, problem) (default 10; quick 3)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed+seeds-1")
    ap.add_argument("--budgets", type=lambda s: [int(x) for x in s.split(",")], help="default 100,200 (quick 100)")
    ap.add_argument("--problems", type=lambda s: s.split(","), help=f"default all: {','.join(PROBLEMS)}")
    ap.add_argument("--tuners", type=lambda s: s.split(","), help=f"default {','.join(OURS + PEERS)}")
    ap.add_argument("--parallel", type=int, default=1, help="pending trials kept (default 1: sequential)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    ap.add_argument("--peer-python", help="python of a venv with optuna (default ~/.cache/nni-ng/bench-venv)")
    ap.add_argument("--no-peers", action="store_true", help="skip Optuna")
    ap.add_argument("--reuse-peers", metavar="JSON", help="take Optuna runs from an earlier results file")
    ap.add_argument("--reuse", metavar="JSON[,JSON...]", type=lambda s: s.split(","),
                    help="take any matching runs (ours or the peers') from earlier (partial) results files")
    ap.add_argument("--from-results", metavar="JSON[,JSON...]", type=lambda s: s.split(","),
                    help="run nothing: merge the runs of earlier results files and print their table")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/multi_objective[_quick].json)")
    ap.add_argument("--peer", metavar="JOB", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer:   # inside the peer venv: one run, one JSON line
        job = json.loads(args.peer)
        print(json.dumps(run_peer(job["tuner"], job["problem"], job["seed"], job["budget"], job["parallel"])))
        return 0

    if args.from_results:
        unique: dict = {}   # the same run in two files (a partial one and its rerun) counts once
        for path in args.from_results:
            for r in _load(path)["runs"]:
                if "hv" in r:
                    unique.setdefault((r["tuner"], r["problem"], r["seed"], r["budget"], r["parallel"]), r)
        runs = list(unique.values())
        budgets = sorted({int(b) for r in runs for b in r["hv"]})
        table = render(summarize(runs, budgets), budgets)
        print(table)
        out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "multi_objective.json"
        _save(out, {"meta": {"merged_from": args.from_results, "budgets": budgets},
                    "summary": summarize(runs, budgets), "runs": runs, "table_markdown": table})
        return 0
    seeds = args.seeds or (2 if args.smoke else 3 if args.quick else 10)
    budgets = sorted(args.budgets or ([20, 40] if args.smoke else [100] if args.quick else [100, 200]))
    problems = args.problems or (list(SYNTHETIC) if args.quick else list(PROBLEMS))
    for p in problems:
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r}; choose from {', '.join(PROBLEMS)}")
    from benchmarks.tuner_quality.__main__ import peer_python
    # --smoke never creates the peers' venv (CI has none): Optuna runs only when named
    peer_py = None if args.smoke and not args.peer_python else peer_python(
        argparse.Namespace(no_peers=args.no_peers, peer_python=args.peer_python))
    if peer_py is None:
        print("Optuna skipped: " + ("--no-peers" if args.no_peers else "no --peer-python given"))
    tuners = args.tuners or list(OURS) + ([] if peer_py is None else list(PEERS))
    for t in tuners:
        if t not in OURS + PEERS:
            ap.error(f"unknown tuner {t!r}; choose from {', '.join(OURS + PEERS)}")
    if peer_py is None:
        tuners = [t for t in tuners if t not in PEERS]
    jobs = [{"tuner": t, "problem": p, "seed": s, "budget": budgets[-1], "budgets": budgets,
             "parallel": args.parallel, "peer_python": peer_py}
            for p in problems for t in tuners for s in range(args.first_seed, args.first_seed + seeds)]
    results: list[dict] = []
    if args.reuse_peers or args.reuse:
        key = lambda j: (j["tuner"], j["problem"], j["seed"], j["budget"], j["parallel"])  # noqa: E731
        old = {key(r): r for r in _load(args.reuse_peers)["runs"]
               if r["tuner"] in PEERS and "error" not in r} if args.reuse_peers else {}
        for path in args.reuse or []:
            old.update({key(r): r for r in _load(path)["runs"] if "error" not in r})
        results = [old[key(j)] for j in jobs if key(j) in old]
        jobs = [j for j in jobs if key(j) not in old]
    # seed by seed, so that an interrupted run (see the .partial.json file) has every tuner on
    # about the same seeds; within a seed the slow ones first (the sklearn problem, Optuna's TPE)
    jobs.sort(key=lambda j: (j["seed"], j["problem"] != "rf_digits", j["tuner"] != "optuna_tpe"))
    print(f"{len(jobs)} runs on {args.jobs} processes: {','.join(tuners)}; {','.join(problems)}; "
          f"{seeds} seeds; budgets {budgets}; {args.parallel} pending", file=sys.stderr)
    t0 = time.time()
    with multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=10) as pool:
        for i, res in enumerate(pool.imap_unordered(_run_job, jobs), 1):
            results.append(res)
            if "error" in res:
                print(f"  ERROR {res['tuner']} {res['problem']} seed {res['seed']}: {res['error']}", file=sys.stderr)
            if i % 5 == 0 or i == len(jobs):
                print(f"  {i}/{len(jobs)} done, {time.time() - t0:.0f} s", file=sys.stderr)
                # partial results survive an interrupted run (merge them with --from-results)
                partial = (Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "multi_objective.json")
                partial = partial.with_name(partial.name.split(".")[0] + ".partial.json")
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({"meta": {"partial": True}, "runs": [
                    {k: v for k, v in r.items() if k != "peer_python"} for r in results]}))
    rows = summarize(results, budgets)
    table = render(rows, budgets)
    print(table)
    print(f"\n{len(jobs)} runs, {time.time() - t0:.0f} s wall on {args.jobs} processes")
    mode = "_smoke" if args.smoke else "_quick" if args.quick else ""
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"multi_objective{mode}.json"
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True).stdout.strip()
    _save(out, {
        "meta": {"seeds": seeds, "budgets": budgets, "problems": problems, "tuners": tuners,
                 "parallel": args.parallel, "jobs": args.jobs, "duration_s": time.time() - t0,
                 "refs": {p: PROBLEMS[p].ref for p in problems},
                 "command": " ".join(["python -m benchmarks.multi_objective", *(argv or sys.argv[1:])]),
                 "commit": commit, "cpus": os.cpu_count(), "load_end": os.getloadavg()[0],
                 "ended_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
        "summary": rows, "runs": [{k: v for k, v in r.items() if k != "peer_python"} for r in results],
        "table_markdown": table})
    print(f"results: {out}", file=sys.stderr)
    failed = [r for r in results if "error" in r]
    if not results or failed:
        print(f"BROKEN: {len(failed)} of {len(results)} runs failed")
        return 1
    return 0


def _load(path: str | Path) -> dict:
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if str(path).endswith(".gz") else data)


def _save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(results, indent=1).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


if __name__ == "__main__":
    sys.exit(main())
