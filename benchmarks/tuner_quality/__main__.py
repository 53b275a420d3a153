"""Tuner quality benchmark: this project's tuners beside Optuna's TPE (and hyperopt's).

Run from the repository root with the project's venv::

    python -m benchmarks.tuner_quality --quick            # the held-out set: ~2 minutes on 2 quiet cores
    python -m benchmarks.tuner_quality                    # everything (see docs/benchmarks.md)
    python -m benchmarks.tuner_quality --peer-python /path/to/venv/bin/python
    python -m benchmarks.tuner_quality --smoke            # ~5 s: every mode at tiny size (CI)

Optuna and hyperopt are not project dependencies: they run in a separate venv through
``benchmarks/tuner_quality/peer.py`` as subprocesses.  Without ``--peer-python`` the venv
``~/.cache/nni-ng/bench-venv`` is used, and created (``pip install optuna hyperopt
scikit-learn numpy``) when missing; ``--no-peers`` skips them.

The problems come in three sets (``Problem.split``): TPE's defaults were chosen on the
"tuning" half; the "heldout" set was written and committed before the last round of
tuning and never run while choosing them (the report); "seen" is the first round's
held-out half, reported too but labelled: it has been looked at since.
Every (tuner, problem, seed) run goes to the largest budget and is read at each budget
(30, 60, 200), except budget-aware tuners (our TPE), which get one run per budget and are
told it, as the manager tells them ``maxTrialNumber``.  A noisy problem is scored by the
true loss of the trial that looked best.  Per problem and budget the table gives the
median over seeds with its 95 % bootstrap interval; a rank-sum (Mann-Whitney-Wilcoxon)
test at p < 0.05 marks our TPE against Optuna's TPE (▲ better, ▼ worse, ≈ no difference)
and any of our tuners significantly worse than random search (†).  Results go to
``benchmarks/results/tuner_quality*.json``.
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
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import ours
from .._peer_process import run_in_peer_venv
from .peer import PEERS
from .problems import PROBLEMS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PEER_VENV = Path.home() / ".cache" / "nni-ng" / "bench-venv"
PARALLEL_PROBLEMS = ("hartmann6", "rosenbrock5", "mixed", "conditional", "cond2", "cond3", "mixed_q", "styblinski4",
                     "cond_nest3", "mixed_iq", "shekel4")
GP_PARALLEL_PROBLEMS = ()   # GP takes a minute per run: sequential only
LATENCY_PROBLEM = "hartmann6"


# ---- jobs ----------------------------------------------------------------------------------
def _run_job(job: dict) -> dict:
    t0 = time.perf_counter()
    try:
        if job["tuner"] in PEERS:
            out = run_in_peer_venv(job["peer_python"], ["benchmarks.tuner_quality.peer"], job)
        elif job["kind"] == "latency":
            out = ours.latency(job["tuner"], job["problem"], job["n"], job["k"])
        else:
            out = ours.run(job["tuner"], job["problem"], job["seed"], job["budget"], job["parallel"])
    except Exception as exc:   # one failing run must not lose the others
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["wall_s"] = time.perf_counter() - t0
    return {**job, **out}


def make_jobs(args: argparse.Namespace, tuners: list[str], peer_python: str | None) -> list[dict]:
    """Every (tuner, problem, mode, seed) run and latency measurement to do."""
    jobs = []
    budget = max(args.budgets)
    for problem in ([] if args.latency_only else args.problems):
        for tuner in tuners:
            if ours_or_peer(tuner) == "ours" and ours.needs_numeric(tuner) and not PROBLEMS[problem].numeric:
                continue
            if tuner == "smac" and problem not in args.smac_problems:
                continue
            # hyperopt's fmin is sequential; SMAC (seconds per proposal) only runs sequentially
            modes = [1] + ([4] if problem in PARALLEL_PROBLEMS and args.parallel
                           and tuner not in ("hyperopt_tpe", "smac")
                           and (tuner not in ("gp", "metis") or problem in GP_PARALLEL_PROBLEMS) else [])
            seeds = {"smac": args.smac_seeds, "gp": args.gp_seeds, "metis": args.gp_seeds,
                     "gridsearch": 1}.get(tuner, args.seeds)
            run_budgets = args.budgets if tuner in ours.BUDGET_AWARE else [budget]
            for parallel in modes:
                for seed in range(min(seeds, args.seeds)):
                    for b in run_budgets:
                        jobs.append({"kind": "run", "tuner": tuner, "problem": problem, "seed": seed,
                                     "budget": b, "parallel": parallel, "peer_python": peer_python})
    if args.latency:
        for tuner in tuners:
            for n in (100, 1000):
                jobs.append({"kind": "latency", "tuner": tuner, "problem": LATENCY_PROBLEM, "n": n,
                             "k": 50, "peer_python": peer_python, "seed": 0})
    # fast tuners first (the core of the table is there early; partial results are saved),
    # then the slow model-based ones, slowest first so the pool stays busy to the end
    cost = {"smac": 8, "gp": 6, "metis": 6}
    jobs.sort(key=lambda j: (j["tuner"] in cost, -cost.get(j["tuner"], 1) * (
        5 if j["problem"] in ("svc_digits", "gb_cancer") else 1) - (50 if j["kind"] == "latency" else 0)))
    return jobs


def _job_key(j: dict) -> tuple:
    return (j["kind"], j["tuner"], j["problem"], j.get("seed"), j.get("budget"), j.get("parallel"), j.get("n"))


def ours_or_peer(tuner: str) -> str:
    """'peer' for Optuna/hyperopt (run in the peer venv), 'ours' otherwise."""
    return "peer" if tuner in PEERS else "ours"


def peer_python(args: argparse.Namespace) -> str | None:
    """The peers' interpreter; create the default venv when it is missing."""
    if args.no_peers:
        return None
    if args.peer_python:
        return args.peer_python
    py = DEFAULT_PEER_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {DEFAULT_PEER_VENV} with optuna, hyperopt, scikit-learn (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_PEER_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "optuna", "hyperopt", "scikit-learn", "numpy"],
                       check=True)
    return str(py)


