"""Tuners on Bayesmark's grid (the NeurIPS 2020 black-box optimization challenge's problems).

Run from the repository root with the project's venv::

    python -m benchmarks.bbo --quick                       # ~30 s: 2 cheap problems, ours only
    python -m benchmarks.bbo --seeds 10 --jobs 2 --peer-python ~/.cache/nni-ng/bbo-venv/bin/python
    python -m benchmarks.bbo --from-results benchmarks/results/bbo.jsonl.gz   # the table again

Budgets: ``challenge`` = 16 rounds x a batch of 8 (the challenge's), ``sequential`` = 60 x 1.
Score (Bayesmark's normalized score): per problem, ``(best of the run, clipped at random
search's median evaluation - best ever) / (random search's expected best at the same budget -
best ever)``; "best ever" is the best loss any run of any optimizer found on that problem;
random's expected best is computed exactly from all random-search evaluations on the problem
(order statistics of the pooled draws, clipped as Bayesmark does). 0 = the best anyone found,
1 = as good as random search, lower is better. The mean over problems weights each problem as
Bayesmark's mean score does (by random's expected best on the scale where the clip level is 1),
so a problem where every evaluation but a few diverges cannot outweigh the rest. The table gives
each optimizer's mean score with a 95 % bootstrap interval over problems and, per problem, a
Mann-Whitney rank-sum test of our default tuner against each peer.

Raw results go to a JSON-lines file (one run a line, appended as runs finish, so an
interrupted study continues where it stopped); the table is made from that file alone.
Peers (HEBO, Optuna, SMAC) run in their own venv (``--peer-python``), never the project's.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gzip
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .._docs_block import DocsBlock
from ..tuner_quality.__main__ import bootstrap_median_ci, mann_whitney_p
from .problems import PROBLEMS, QUICK_PROBLEMS
from .run import OURS, PEERS

BUDGETS = {"challenge": (16, 8), "sequential": (60, 1)}
QUICK_BUDGETS = {"challenge": (2, 4), "sequential": (6, 1)}
#: our default tuner: the one the per-problem tests are made for
DEFAULT = "tpe"
RESULTS = Path("benchmarks/results")
ROOT = Path(__file__).resolve().parents[2]


def _open(path: Path, mode: str) -> Any:
    return gzip.open(path, mode + "t") if path.suffix == ".gz" else open(path, mode)


def load(paths: Iterable[Path]) -> list[dict]:
    """The runs of several raw files; a run in a later file replaces the runs of an earlier file
    with the same optimizer, problem, budget and seed (an optimizer rerun after a change)."""
    runs: list[dict] = []
    for path in paths:
        if path.exists():
            new, _ = _read_runs(path)
            rerun = {_key(r) for r in new if "losses" in r}
            runs = [r for r in runs if _key(r) not in rerun] + new
    return runs


def _read_runs(path: Path) -> tuple[list[dict], bool]:
    """The runs of a raw file's complete lines, and whether the file was cut short.

    A study killed while appending leaves a gzip member without its end (and a line cut
    short): what was written before it is kept (:func:`run_jobs` then rewrites the file
    whole, so that running the same command again continues the study)."""
    lines: list[str] = []
    cut = False
    with _open(path, "r") as f:
        try:
            for line in f:
                lines.append(line)
        except EOFError:
            cut = True
    runs = []
    for line in lines:
        if not line.strip():
            continue
        try:
            runs.append(json.loads(line))
        except ValueError:
            if line.endswith("\n"):
                raise
            cut = True
    return runs, cut


def _key(job: dict) -> tuple:
    return job["optimizer"], job["problem"], job["budget"], int(job["seed"])


def make_jobs(args: argparse.Namespace) -> list[dict]:
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    jobs = []
    for budget in args.budgets:
        rounds, batch = budgets[budget]
        for problem in args.problems:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for optimizer in args.optimizers:
                    jobs.append({"optimizer": optimizer, "problem": problem, "budget": budget,
                                 "rounds": rounds, "batch": batch, "seed": seed})
    # seed by seed, so a study stopped early still has every optimizer on the same seeds; within
    # a seed the slow optimizers first, so its last minutes are not one long run on one core
    return sorted(jobs, key=lambda j: (j["seed"], j["optimizer"] not in ("hebo", "optuna_gp", "gp", "smac", "smac_peer")))


class _Worker:
    """A ``benchmarks.bbo.run`` process of one interpreter, kept for many runs (imports once)."""

    def __init__(self, python: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([python, "-m", "benchmarks.bbo.run"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, job: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {**job, "error": f"worker exited with {self.proc.wait()}"}
        return {**json.loads(line), "seconds": time.perf_counter() - t0}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def run_jobs(jobs: list[dict], args: argparse.Namespace, out: Path) -> None:
    kept, cut = _read_runs(out) if out.exists() else ([], False)
    if cut:   # appending after a cut gzip member would hide everything appended
        partial = out.with_name(".partial-" + out.name)   # the same suffix: the same compression
        with _open(partial, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        partial.replace(out)
        print(f"{out} was cut short (a study stopped while writing): {len(kept)} complete runs kept", flush=True)
    done = {_key(r) for r in kept if "losses" in r}
    todo = [j for j in jobs if _key(j) not in done]
    print(f"{len(jobs) - len(todo)} runs already in {out}, {len(todo)} to go", flush=True)
    started = time.time()
    local = threading.local()
    workers: list[_Worker] = []
    lock = threading.Lock()

    def execute(job: dict) -> dict:
        python = args.peer_python if job["optimizer"] in PEERS else sys.executable
        mine = getattr(local, "workers", None)
        if mine is None:
            mine = local.workers = {}
        if python not in mine:
            mine[python] = _Worker(python)
            with lock:
                workers.append(mine[python])
        result = mine[python].run(job)
        if "error" in result and mine[python].proc.poll() is not None:
            del mine[python]   # a crashed worker is replaced for the next run
        return result

    try:
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as pool, _open(out, "a") as sink:
            futures = [pool.submit(execute, j) for j in todo]
            for i, fut in enumerate(cf.as_completed(futures), 1):
                result = fut.result()
                sink.write(json.dumps(result) + "\n")
                sink.flush()
                if "error" in result:
                    print(f"  {_key(result)} failed: {result['error']}", flush=True)
                if i % max(1, len(todo) // 20) == 0 or i == len(todo):
                    elapsed = time.time() - started
                    print(f"  {i}/{len(todo)} runs, {elapsed:.0f} s, about {elapsed / i * (len(todo) - i):.0f} s left",
                          flush=True)
    finally:
        for w in workers:
            w.close()


# ---- scoring --------------------------------------------------------------------------------
def expected_min(pool: np.ndarray, n: int) -> float:
    """Expected minimum of ``n`` draws without replacement from ``pool`` (exact)."""
    v = np.sort(pool)
    m = len(v)
    n = min(n, m)
    # P(min >= v[i]) = C(m - i, n) / C(m, n); computed in logs
    i = np.arange(m + 1)
    log_c = np.full(m + 1, -np.inf)
    ok = (m - i) >= n
    log_c[ok] = [math.lgamma(m - k + 1) - math.lgamma(n + 1) - math.lgamma(m - k - n + 1) for k in i[ok]]
    surv = np.exp(log_c - log_c[0])   # P(min >= v[i]) for i = 0..m
    return float(np.sum(v * (surv[:-1] - surv[1:])))


def _baselines(runs: list[dict]) -> Iterator[tuple[str, list[dict], float, float, np.ndarray]]:
    """Per problem with random search: its runs, the best loss of any run, the clip level (the
    median of random search's single evaluations, as Bayesmark's) and random search's evaluations
    clipped there. A problem where random's median is already the best is left out."""
    by_problem: dict[str, list[dict]] = {}
    for r in runs:
        if "losses" in r:
            by_problem.setdefault(r["problem"], []).append(r)
    for problem, rs in by_problem.items():
        best_ever = min(min(r["losses"]) for r in rs)
        pool = np.concatenate([r["losses"] for r in rs if r["optimizer"] in ("random", "random_peer")] or [[]])
        if len(pool) == 0:
            continue
        clip = float(np.median(pool))
        if clip > best_ever:
            yield problem, rs, best_ever, clip, np.minimum(pool, clip)


