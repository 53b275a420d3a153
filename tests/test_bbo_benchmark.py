"""The Bayesmark-grid benchmark's scoring and problems (benchmarks/bbo)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from benchmarks.bbo.__main__ import expected_min, main, render, scores, weights
from benchmarks.bbo.problems import PROBLEMS, random_params
from nni.algorithms.hpo.tpe_tuner import TpeTuner


def test_expected_min_is_the_exact_mean_over_all_draws():
    pool = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    for n in (1, 2, 3, 6):
        brute = np.mean([min(c) for c in itertools.combinations(pool, n)])
        assert expected_min(pool, n) == pytest.approx(brute)


def test_scores_put_the_best_run_at_zero_and_random_near_one():
    rng = np.random.default_rng(0)
    runs = [{"optimizer": "random", "problem": "p", "budget": "b", "seed": s,
             "losses": list(rng.uniform(0, 1, 10))} for s in range(50)]
    runs.append({"optimizer": "tpe", "problem": "p", "budget": "b", "seed": 0, "losses": [0.5] * 9 + [-1.0]})
    table = scores(runs)[("b", "p")]
    assert table["tpe"] == [0.0]
    assert np.mean(table["random"]) == pytest.approx(1.0, abs=0.15)


def test_a_mean_over_fewer_problems_than_the_others_says_so():
    """A peer run on only some problems (HEBO's slow sequential runs) gets a mean over those
    alone; the table must not let it pass for a mean over the grid."""
    rng = np.random.default_rng(0)
    runs = []
    for problem in ("p", "q", "r"):
        runs += [{"optimizer": "random", "problem": problem, "budget": "b", "rounds": 4, "batch": 1, "seed": s,
                  "losses": list(rng.uniform(0, 1, 4))} for s in range(20)]
        for optimizer in ("tpe", "hebo") if problem == "p" else ("tpe",):
            runs.append({"optimizer": optimizer, "problem": problem, "budget": "b", "rounds": 4, "batch": 1,
                         "seed": 0, "losses": list(rng.uniform(0, 0.5, 4))})
    rows = {line.split("|")[1].strip(): line for line in render(runs, "cmd").splitlines() if line.startswith("| ")}
    assert rows["hebo"].endswith("(1 of 3 problems) |")
    assert "problems)" not in rows["tpe (ours)"] and "problems)" not in rows["random (ours)"]


@pytest.mark.parametrize("name", ["DT-wine", "linear-diabetes", "kNN-iris"])
def test_our_tuner_drives_a_problem_and_every_parameter_reaches_the_model(name):
    problem = PROBLEMS[name]
    tuner = TpeTuner(optimize_mode="minimize", seed=1)
    tuner.update_search_space(problem.nni_space())
    for i in range(3):
        params = tuner.generate_parameters(i)
        assert set(problem.clean(params)) == set(problem.spec)
        loss = problem.evaluate(params)
        assert np.isfinite(loss)
        tuner.receive_trial_result(i, params, loss)
    rng = np.random.default_rng(0)
    assert np.isfinite(problem.evaluate(random_params(problem, rng)))


def test_quick_mode_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "bbo.jsonl"
    assert main(["--quick", "--seeds", "1", "--jobs", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| tpe (ours) |" in text and "| random (ours) |" in text
    assert main(["--from-results", str(out)]) == 0
    assert "| tpe (ours) |" in capsys.readouterr().out


def test_a_study_stopped_while_writing_continues_where_it_stopped(tmp_path, capsys):
    """A study killed while appending to its gzipped raw file leaves the last gzip member cut
    short; running the same command again keeps the complete runs, redoes only the rest, and
    the file reads whole afterwards (appending after the cut member would have hidden it)."""
    import gzip
    out = tmp_path / "bbo.jsonl.gz"
    args = ["--problems", "linear-iris", "--optimizers", "random", "--budgets", "sequential",   # 60 x ~40 ms
            "--seeds", "2", "--jobs", "1", "--out", str(out)]
    assert main(args) == 0
    first = [json.loads(line) for line in gzip.open(out, "rt")]
    assert [r["seed"] for r in first] == [0, 1]
    kept = first[0]
    with gzip.open(out, "wt") as f:               # seed 0 complete, then seed 1 cut mid-member
        f.write(json.dumps(kept) + "\n")
    complete = out.stat().st_size
    with gzip.open(out, "at") as f:
        f.write(json.dumps(first[1]) + "\n")
    data = out.read_bytes()
    out.write_bytes(data[:complete + (len(data) - complete) // 2])
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "was cut short" in printed and "1 runs already in" in printed
    again = [json.loads(line) for line in gzip.open(out, "rt")]
    assert [r["seed"] for r in again] == [0, 1] and again[0] == kept
    # more seeds for the same study later: only the new ones run, appended to the same file
    seeds_at = args.index("--seeds")
    assert main(args[:seeds_at] + ["--first-seed", "2", "--seeds", "1"] + args[seeds_at + 2:]) == 0
    assert [json.loads(line)["seed"] for line in gzip.open(out, "rt")] == [0, 1, 2]


def test_docs_tables_are_made_from_the_committed_raw_results():
    """docs/benchmarks.md's Bayesmark tables are what ``--from-results`` makes of the raw runs it
    names: a table edited by hand, or raw results changed without the docs, fails here."""
    from benchmarks.bbo.__main__ import ROOT, docs_table, load, render
    table = docs_table()
    command = table.rsplit("Command: `", 1)[1].rstrip("`")
    words = command.split()
    files = []
    for word in words[words.index("--from-results") + 1:]:
        if word.startswith("--"):
            break
        files.append(ROOT / word)
    assert files and all(f.is_file() for f in files), f"the docs' table names raw results that are not committed: {files}"
    assert render(load(files), command, "--per-problem" in words) == table


def test_a_diverged_run_is_clipped_at_random_searchs_median_and_such_problems_weigh_little():
    """As Bayesmark scores: a run no better than random search's median evaluation counts as that
    median, however far it diverged, and a problem where random search's best is close to the
    best found (relative to its median evaluation) weighs little in the mean over problems."""
    rng = np.random.default_rng(1)

    def runs_of(problem: str, draw) -> list[dict]:
        rs = [{"optimizer": "random", "problem": problem, "budget": "b", "rounds": 60, "batch": 1,
               "seed": s, "losses": list(draw(60))} for s in range(40)]
        rs.append({"optimizer": "tpe", "problem": problem, "budget": "b", "rounds": 60, "batch": 1,
                   "seed": 0, "losses": [1e6] * 60})
        return rs

    smooth = runs_of("smooth", lambda n: rng.uniform(0, 1, n))
    # nearly every setting diverges (15-24), a few reach ~1
    heavy = runs_of("heavy", lambda n: np.where(rng.uniform(size=n) < 0.1, rng.uniform(0.7, 1.2, n), rng.uniform(15, 24, n)))
    table = scores(smooth + heavy)
    for problem, rs in (("smooth", smooth), ("heavy", heavy)):
        pool = np.concatenate([r["losses"] for r in rs if r["optimizer"] == "random"])
        best, median = pool.min(), np.median(pool)
        clipped = np.minimum(pool, median)
        assert table[("b", problem)]["tpe"] == [pytest.approx((median - best) / (expected_min(clipped, 60) - best))]
    w = weights(smooth + heavy)
    assert 5 * w[("b", "heavy")] < w[("b", "smooth")]


def test_a_later_raw_file_replaces_an_optimizers_earlier_runs(tmp_path):
    """An optimizer rerun after a change goes to its own raw file; read after the study's file,
    its runs replace the earlier ones of the same optimizer, problem, budget and seed."""
    from benchmarks.bbo.__main__ import load
    run = {"optimizer": "gp", "problem": "DT-breast", "budget": "sequential", "rounds": 60, "batch": 1}
    first, second = tmp_path / "study.jsonl", tmp_path / "rerun.jsonl"
    first.write_text("\n".join(json.dumps({**run, "seed": s, "losses": [1.0]}) for s in (0, 1)) + "\n"
                     + json.dumps({**run, "optimizer": "random", "seed": 0, "losses": [2.0]}) + "\n")
    second.write_text(json.dumps({**run, "seed": 0, "losses": [0.5]}) + "\n")
    runs = load([first, second])
    assert sorted((r["optimizer"], r["seed"], r["losses"][0]) for r in runs) == [
        ("gp", 0, 0.5), ("gp", 1, 1.0), ("random", 0, 2.0)]