# ---- statistics ----------------------------------------------------------------------------
def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value (normal approximation with tie correction)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return math.nan
    allv = np.concatenate([x, y])
    ranks = _avg_ranks(allv)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(allv, return_counts=True)
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return float(math.erfc(max(z, 0) / math.sqrt(2)))


def _avg_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def best_after(run: dict, budget: int) -> float:
    """A run's result after ``budget`` trials: the best loss, or on a noisy problem the true
    loss of the trial that looked best (what a user would deploy)."""
    losses = run["losses"][:budget]
    if "true" in run:
        return float(run["true"][int(np.argmin(losses))])
    return float(np.min(losses))


def bootstrap_median_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the median."""
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(values, size=(n_boot, len(values)), replace=True), axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def compare(ours_v: list[float], theirs: list[float], alpha: float = 0.05) -> tuple[str, float]:
    """'win' / 'loss' (Mann-Whitney-Wilcoxon rank-sum p < alpha, by the median's side) or 'tie'."""
    p = mann_whitney_p(ours_v, theirs)
    if not p < alpha:
        return "tie", p
    a, b = float(np.median(ours_v)), float(np.median(theirs))
    if a == b:   # medians equal but distributions differ: the mean rank decides
        a, b = float(np.mean(ours_v)), float(np.mean(theirs))
    return ("win" if a < b else "loss"), p


def summarize(results: list[dict], budgets: list[int]) -> list[dict]:
    """One row per (mode, problem, budget, tuner): median, bootstrap interval, tests against
    random search (every tuner) and against Optuna's TPE (our TPE)."""
    rows = []
    runs = [r for r in results if r["kind"] == "run" and "losses" in r]
    keys = sorted({(r["parallel"], r["problem"]) for r in runs}, key=lambda k: (k[0], list(PROBLEMS).index(k[1])))
    for parallel, problem in keys:
        group = [r for r in runs if r["parallel"] == parallel and r["problem"] == problem]
        tuners = sorted({r["tuner"] for r in group}, key=_tuner_order)
        for budget in budgets:
            # a budget-aware tuner's own run for this budget, else the others' longer run cut short
            best: dict[str, dict] = {t: {} for t in tuners}
            for r in sorted(group, key=lambda r: -r["budget"]):
                if r["budget"] >= budget:
                    best[r["tuner"]][r["seed"]] = best_after(r, budget)
            medians = {t: float(np.median(list(best[t].values()))) for t in tuners}
            med_rank = dict(zip(tuners, _avg_ranks(np.array([medians[t] for t in tuners]))))
            for t in tuners:
                vals = np.array(list(best[t].values()))
                lo, hi = bootstrap_median_ci(vals)
                row = {"parallel": parallel, "problem": problem, "split": PROBLEMS[problem].split,
                       "budget": budget, "tuner": t, "median": medians[t], "ci_lo": lo, "ci_hi": hi,
                       "q25": float(np.percentile(vals, 25)), "q75": float(np.percentile(vals, 75)),
                       "rank": float(med_rank[t]), "seeds": len(vals), "values": vals.tolist()}
                if "random" in best and t != "random" and ours_or_peer(t) == "ours":
                    row["vs_random"], row["p_vs_random"] = compare(vals.tolist(), list(best["random"].values()))
                if t == "tpe" and "optuna_tpe" in best:
                    row["vs_optuna_tpe"], row["p_vs_optuna_tpe"] = compare(
                        vals.tolist(), list(best["optuna_tpe"].values()))
                rows.append(row)
    return rows


#: the problem sets, in the order the tables show them
SPLITS = {"heldout": "Held-out set", "seen": "Seen held-out half (round 1; looked at since)",
          "tuning": "Tuning half"}
_ORDER = ["tpe", "tpe_uni", "gp", "smac", "metis", "evolution", "anneal", "random", "gridsearch", "optuna_tpe",
          "optuna_tpe_uni", "hyperopt_tpe"]
_MARK = {"win": "▲", "loss": "▼", "tie": "≈"}


def _tuner_order(t: str) -> int:
    return _ORDER.index(t) if t in _ORDER else len(_ORDER)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"


def scoreboard(rows: list[dict], budgets: list[int]) -> str:
    """Significant wins / ties / losses of our TPE against Optuna's TPE and against random
    search, per half of the problems and budget (sequential runs)."""
    out = ["| set | budget | TPE vs Optuna TPE (W/T/L) | losses to Optuna | TPE vs random (W/T/L) | "
           "our tuners significantly worse than random |", "|---|---|---|---|---|---|"]
    for split in SPLITS:
        for budget in budgets:
            sel = [r for r in rows if r["parallel"] == 1 and r["split"] == split and r["budget"] == budget]
            tpe = [r for r in sel if r["tuner"] == "tpe"]
            if not tpe:
                continue
            vo = [r.get("vs_optuna_tpe") for r in tpe if "vs_optuna_tpe" in r]
            vr = [r.get("vs_random") for r in tpe if "vs_random" in r]
            lost = [r["problem"] for r in tpe if r.get("vs_optuna_tpe") == "loss"]
            worse = [f"{r['tuner']} on {r['problem']}" for r in sel if r.get("vs_random") == "loss"]
            out.append(f"| {split} | {budget} | {vo.count('win')}/{vo.count('tie')}/{vo.count('loss')} | "
                       f"{', '.join(lost) or '—'} | {vr.count('win')}/{vr.count('tie')}/{vr.count('loss')} | "
                       f"{', '.join(worse) or '—'} |")
    return "\n".join(out)


def table_rows(rows: list[dict], problems: Iterable[str], budgets: list[int], tuners: list[str],
               cell: Callable[[dict, bool], str]) -> Iterator[tuple[str, int, dict, list[str]]]:
    """The cells of a results table, row by row (problem x budget, rows without results left
    out): ``cell(result, is_best_rank)`` for each tuner with a result, "—" for the others."""
    for problem in problems:
        for budget in budgets:
            cells = {r["tuner"]: r for r in rows if r["problem"] == problem and r["budget"] == budget}
            if not cells:
                continue
            best_rank = min(c["rank"] for c in cells.values())
            yield problem, budget, cells, [cell(cells[t], cells[t]["rank"] == best_rank) if t in cells else "—"
                                           for t in tuners]


def _cell(c: dict, best: bool) -> str:
    s = f"{_fmt(c['median'])} [{_fmt(c['ci_lo'])}, {_fmt(c['ci_hi'])}]"
    if best:
        s = f"**{s}**"
    if "vs_optuna_tpe" in c:
        s += " " + _MARK[c["vs_optuna_tpe"]]
    if c.get("vs_random") == "loss":
        s += " †"
    return s


def render(rows: list[dict], latency: list[dict], budgets: list[int]) -> str:
    """The markdown tables: the scoreboard, then per mode and half of the problems, latency."""
    out = ["\n### Scoreboard (sequential; Mann-Whitney-Wilcoxon rank-sum test, p < 0.05)\n",
           scoreboard(rows, budgets)]
    for parallel in sorted({r["parallel"] for r in rows}):
        for split in SPLITS:
            sel = [r for r in rows if r["parallel"] == parallel and r["split"] == split]
            if not sel:
                continue
            mode = "sequential" if parallel == 1 else f"{parallel} pending trials"
            out.append(f"\n### {SPLITS[split]}, {mode}\n")
            tuners = sorted({r["tuner"] for r in sel}, key=_tuner_order)
            out.append("| problem | budget | " + " | ".join(tuners) + " |")
            out.append("|---|---|" + "---|" * len(tuners))
            for problem, budget, cells, line in table_rows(sel, PROBLEMS, budgets, tuners, _cell):
                out.append(f"| {problem} | {budget} | " + " | ".join(line) + " |")
    if latency:
        out.append(f"\n### Suggestion latency ({LATENCY_PROBLEM}, ms per suggestion incl. its result; "
                   f"wall (CPU))\n")
        out.append("| tuner | 100 results | 1,000 results |")
        out.append("|---|---|---|")
        by = {(r["tuner"], r["n"]): r for r in latency}
        for t in sorted({r["tuner"] for r in latency}, key=_tuner_order):
            cells = []
            for n in (100, 1000):
                r = by.get((t, n))
                cells.append("—" if r is None or "ms" not in r else f"{r['ms']:.1f}" + (
                    f" ({r['cpu_ms']:.1f})" if "cpu_ms" in r else ""))
            out.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _out_path(args: argparse.Namespace) -> Path:
    mode = "_smoke" if args.smoke else "_quick" if args.quick else ""
    return Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"tuner_quality{mode}.json"


def _summary_of(paths: list) -> tuple[list[dict], list[dict], list[int], list[dict], list[dict]]:
    """render()'s arguments (rows, latency, budgets) for the runs of results files, then the
    runs and the files' meta."""
    results, metas = [], []
    for path in paths:
        raw = gzip.decompress(Path(path).read_bytes()) if str(path).endswith(".gz") else Path(path).read_bytes()
        data = json.loads(raw)
        metas.append({"file": str(path), **data["meta"]})
        results += [r for r in data["runs"] if "error" not in r]
    budgets = sorted({b for m in metas for b in m["budgets"]})
    return summarize(results, budgets), [r for r in results if r["kind"] == "latency"], budgets, results, metas


def merge(args: argparse.Namespace) -> int:
    """Summarize runs from earlier results files (e.g. ours and the peers run separately)."""
    rows, lat, budgets, results, metas = _summary_of(args.from_results)
    table = render(rows, lat, budgets)
    print(table)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "tuner_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": {"merged_from": metas, "budgets": budgets}, "summary": rows,
                               "latency": lat, "runs": results, "table_markdown": table}, indent=1))
    print(f"results: {out}", file=sys.stderr)
    return 0