def scores(runs: list[dict]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(budget, problem): {optimizer: [normalized score of each seed]}}.

    A run's best loss is clipped at the median of random search's single evaluations (Bayesmark
    clips there, so one diverged run cannot outweigh a problem), then put on the scale where 0 is
    the best any run found and 1 is random search's expected best at the run's budget."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for problem, rs, best_ever, clip, pool in _baselines(runs):
        for r in rs:
            scale = expected_min(pool, len(r["losses"])) - best_ever
            score = (min(min(r["losses"]), clip) - best_ever) / scale if scale > 0 else 0.0
            out.setdefault((r["budget"], problem), {}).setdefault(r["optimizer"], []).append(float(score))
    return out


def weights(runs: list[dict]) -> dict[tuple[str, str], float]:
    """{(budget, problem): random search's expected best on Bayesmark's own scale}, where 0 is the
    best any run found and 1 the clip level. Bayesmark's mean score over problems is the mean of
    each problem's score on its own scale divided by the mean of these, which is the mean of the
    scores of :func:`scores` weighted by these."""
    out: dict[tuple[str, str], float] = {}
    for problem, rs, best_ever, clip, pool in _baselines(runs):
        for budget, n in {(r["budget"], int(r["rounds"]) * int(r["batch"])) for r in rs}:
            out[(budget, problem)] = (expected_min(pool, n) - best_ever) / (clip - best_ever)
    return out


