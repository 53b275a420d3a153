"""Constrained optimisation benchmark: our TPE, MOTPE, NSGA2, GP and Random with the config's
``constraints`` beside Optuna's constrained ``TPESampler`` and ``NSGAIISampler``
(``constraints_func``), on known constrained problems, in one run.

Run from the repository root with the project's venv::

    nice python -m benchmarks.constraints --peer-python /path/to/optuna-venv/bin/python   # 10 seeds
    python -m benchmarks.constraints --quick      # ~20 s: 2 seeds, small budgets; Optuna only if named
    python -m benchmarks.constraints --from-results benchmarks/results/constraints.json.gz

Optuna runs in its own venv, never the project's (as in ``benchmarks/tuner_quality``): one
subprocess per run, ``<peer python> -m benchmarks.constraints --peer '<job json>'``; that path
imports numpy and optuna only.

Problems (every objective minimised; a constraint value ``<= 0`` is satisfied):

* ``gardner``: Gardner et al., "Bayesian optimization with inequality constraints" (ICML
  2014), simulation 1: ``f = cos(2 x) cos(y) + sin(x)`` subject to
  ``cos(x) cos(y) - sin(x) sin(y) <= 0.5`` on ``[0, 6]^2``; 60 trials.
* ``new_branin``: the "new Branin" of Parr et al. (2012) / Gramacy et al. (2016):
  ``f = -(x - 10)^2 - (y - 15)^2`` subject to ``branin(x, y) <= 5`` on ``[-5, 10] x [0, 15]``
  (three small feasible islands); 100 trials.
* ``c2dtlz2``: C2-DTLZ2 of Jain & Deb (2014), 2 objectives, 11 variables, ``r = 0.2``: DTLZ2
  whose feasible objective space is a disc around each end and around the middle of the
  front; 200 trials; measured by the hypervolume of the *feasible* results (reference (1.1, 1.1)).

Measure: single-objective problems, the best feasible value after the budget (inf when none
was found; smaller is better); multi-objective, the feasible hypervolume (larger is better).
The table gives the median [25th, 75th percentile] over seeds and the share of runs that
found a feasible result; ``≈`` marks a cell of ours that a Mann-Whitney test cannot tell apart
(p > 0.05) from the better Optuna sampler, ``better``/``worse`` one it can.  Results go to
``benchmarks/results/constraints[_quick].json.gz``; ``--from-results`` prints the table of
such a file again (what docs/constraints.md's table is made from).
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
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks._peer_process import run_in_peer_venv

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("optuna_tpe", "optuna_nsga2")


# ---- problems (numpy only: the peer venv imports this module too) --------------------------------
@dataclass(frozen=True)
class Problem:
    space: dict
    fn: Callable[[dict], tuple[list[float], float]]   # params -> (objectives, constraint value)
    budget: int
    ours: tuple[str, ...]
    ref: tuple[float, ...] | None = None               # hypervolume reference (multi-objective)


def _gardner(p: dict) -> tuple[list[float], float]:
    x, y = p["x"], p["y"]
    return [math.cos(2 * x) * math.cos(y) + math.sin(x)], math.cos(x) * math.cos(y) - math.sin(x) * math.sin(y) - 0.5


def _branin(x: float, y: float) -> float:
    return ((y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


def _new_branin(p: dict) -> tuple[list[float], float]:
    x, y = p["x"], p["y"]
    return [-(x - 10) ** 2 - (y - 15) ** 2], _branin(x, y) - 5


_C2_N, _C2_M, _C2_R = 11, 2, 0.2


def _c2dtlz2(p: dict) -> tuple[list[float], float]:
    x = np.array([p[f"x{i}"] for i in range(_C2_N)])
    g = float(np.sum((x[_C2_M - 1:] - 0.5) ** 2))
    f = [(1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)]
    f_arr = np.array(f)
    # Jain & Deb: feasible inside a disc of radius r around each end of the front or its middle
    ends = min((f_arr[i] - 1) ** 2 + float(np.sum(np.delete(f_arr, i) ** 2)) - _C2_R ** 2 for i in range(_C2_M))
    middle = float(np.sum((f_arr - 1 / math.sqrt(_C2_M)) ** 2)) - _C2_R ** 2
    return f, min(ends, middle)


_UNIT = {"_type": "uniform", "_value": [0, 1]}
PROBLEMS: dict[str, Problem] = {
    "gardner": Problem({"x": {"_type": "uniform", "_value": [0, 6]}, "y": {"_type": "uniform", "_value": [0, 6]}},
                       _gardner, 60, ("tpe", "gp", "random")),
    "new_branin": Problem({"x": {"_type": "uniform", "_value": [-5, 10]}, "y": {"_type": "uniform", "_value": [0, 15]}},
                          _new_branin, 100, ("tpe", "gp", "random")),
    "c2dtlz2": Problem({f"x{i}": _UNIT for i in range(_C2_N)}, _c2dtlz2, 200, ("motpe", "nsga2", "random"),
                       ref=(1.1, 1.1)),
}
_NAMES = {"tpe": "TPE", "gp": "GP", "random": "Random", "motpe": "MOTPE", "nsga2": "NSGA2"}


def hypervolume_2d(points: list[list[float]], ref: tuple[float, ...]) -> float:
    """Exact 2-D hypervolume (minimisation) of ``points`` against ``ref`` (numpy only)."""
    P = np.array([p for p in points if p[0] < ref[0] and p[1] < ref[1]], dtype=float).reshape(-1, 2)
    if not len(P):
        return 0.0
    P = P[np.argsort(P[:, 0])]
    hv, best_y = 0.0, ref[1]
    for x, y in P:
        if y < best_y:
            hv += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(hv)


def score(problem: str, history: list[tuple[list[float], float]]) -> float:
    """Best feasible value (single objective) or feasible hypervolume (multi-objective)."""
    prob = PROBLEMS[problem]
    feasible = [f for f, c in history if c <= 0]
    if prob.ref is None:
        return min((f[0] for f in feasible), default=math.inf)
    return hypervolume_2d(feasible, prob.ref)


# ---- runs ------------------------------------------------------------------------------------------
def run_ours(tuner_name: str, problem: str, seed: int, budget: int) -> dict:
    from nni.algorithms.registry import create_algorithm
    prob = PROBLEMS[problem]
    args: dict[str, Any] = {"seed": seed}
    if prob.ref is not None:
        if tuner_name != "random":
            args["objectives"] = [{"metric": "f0"}, {"metric": "f1"}]
    elif tuner_name in ("tpe", "gp"):
        args["optimize_mode"] = "minimize"
    if tuner_name == "gp":   # fewer acquisition points than the default 100,000 / 250: ~20x cheaper per proposal
        args.update(selection_num_warm_up=5000, selection_num_starting_points=20)
    tuner = create_algorithm("tuner", name=_NAMES[tuner_name], class_args=args)
    tuner.set_constraints([{"metric": "c", "max": 0}])   # what the manager does for config `constraints`
    if hasattr(tuner, "set_trial_budget"):
        tuner.set_trial_budget(budget)                     # and maxTrialNumber
    tuner.update_search_space(prob.space)
    history = []
    for i in range(budget):
        params = tuner.generate_parameters(i)
        f, c = prob.fn(params)
        result = {"default": f[0], **{f"f{j}": v for j, v in enumerate(f)}, "c": c}
        tuner.receive_trial_result(i, params, result)
        tuner.trial_end(i, True)
        history.append((f, c))
    return {"history": history}


def run_peer(tuner_name: str, problem: str, seed: int, budget: int) -> dict:
    import warnings

    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    prob = PROBLEMS[problem]

    def constraints(trial: Any) -> list[float]:
        return trial.user_attrs["c"]

    if tuner_name == "optuna_nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    else:   # Optuna's defaults plus constraints_func (the c-TPE-style split)
        sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=constraints)
    n_obj = 1 if prob.ref is None else 2
    study = optuna.create_study(directions=["minimize"] * n_obj, sampler=sampler)
    history = []
    for _ in range(budget):
        trial = study.ask()
        params = {k: trial.suggest_float(k, *v["_value"]) for k, v in prob.space.items()}
        f, c = prob.fn(params)
        trial.set_user_attr("c", [c])
        study.tell(trial, f[0] if n_obj == 1 else f)
        history.append((f, c))
    return {"history": history}


def _run_job(job: dict) -> dict:
    t0 = time.perf_counter()
    try:
        if job["tuner"] in PEERS:
            out = run_in_peer_venv(job["peer_python"], ["benchmarks.constraints", "--peer"], job)
        else:
            out = run_ours(job["tuner"], job["problem"], job["seed"], job["budget"])
    except Exception as exc:   # one failing run must not lose the others
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["wall_s"] = time.perf_counter() - t0
    if "history" in out:
        out["score"] = score(job["problem"], out["history"])
        out["feasible_share"] = float(np.mean([c <= 0 for _, c in out["history"]]))
        out["found_feasible"] = any(c <= 0 for _, c in out["history"])
    return {k: v for k, v in {**job, **out}.items() if k != "peer_python"}


# ---- table -------------------------------------------------------------------------------------------
def _mw_p(a: list[float], b: list[float]) -> float:
    from benchmarks.tuner_quality.__main__ import mann_whitney_p
    big = 1e300   # inf (nothing feasible) is the worst value: a finite stand-in keeps the ranks
    return mann_whitney_p([min(x, big) for x in a], [min(x, big) for x in b])


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for problem, prob in PROBLEMS.items():
        group = [r for r in runs if r["problem"] == problem and "score" in r]
        if not group:
            continue
        tuners = [t for t in (*prob.ours, *PEERS) if any(r["tuner"] == t for r in group)]
        scores = {t: [r["score"] for r in group if r["tuner"] == t] for t in tuners}
        larger = prob.ref is not None
        peer_med = {t: float(np.median(scores[t])) for t in tuners if t in PEERS}
        best_peer = (max if larger else min)(peer_med, key=peer_med.get) if peer_med else None
        for t in tuners:
            s = scores[t]
            row = {"problem": problem, "tuner": t, "seeds": len(s), "budget": group[0]["budget"],
                   "median": float(np.median(s)), "q25": float(np.percentile(s, 25)),
                   "q75": float(np.percentile(s, 75)),
                   "found_feasible": float(np.mean([r["found_feasible"] for r in group if r["tuner"] == t])),
                   "feasible_share": float(np.mean([r["feasible_share"] for r in group if r["tuner"] == t]))}
            if best_peer and t not in PEERS:
                row["best_peer"] = best_peer
                row["p_vs_best_peer"] = _mw_p(s, scores[best_peer])
                ours_better = (row["median"] > peer_med[best_peer]) if larger else (row["median"] < peer_med[best_peer])
                row["vs_best_peer"] = ("≈" if row["p_vs_best_peer"] > 0.05 else
                                       "better" if ours_better else "worse")
            rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    out = ["| problem | trials | seeds | measure | tuner | median [25th, 75th] | runs with a feasible result "
           "| feasible trials | vs best Optuna |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        measure = "feasible hypervolume (larger better)" if PROBLEMS[r["problem"]].ref else "best feasible (smaller better)"
        cell = f"{r['median']:.5g} [{r['q25']:.5g}, {r['q75']:.5g}]"
        vs = f"{r['vs_best_peer']} ({r['best_peer']}, p={r['p_vs_best_peer']:.2g})" if "vs_best_peer" in r else ""
        out.append(f"| {r['problem']} | {r['budget']} | {r['seeds']} | {measure} | {r['tuner']} | {cell} "
                   f"| {r['found_feasible']:.0%} | {r['feasible_share']:.0%} | {vs} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 1 if a run failed."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.constraints", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, a third of the budgets; Optuna only if named")
    ap.add_argument("--seeds", type=int, help="seeds per (tuner, problem) (default 10; quick 2)")
    ap.add_argument("--problems", type=lambda s: s.split(","), help=f"default all: {','.join(PROBLEMS)}")
    ap.add_argument("--tuners", type=lambda s: s.split(","), help="default: every tuner of each problem")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    ap.add_argument("--peer-python", help="python of a venv with optuna (never the project's)")
    ap.add_argument("--from-results", metavar="JSON", help="run nothing: print the table of an earlier results file")
    ap.add_argument("--reuse", metavar="JSON", help="keep the runs of an earlier results file that this command "
                    "does not run again (e.g. --tuners motpe --problems c2dtlz2 --reuse old.json.gz)")
    ap.add_argument("--out", help="results file (default benchmarks/results/constraints[_quick].json.gz)")
    ap.add_argument("--peer", metavar="JOB", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer:   # inside the peer venv: one run, one JSON line
        job = json.loads(args.peer)
        print(json.dumps(run_peer(job["tuner"], job["problem"], job["seed"], job["budget"])))
        return 0
    if args.from_results:
        data = json.loads(gzip.decompress(Path(args.from_results).read_bytes()))
        print(render(summarize(data["runs"])))
        meta = data["meta"]
        print(f"\ncommand: {' then '.join(meta.get('commands', [meta['command']]))}; "
              f"commit {' then '.join(meta.get('commits', [meta['commit']]))}; {meta['cpus']} CPUs, load "
              f"{meta['load_start']:.1f} -> {meta['load_end']:.1f}; {meta['duration_s']:.0f} s; {meta['ended_utc']}")
        return 0
    seeds = args.seeds or (2 if args.quick else 10)
    problems = args.problems or list(PROBLEMS)
    if args.peer_python is None:
        print("Optuna skipped: no --peer-python given")
    jobs = []
    for p in problems:
        prob = PROBLEMS[p]
        budget = max(10, prob.budget // 3) if args.quick else prob.budget
        tuners = [t for t in (*prob.ours, *(PEERS if args.peer_python else ())) if not args.tuners or t in args.tuners]
        if args.quick:
            tuners = [t for t in tuners if t != "gp"]    # GP's proposals cost ~0.1 s each
        jobs += [{"tuner": t, "problem": p, "seed": s, "budget": budget, "peer_python": args.peer_python}
                 for t in tuners for s in range(seeds)]
    jobs.sort(key=lambda j: (j["seed"], j["tuner"] != "gp", j["problem"] != "c2dtlz2"))   # seed by seed, slow first
    print(f"{len(jobs)} runs on {args.jobs} processes", file=sys.stderr)
    t0, load0 = time.time(), os.getloadavg()[0]
    kept: list[dict] = []
    commands: list[str] = []
    commits: list[str] = []
    if args.reuse:
        old = json.loads(gzip.decompress(Path(args.reuse).read_bytes()))
        fresh = {(j["tuner"], j["problem"], j["seed"], j["budget"]) for j in jobs}
        kept = [r for r in old["runs"] if (r["tuner"], r["problem"], r["seed"], r["budget"]) not in fresh]
        commands = old["meta"].get("commands", [old["meta"]["command"]])
        commits = old["meta"].get("commits", [old["meta"]["commit"]])
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        runs = list(kept)
        for i, res in enumerate(pool.imap_unordered(_run_job, jobs), 1):
            runs.append(res)
            if "error" in res:
                print(f"  ERROR {res['tuner']} {res['problem']} seed {res['seed']}: {res['error']}", file=sys.stderr)
            if i % 10 == 0:
                print(f"  {i}/{len(jobs)} done, {time.time() - t0:.0f} s", file=sys.stderr)
    table = render(summarize(runs))
    print(table)
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True).stdout.strip()
    command = " ".join(["python -m benchmarks.constraints", *(argv if argv is not None else sys.argv[1:])])
    meta = {"command": command, "commands": [*commands, command], "commits": [*commits, commit],
            "commit": commit, "cpus": os.cpu_count(), "jobs": args.jobs, "seeds": seeds,
            "load_start": load0, "load_end": os.getloadavg()[0], "duration_s": time.time() - t0,
            "ended_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / (
        "constraints_quick.json.gz" if args.quick else "constraints.json.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(json.dumps({"meta": meta, "runs": runs, "table_markdown": table}).encode(),
                                  mtime=0))
    print(f"\n{len(jobs)} runs, {meta['duration_s']:.0f} s wall; results: {out}")
    failed = [r for r in runs if "error" in r]
    return 1 if failed or not runs else 0


if __name__ == "__main__":
    sys.exit(main())