# ---- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 if a run failed)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tuner_quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the held-out set, TPE / random / Optuna's TPE only, sequential, 10 seeds "
                         "(~2 minutes on 2 quiet cores)")
    ap.add_argument("--smoke", action="store_true",
                    help="the held-out set, TPE and random, 2 seeds, budgets 30,60, both modes and latency; "
                         "Optuna only with --peer-python; the table is then regenerated from the results file "
                         "(~5 s)")
    ap.add_argument("--seeds", type=int, help="seeds per (tuner, problem) (default 10)")
    ap.add_argument("--gp-seeds", type=int, help="seeds for GP and Metis (slow; default 3)")
    ap.add_argument("--smac-seeds", type=int, default=3, help="seeds for SMAC (slowest; default 3)")
    ap.add_argument("--smac-problems", type=lambda s: s.split(","), default=["cond_nest3", "mixed_iq", "cond3", "mixed_q"],
                    help="problems SMAC runs on (default cond_nest3,mixed_iq,cond3,mixed_q)")
    ap.add_argument("--split", choices=["heldout", "seen", "tuning"], help="only one set of the problems")
    ap.add_argument("--budgets", type=lambda s: [int(x) for x in s.split(",")], help="default 30,60,200")
    ap.add_argument("--problems", type=lambda s: s.split(","), help=f"default all: {','.join(PROBLEMS)}")
    ap.add_argument("--tuners", type=lambda s: s.split(","), help="default: all available")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    ap.add_argument("--peer-python", help="python of a venv with optuna and hyperopt")
    ap.add_argument("--no-peers", action="store_true", help="skip Optuna and hyperopt")
    ap.add_argument("--no-parallel", dest="parallel", action="store_false", help="skip the 4-pending mode")
    ap.add_argument("--no-latency", dest="latency", action="store_false", help="skip the latency measurement")
    ap.add_argument("--latency-only", action="store_true", help="only the latency measurement")
    ap.add_argument("--reuse-peers", metavar="JSON",
                    help="take Optuna/hyperopt runs from an earlier results file when they match")
    ap.add_argument("--from-results", metavar="JSON[,JSON...]", type=lambda s: s.split(","),
                    help="run nothing: merge the runs of earlier results files (.json or .json.gz) and print their table")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/tuner_quality[_quick].json)")
    args = ap.parse_args(argv)

    args.seeds = args.seeds or (2 if args.smoke else 10)
    args.gp_seeds = args.gp_seeds or 3
    args.budgets = sorted(args.budgets or ([30, 60] if args.smoke else [30, 60, 200]))
    if args.smoke:
        args.split = args.split or "heldout"
        # CI has no peers' venv and must not build one: Optuna runs only when named
        args.no_peers = args.no_peers or not args.peer_python
    if args.quick:
        args.split = args.split or "heldout"
        args.parallel = False
    args.problems = args.problems or [p for p in PROBLEMS if args.split in (None, PROBLEMS[p].split)]
    for p in args.problems:
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r}; choose from {', '.join(PROBLEMS)}")
    if args.from_results:
        return merge(args)
    py = peer_python(args)
    if py is None:
        print("Optuna and hyperopt skipped: " + ("no --peer-python given" if args.smoke else "--no-peers"))
    default_tuners = ["tpe", "random"] if args.quick or args.smoke else [
        t for t in ours.available() if t not in ("metis", "tpe_uni", "gridsearch")]
    # Optuna's TPE is the reference; optuna_tpe_uni and hyperopt_tpe run when asked (--tuners)
    tuners = args.tuners or default_tuners + ([] if py is None else ["optuna_tpe"])
    for t in tuners:
        if t not in ours.available() and t not in PEERS:
            ap.error(f"unknown or unavailable tuner {t!r}; available: {', '.join(ours.available() + list(PEERS))}")
    if py is None:
        tuners = [t for t in tuners if t not in PEERS]

    jobs = make_jobs(args, tuners, py)
    results = []
    if args.reuse_peers:
        # peers do not change with this project's code: reuse their runs while iterating on ours
        old = {_job_key(r): r for r in json.loads(Path(args.reuse_peers).read_text())["runs"]
               if r["tuner"] in PEERS and "error" not in r}
        results = [old[_job_key(j)] for j in jobs if _job_key(j) in old]
        jobs = [j for j in jobs if _job_key(j) not in old]
        print(f"reusing {len(results)} peer runs from {args.reuse_peers}", file=sys.stderr)
    print(f"{len(jobs)} jobs on {args.jobs} processes: tuners {','.join(tuners)}; problems "
          f"{','.join(args.problems)}; {args.seeds} seeds; budgets {args.budgets}", file=sys.stderr)
    t0 = time.time()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs, maxtasksperchild=20) as pool:
        for i, res in enumerate(pool.imap_unordered(_run_job, jobs), 1):
            results.append(res)
            if "error" in res:
                print(f"  ERROR {res['tuner']} {res['problem']}: {res['error']}", file=sys.stderr)
            if i % 25 == 0 or i == len(jobs) or res["tuner"] in ("gp", "smac", "metis"):
                print(f"  {i}/{len(jobs)} done, {time.time() - t0:.0f} s", file=sys.stderr)
                # partial results survive an interrupted run (merge them with --from-results);
                # after every run of the slow tuners (minutes each)
                partial = _out_path(args).with_suffix(".partial.json")
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({"meta": {"budgets": args.budgets, "partial": True},
                                               "runs": [{k: v for k, v in r.items() if k != "peer_python"}
                                                        for r in results]}))
    duration = time.time() - t0
    rows = summarize(results, args.budgets)
    lat = [r for r in results if r["kind"] == "latency"]
    table = render(rows, lat, args.budgets)
    print(table)
    print(f"\n{len(jobs)} jobs, {duration:.0f} s wall on {args.jobs} processes")
    print(f"\n{len(jobs)} jobs, {duration:.0f} s wall on {args.jobs} processes", file=sys.stderr)
    out = _out_path(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    tuner_seconds: dict[str, list] = {}
    for r in results:
        if r["kind"] == "run" and "tuner_seconds" in r and r["parallel"] == 1:
            tuner_seconds.setdefault(r["tuner"], []).append(r["tuner_seconds"] / r["budget"] * 1000)
    out.write_text(json.dumps({
        "meta": {"seeds": args.seeds, "budgets": args.budgets, "problems": args.problems, "tuners": tuners,
                 "jobs": args.jobs, "duration_s": duration, "quick": args.quick, "smoke": args.smoke,
                 "gp_warm_up": ours.GP_WARM_UP,
                 "command": " ".join(["python -m benchmarks.tuner_quality", *(argv or sys.argv[1:])]),
                 "commit": subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                                          capture_output=True, text=True).stdout.strip(),
                 "load_end": os.getloadavg()[0],
                 "cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
        "summary": rows, "latency": lat,
        "mean_ms_per_trial_in_tuner": {t: float(np.mean(v)) for t, v in tuner_seconds.items()},
        "runs": [{k: v for k, v in r.items() if k != "peer_python"} for r in results],
        "table_markdown": table,
    }, indent=1))
    print(f"results: {out}", file=sys.stderr)
    failed = [r for r in results if "error" in r]
    if args.smoke:   # the --from-results path on what was just written: it must give the same table
        again = render(*_summary_of([out])[:3])
        if again != table:
            print("BROKEN: the table regenerated from the results file differs")
            return 1
    if not results or failed:
        print(f"BROKEN: {len(failed)} of {len(results)} runs failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