def summarize(runs: list[dict]) -> dict:
    """Mean score per optimizer and budget (with interval), and per-problem tests of ours."""
    table = scores(runs)
    weight = weights(runs)
    summary: dict[str, Any] = {"mean": {}, "losses": {}, "problems": sorted({p for _, p in table}),
                               "shape": {r["budget"]: f"{r['rounds']}x{r['batch']}" for r in runs if "losses" in r}}
    for budget in sorted({b for b, _ in table}):
        cells = {p: v for (b, p), v in table.items() if b == budget}
        optimizers = sorted({o for v in cells.values() for o in v}, key=_order)
        for o in optimizers:
            per_problem = np.array([float(np.mean(v[o])) for v in cells.values() if o in v])
            w = np.array([weight[(budget, p)] for p, v in cells.items() if o in v])
            lo, hi = _bootstrap_mean(per_problem, w)
            summary["mean"][(budget, o)] = (float(np.average(per_problem, weights=w)), lo, hi,
                                            len(per_problem), len(cells))
        for p, v in cells.items():
            if DEFAULT not in v:
                continue
            for o in optimizers:
                if o in PEERS and o in v:
                    pval = mann_whitney_p(v[DEFAULT], v[o])
                    gap = float(np.median(v[DEFAULT]) - np.median(v[o]))
                    if pval < 0.05 and gap > 0:
                        summary["losses"].setdefault(budget, []).append((p, o, gap, pval))
    return summary


