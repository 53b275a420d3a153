"""Tuner behaviours behind the fixes of the Bayesmark pilot (issue 28, docs/benchmarks.md).

Each test runs a real tuner on a small synthetic problem that has the property of the
Bayesmark problem where the tuner fell short, over several seeds (seeded: the same numbers
every run), with a threshold well clear of both the fixed and the old behaviour.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nni.algorithms.hpo.gp_tuner import GPTuner
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from tuner_driving import drive

_DIMS = 4
_SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(_DIMS)}


def _stepped_bowl(params: dict) -> float:
    """A bowl around 0.6 in steps of 0.25: flat plateaus like a decision tree's CV loss."""
    x = np.array([params[f"x{i}"] for i in range(_DIMS)])
    return float(np.floor(((x - 0.6) ** 2).sum() * 16) / 4)


def _gp_late_losses(seed: int, trials: int, noise: float) -> list[float]:
    """True losses of the second half of a GP run that only sees noisy results."""
    rng = np.random.default_rng(1000 + seed)
    tuner = GPTuner(optimize_mode="minimize", seed=seed)
    tuner.update_search_space(_SPACE)
    true = []
    for i in range(trials):
        params = tuner.generate_parameters(i)
        true.append(_stepped_bowl(params))
        tuner.receive_trial_result(i, params, true[-1] + rng.normal(0, noise))
        tuner.trial_end(i, True)
    return true[trials // 2:]


def test_gp_keeps_to_the_good_region_when_results_are_noisy():
    # Bayesmark's DT-breast (noisy, piecewise constant): once the GP had learned the noise, its EI
    # measured improvement from the luckiest result, so only unexplored corners looked
    # promising and its proposals were no better than random search's.  Measured over these 10
    # seeds: the old GP's second-half proposals averaged a true loss of 1.01 (random search:
    # 1.35), the GP whose incumbent is the best posterior mean 0.51 (every seed below 0.85).
    late = [np.mean(_gp_late_losses(seed, 40, 0.5)) for seed in range(10)]
    assert np.mean(late) < 0.75, np.round(late, 2)


_GRID_SPACE = {"k": {"_type": "randint", "_value": [1, 26]}, "p": {"_type": "randint", "_value": [1, 5]}}
# kNN-wine's shape: 25 x 4 integer settings, a smooth trend plus a small deterministic roughness,
# so that neighbours of the best setting are not ordered by their distance to it
_ROUGH = np.random.default_rng(7).normal(0, 0.01, (26, 5))


def _rough_grid(params: dict) -> float:
    k, p = params["k"], params["p"]
    return float(0.78 + 0.0004 * (k - 16) ** 2 + 0.05 * (p - 1) + 1.5 / k + _ROUGH[k, p])


def _gp_run(seed: int, trials: int) -> list[dict]:
    """The parameter sets a GP proposes on the grid, one trial at a time."""
    tuner = GPTuner(optimize_mode="minimize", seed=seed)
    tuner.update_search_space(_GRID_SPACE)
    return drive(tuner, _rough_grid, trials, concurrency=1)


def test_gp_searches_unseen_settings_of_an_integer_space():
    # Bayesmark's kNN-wine (100 integer settings): the GP, fitted with some noise, rated the best
    # results' own settings highest, so its acquisition peak was mostly a setting already tried;
    # the repeat was refused and, after 8 more searches, replaced by a random one (37 of 50
    # proposals per run).  The acquisition now skips tried settings.  Measured over these
    # 10 seeds: the old GP found the best of the 100 settings within 30 trials in 4 runs, the
    # new one in all 10 (at trials 10-18).
    best = min(_rough_grid({"k": k, "p": p}) for k in range(1, 26) for p in range(1, 5))
    runs = [_gp_run(seed, 30) for seed in range(10)]
    found = sum(min(_rough_grid(q) for q in run) <= best for run in runs)
    assert found >= 9, found
    for run in runs:   # no setting twice while unseen ones remain
        assert len({(q["k"], q["p"]) for q in run}) == len(run)


def test_gp_repeats_settings_once_a_finite_space_is_used_up():
    # as NNI's GPTuner: a used-up finite space gets repeats, not an end of the experiment
    run = _gp_run(0, 104)
    assert len({(q["k"], q["p"]) for q in run[:100]}) == 100
    assert all((q["k"], q["p"]) in {(k, p) for k in range(1, 26) for p in range(1, 5)} for q in run[100:])


def _tpe_run(space: dict, objective: Callable[[dict], float], seed: int, trials: int, concurrency: int,
             tpe_args: dict | None = None) -> list[dict]:
    """The parameter sets a seeded TPE gives out over ``trials`` trials (budget 60), ``concurrency`` running."""
    tuner = TpeTuner(optimize_mode="minimize", seed=seed, tpe_args=tpe_args)
    tuner.update_search_space(space)
    tuner.set_trial_budget(60)
    return drive(tuner, objective, trials, concurrency=concurrency)


def test_tpe_proposes_its_best_untried_setting_of_an_integer_space():
    # Bayesmark's kNN problems (100 integer settings): TPE's best candidate was mostly a setting
    # already tried (three quarters of its proposals search the incumbent's narrowed kernel,
    # which rounds back to the incumbent); the repeat was refused and, after 8 more proposals,
    # replaced by a random setting (~40 of 60 proposals a run on kNN-wine).  Its best untried
    # candidate is now proposed.  Measured over these 10 seeds: the old TPE found the best
    # setting within 30 trials in 7 runs one at a time and 7 with four running, the new one in
    # all 10 both ways (20 seeds, 60 trials: 14 and 18 of 20 before, 20 and 20 now).
    best = min(_rough_grid({"k": k, "p": p}) for k in range(1, 26) for p in range(1, 5))
    for concurrency in (1, 4):
        runs = []
        for seed in range(10):
            runs.append(_tpe_run(_GRID_SPACE, _rough_grid, seed, 30, concurrency))
        found = sum(min(_rough_grid(q) for q in run) <= best for run in runs)
        assert found >= 9, (concurrency, found)
        for run in runs:
            assert len({(q["k"], q["p"]) for q in run}) == len(run)


def test_univariate_tpe_proposes_its_best_untried_combination_of_an_integer_space():
    # The same fault in `multivariate: false` (each parameter's best candidate, combined, was a
    # tried set; refused, then random after 8 re-asks); now the best untried combination of the
    # parameters' candidates is proposed.  Measured over these 20 seeds, 60 trials: the old
    # TPE found the best setting in 13 runs one at a time and 15 with four running, the new
    # one in all 20 both ways.
    best = min(_rough_grid({"k": k, "p": p}) for k in range(1, 26) for p in range(1, 5))
    for concurrency in (1, 4):
        found = 0
        for seed in range(20):
            run = _tpe_run(_GRID_SPACE, _rough_grid, seed, 60, concurrency, {"multivariate": False})
            assert len({(q["k"], q["p"]) for q in run}) == len(run)
            found += min(_rough_grid(q) for q in run) <= best
        assert found >= 18, (concurrency, found)


_EDGE_SPACE = {"C": {"_type": "loguniform", "_value": [0.01, 100]},
               "s": {"_type": "loguniform", "_value": [0.01, 100]}}


def _best_at_the_edge(params: dict) -> float:
    """Bayesmark's linear-iris shape: the loss falls all the way to the largest C of the range."""
    return 0.05 * (2 - math.log10(params["C"])) + 0.02 * (math.log10(params["s"]) - 1.3) ** 2


def test_tpe_tries_the_end_of_a_range_where_the_results_point_to_it():
    # Bayesmark's linear-iris (logistic regression, best at the largest C): TPE's kernels were
    # normals truncated to the range, so no proposal ever lay on the bound itself and TPE
    # crept towards it (Optuna's GP, whose optimizer stops at the bound, beat it).  Now a
    # quarter of a local proposal's draws beyond a bound are put on it.  Measured over these
    # 10 seeds, 60 trials: the old TPE never proposed C = 100 and ended on average 0.00021
    # (one at a time) and 0.00025 (eight running) above the best loss; now every run tries
    # C = 100 and ends on average 0.000005 and 0.000025 above it.
    for concurrency in (1, 8):
        gaps = []
        for seed in range(10):
            run = _tpe_run(_EDGE_SPACE, _best_at_the_edge, seed, 60, concurrency)
            assert any(q["C"] == 100 for q in run), (concurrency, seed)
            gaps.append(min(_best_at_the_edge(q) for q in run))
        assert np.mean(gaps) < 0.00008, (concurrency, np.round(gaps, 6))



def _plateau(params: dict) -> float:
    """The same loss everywhere but a corner (6 % of the space): a model that only learns the
    class prior there, or a training that diverges and reports its cap."""
    x0, x1 = params["x0"], params["x1"]
    return x0 + x1 if max(x0, x1) < 0.25 else 1.0


def test_tpe_keeps_exploring_while_every_result_ties():
    # When all random start-up trials landed on a plateau, TPE ranked the tied results by their
    # order, made the first ones its "good" group and searched around them for the rest of the
    # run.  Tied results now tell TPE nothing: while every result ties it proposes at random,
    # and a tie across the good/bad boundary leaves only the strictly better results good.
    # Measured over these 20 seeds, 60 trials: the old TPE found the corner in 7 runs one at a
    # time and 11 with four running (mean best 0.65 and 0.45), now in 19 and 19 (0.06, 0.07).
    for concurrency in (1, 4):
        best = [min(_plateau(q) for q in _tpe_run(_SPACE, _plateau, seed, 60, concurrency)) for seed in range(20)]
        assert sum(b < 1 for b in best) >= 17, (concurrency, np.round(best, 3))
        assert np.mean(best) < 0.2, (concurrency, np.round(best, 3))
