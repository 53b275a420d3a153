"""Tuner behaviours behind the fixes of the Bayesmark pilot (issue 28, docs/benchmarks.md).

Each test runs a real tuner on a small synthetic problem that has the property of the
Bayesmark problem where the tuner fell short, over several seeds (seeded: the same numbers
every run), with a threshold well clear of both the fixed and the old behaviour.
"""

from __future__ import annotations

import numpy as np

from nni.algorithms.hpo.gp_tuner import GPTuner

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