def _bootstrap_mean(values: np.ndarray, w: np.ndarray, n_boot: int = 2000) -> tuple[float, float]:
    """95 % interval of the weighted mean over problems, problems resampled."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = (values[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _order(o: str) -> tuple[int, str]:
    return (0 if o in OURS else 1, o)


def render(runs: list[dict], command: str, per_problem: bool = False) -> str:
    s = summarize(runs)
    budgets = sorted({b for b, _ in s["mean"]})
    optimizers = sorted({o for _, o in s["mean"]}, key=_order)
    lines = [f"Problems: {len(s['problems'])} ({', '.join(s['problems'])})", "",
             "| optimizer | " + " | ".join(f"{b} ({s['shape'][b]})" for b in budgets) + " |",
             "|---|" + "---:|" * len(budgets)]
    for o in optimizers:
        cells = []
        for b in budgets:
            if (b, o) in s["mean"]:
                mean, lo, hi, covered, problems = s["mean"][(b, o)]
                # A mean over fewer problems is not comparable with the others: say so in the cell.
                part = f" ({covered} of {problems} problems)" if covered < problems else ""
                cells.append(f"{mean:.3f} [{lo:.3f}, {hi:.3f}]{part}")
            else:
                cells.append("")
        lines.append(f"| {o}{' (ours)' if o in OURS else ''} | " + " | ".join(cells) + " |")
    lines += ["", "Mean normalized score, Bayesmark's (0 = best found by any run, 1 = random search's expected "
              "best; each run clipped at random search's median evaluation; problems weighted as Bayesmark's "
              "mean does); lower is better; 95 % bootstrap interval over problems."]
    for b in budgets:
        losses = s["losses"].get(b, [])
        worse = [f"{p} vs {o} (+{gap:.2f}, p={pv:.3f})" for p, o, gap, pv in sorted(losses)]
        lines.append(f"- {b}: problems where a peer beats our `{DEFAULT}` (rank-sum p < 0.05): "
                     + ("; ".join(worse) if worse else "none"))
    if per_problem:
        lines += _per_problem(runs)
    lines.append(f"\nCommand: `{command}`")
    return "\n".join(lines)


def _per_problem(runs: list[dict]) -> list[str]:
    """Per budget, each problem's mean score per optimizer (seeds in brackets); + / − : better /
    worse than random search at rank-sum p < 0.05."""
    table = scores(runs)
    lines: list[str] = []
    for b in sorted({b for b, _ in table}):
        cells = {p: v for (bb, p), v in sorted(table.items()) if bb == b}
        optimizers = sorted({o for v in cells.values() for o in v}, key=_order)
        lines += ["", f"{b}: mean score per problem (seeds); +/− better/worse than random (rank-sum p < 0.05)", "",
                  "| problem | " + " | ".join(optimizers) + " |", "|---|" + "---:|" * len(optimizers)]
        for p, v in cells.items():
            row = []
            for o in optimizers:
                if o not in v:
                    row.append("")
                    continue
                ref = next((r for r in ("random", "random_peer") if r in v and r != o), None)
                mark = ""
                if ref and mann_whitney_p(v[o], v[ref]) < 0.05:
                    mark = " +" if np.median(v[o]) < np.median(v[ref]) else " −"
                row.append(f"{np.mean(v[o]):.2f} ({len(v[o])}){mark}")
            lines.append(f"| {p} | " + " | ".join(row) + " |")
    return lines


DOCS_BLOCK = DocsBlock(
    ROOT / "docs" / "benchmarks.md",
    "<!-- bbo-table: begin (python -m benchmarks.bbo --from-results FILE... --per-problem --update-docs) -->",
    "<!-- bbo-table: end -->")


def update_docs(table: str) -> None:
    DOCS_BLOCK.write(table)


def docs_table() -> str:
    """The tables now between the markers of docs/benchmarks.md."""
    return DOCS_BLOCK.read()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bbo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 cheap problems, tiny budgets, 2 seeds (CI)")
    ap.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), metavar="PROBLEM")
    ap.add_argument("--optimizers", nargs="+", choices=OURS + PEERS)
    ap.add_argument("--budgets", nargs="+", choices=list(BUDGETS), default=list(BUDGETS))
    ap.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds run from this one on (more seeds for a study run before: --first-seed 5 --seeds 5)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once (one core each)")
    ap.add_argument("--peer-python", help="python of a venv with hebo, optuna, smac and scikit-learn")
    ap.add_argument("--out", type=Path, help="raw results (JSON lines, .gz allowed); appended to")
    ap.add_argument("--from-results", type=Path, nargs="+", metavar="FILE", help="only print the table")
    ap.add_argument("--per-problem", action="store_true", help="also a table of each problem's scores")
    ap.add_argument("--update-docs", action="store_true",
                    help="with --from-results: write the tables into docs/benchmarks.md between its markers")
    args = ap.parse_args(argv)
    command = "python -m benchmarks.bbo " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_results:
        table = render(load(args.from_results), command, args.per_problem)
        print(table)
        if args.update_docs:
            update_docs(table)
        return 0
    if args.update_docs:
        ap.error("--update-docs goes with --from-results: the docs' tables are made from committed raw results")
    if args.quick:
        args.problems = args.problems or list(QUICK_PROBLEMS)
        args.seeds = min(args.seeds, 2)
    args.problems = args.problems or sorted(PROBLEMS)
    default_optimizers = list(OURS) + (list(PEERS) if args.peer_python else [])
    args.optimizers = args.optimizers or (["tpe", "random"] if args.quick else default_optimizers)
    if any(o in PEERS for o in args.optimizers) and not args.peer_python:
        ap.error("--peer-python is needed for " + ", ".join(o for o in args.optimizers if o in PEERS))
    out = args.out or Path(os.environ.get("TMPDIR", "/tmp")) / ("bbo-quick.jsonl" if args.quick else "bbo.jsonl")
    if args.quick and out.exists():
        out.unlink()
    run_jobs(make_jobs(args), args, out)
    runs = load([out])
    succeeded = {_key(r) for r in runs if "losses" in r}
    failed = [r for r in runs if "error" in r and _key(r) not in succeeded]   # not redone since
    print(render(runs, command, args.per_problem))
    print(f"raw results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
