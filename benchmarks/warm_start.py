"""Warm start benchmark: does TPE, given last week's results, reach a cold run's best sooner?

The target (issue 29): on a problem shifted a little between two runs, the warm-started TPE
reaches the cold run's 60-trial best in at most 30 trials (median over 10 seeds).

For each problem and seed:

1. run 1: TPE, cold, 60 trials on the problem as it was (``shift = 0``);
2. run 2 cold: TPE, cold, 60 trials on the shifted problem; its best is the target;
3. run 2 warm: TPE on the shifted problem, given run 1's 60 results first through
   ``import_data`` (what ``warmStart`` gives it, the manager's path); how many trials until
   its best is at least as good as the target (61: never within 60).

Every uniform-family dimension is shifted by ``SHIFT`` of its range (a log one by that share
of its log-range); choices and integers are left as they were. The tuners are driven
in-process through the Tuner API, as the manager drives them (one trial at a time), so the
numbers are the algorithm's, not the machine's.

    python benchmarks/warm_start.py                 # 10 seeds, 4 problems (~1 min on 2 cores)
    python benchmarks/warm_start.py --shift 0.05    # a bigger shift (the limit: see docs/warm_start.md)
    python benchmarks/warm_start.py --quick         # 3 seeds, 2 problems (~20 s; benchmarks/quick.sh)
    python benchmarks/warm_start.py --from-results benchmarks/results/warm_start.json
    python benchmarks/warm_start.py --from-results benchmarks/results/warm_start.json --update-docs

Raw results: ``benchmarks/results/warm_start[_quick].json`` (each run's best-so-far curve);
``--update-docs`` rewrites the table in docs/warm_start.md from such a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._docs_block import DocsBlock  # noqa: E402
from benchmarks.tuner_quality.problems import PROBLEMS  # noqa: E402

BUDGET = 60
TARGET_TRIALS = 30
SHIFT = 0.02
FULL_PROBLEMS = ("branin", "hartmann6", "mixed", "rosenbrock5")
QUICK_PROBLEMS = ("branin", "mixed")
DOCS = ROOT / "docs" / "warm_start.md"
_BEGIN, _END = "<!-- warm-start-table:begin -->", "<!-- warm-start-table:end -->"


def shifted(space: dict[str, Any], fn: Callable[[dict], float], shift: float) -> Callable[[dict], float]:
    """``fn`` with its optimum moved by ``shift`` of each continuous dimension's range."""
    moves: dict[str, Callable[[float], float]] = {}
    for name, spec in space.items():
        kind, value = spec["_type"], spec["_value"]
        if kind in ("uniform", "quniform"):
            delta = shift * (value[1] - value[0])
            moves[name] = lambda v, d=delta: v - d
        elif kind in ("loguniform", "qloguniform"):
            factor = (value[1] / value[0]) ** shift
            moves[name] = lambda v, f=factor: v / f
    return lambda p: fn({k: moves[k](v) if k in moves else v for k, v in p.items()})


def drive(space: dict, fn: Callable[[dict], float], seed: int, imported: list[dict] | None = None) -> list[dict]:
    """One TPE run of ``BUDGET`` trials; the trials' ``{parameter, value}`` in order."""
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    tuner = TpeTuner(optimize_mode="minimize", seed=seed)
    tuner.update_search_space(space)
    tuner.set_trial_budget(BUDGET)
    if imported:
        tuner.import_data(imported)   # what warmStart gives the tuner (the manager's import path)
    trials = []
    for parameter_id in range(BUDGET):
        params = tuner.generate_parameters(parameter_id)
        value = float(fn(params))
        tuner.receive_trial_result(parameter_id, params, value)
        trials.append({"parameter": params, "value": value})
    return trials


def best_curve(trials: list[dict]) -> list[float]:
    best, curve = math.inf, []
    for t in trials:
        best = min(best, t["value"])
        curve.append(best)
    return curve


def trials_to_reach(curve: list[float], target: float) -> int:
    """The first trial (1-based) whose best-so-far is at least as good as ``target``; len+1 if none."""
    return next((i + 1 for i, b in enumerate(curve) if b <= target), len(curve) + 1)


def run(problems: tuple[str, ...], seeds: int, shift: float = SHIFT) -> dict[str, Any]:
    runs = []
    started = time.time()
    for name in problems:
        problem = PROBLEMS[name]
        moved = shifted(problem.space, problem.fn, shift)
        for seed in range(seeds):
            first = drive(problem.space, problem.fn, seed)
            cold = best_curve(drive(problem.space, moved, 1000 + seed))
            warm = best_curve(drive(problem.space, moved, 1000 + seed, imported=first))
            reached = trials_to_reach(warm, cold[-1])
            runs.append({"problem": name, "seed": seed, "cold": cold, "warm": warm,
                         "target": cold[-1], "warm_trials_to_target": reached})
            print(f"{name:10s} seed {seed}: cold best {cold[-1]:.5g}, warm reaches it at trial {reached}"
                  f" (warm best {warm[-1]:.5g})", flush=True)
    return {"benchmark": "warm_start", "budget": BUDGET, "target_trials": TARGET_TRIALS, "shift": shift,
            "seeds": seeds, "problems": list(problems), "runs": runs, "seconds": round(time.time() - started, 1),
            "machine": _machine(), "commit": _commit(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])}


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at start, Python {platform.python_version()}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def table(results: dict[str, Any]) -> tuple[str, bool]:
    """The Markdown table and whether every problem met the target (median over seeds)."""
    lines = [f"| problem | seeds | cold best after {results['budget']} (median) | warm trials to reach it: "
             f"median [min-max] | warm best after {results['budget']} (median) | target <= {results['target_trials']} |",
             "|---|---|---|---|---|---|"]
    ok = True
    for name in results["problems"]:
        runs = [r for r in results["runs"] if r["problem"] == name]
        reached = [r["warm_trials_to_target"] for r in runs]
        median = statistics.median(reached)
        met = median <= results["target_trials"]
        ok &= met
        lines.append(f"| {name} | {len(runs)} | {statistics.median(r['target'] for r in runs):.4g} | "
                     f"{median:g} [{min(reached)}-{max(reached)}] | {statistics.median(r['warm'][-1] for r in runs):.4g} | "
                     f"{'yes' if met else '**no**'} |")
    return "\n".join(lines), ok


def docs_block(results: dict[str, Any], source: str) -> str:
    text, _ = table(results)
    return (f"Shift: {results['shift']:g} of each continuous range; budget {results['budget']} "
            f"trials; TPE with its defaults.\n\n{text}\n\nCommand: `{results['command']}`; machine: {results['machine']}; "
            f"commit {results['commit']}; {results['seconds']} s. Raw results: `{source}` (regenerate this "
            f"table with `python benchmarks/warm_start.py --from-results {source} --update-docs`).")


def update_docs(results: dict[str, Any], source: str) -> None:
    DocsBlock(DOCS, _BEGIN, _END).write(docs_block(results, source))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 2 problems (~20 s)")
    parser.add_argument("--seeds", type=int, help="seeds per problem (default 10; --quick 3)")
    parser.add_argument("--shift", type=float, default=SHIFT,
                        help=f"share of each continuous range the optimum moves by (default {SHIFT})")
    parser.add_argument("--out", help="where the raw results go (default benchmarks/results/warm_start[_quick].json)")
    parser.add_argument("--from-results", help="print the table of a results file instead of running")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/warm_start.md")
    args = parser.parse_args(argv)
    if args.from_results:
        source = args.from_results
        results = json.loads(Path(source).read_text())
    else:
        seeds = args.seeds or (3 if args.quick else 10)
        results = run(QUICK_PROBLEMS if args.quick else FULL_PROBLEMS, seeds, args.shift)
        name = f"warm_start{'_quick' if args.quick else ''}{'' if args.shift == SHIFT else f'_shift{args.shift:g}'}"
        out = Path(args.out or ROOT / "benchmarks" / "results" / f"{name}.json")
        out.write_text(json.dumps(results, indent=0))
        source = os.path.relpath(out, ROOT)
        print(f"raw results: {source}")
    text, ok = table(results)
    print(text)
    print(f"target (median warm trials to the cold {results['budget']}-trial best <= {results['target_trials']}): "
          f"{'met' if ok else 'NOT met'}")
    if args.update_docs:
        update_docs(results, source)
        print(f"updated {os.path.relpath(DOCS, ROOT)}")
    # Quick mode (3 seeds) is a smoke test that the benchmark runs: its medians are noise.
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
