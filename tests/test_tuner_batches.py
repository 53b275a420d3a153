"""Batch suggestions: with 8 trials running, a model-based tuner proposes 8 different points.

The manager asks for parameters while trials are still running (``generate_parameters`` is
called once per free slot, before any of those trials reports).  A tuner that ignores the
running trials proposes the optimum of the same model 8 times: 8 near-copies, 7 of them
wasted.  TPE and GP impute the running trials (constant liar), the SMAC adapter passes over
a proposal that crowds a running trial.

The baseline is what the tuner gives without that: 8 tuners with the same 20 results and
different seeds, one proposal each (8 independent draws of the same model).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nni.algorithms.hpo.gp_tuner import GPTuner
from nni.algorithms.hpo.tpe_tuner import TpeTuner

DIMS = 4
SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(DIMS)}
BATCH = 8
#: no two proposals of one batch closer than this (root mean square over the unit dims)
EPSILON = 0.02


def loss(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(DIMS)])
    return float(((x - 0.3) ** 2).sum() + 0.1 * np.sin(8 * x).sum())


def history(seed: int) -> list[dict]:
    """20 finished trials (random parameters), as an experiment's first results."""
    rng = np.random.default_rng(1000 + seed)
    rows = []
    for _ in range(20):
        p = {f"x{i}": float(rng.random()) for i in range(DIMS)}
        rows.append({"parameter": p, "value": loss(p)})
    return rows


def make(name: str, seed: int):
    if name == "TPE":
        tuner = TpeTuner(optimize_mode="minimize", seed=seed)
    elif name == "GP":
        tuner = GPTuner(optimize_mode="minimize", seed=seed)
    else:
        from nni.algorithms.hpo.smac_tuner import SMACTuner
        tuner = SMACTuner(optimize_mode="minimize", seed=seed)
    tuner.update_search_space(SPACE)
    return tuner


def min_distance(batch: list[dict]) -> float:
    X = np.array([[p[f"x{i}"] for i in range(DIMS)] for p in batch])
    return min(float(np.linalg.norm(a - b)) / math.sqrt(DIMS) for a, b in itertools.combinations(X, 2))


def running_batch(name: str, seed: int) -> list[dict]:
    """8 proposals of one tuner while none of them has reported."""
    tuner = make(name, seed)
    tuner.import_data(history(seed))
    return [tuner.generate_parameters(100 + j) for j in range(BATCH)]


def independent_batch(name: str, seed: int) -> list[dict]:
    """8 proposals that know nothing of each other: 8 tuners with the same results."""
    out = []
    for j in range(BATCH):
        tuner = make(name, 7919 * seed + j)
        tuner.import_data(history(seed))
        out.append(tuner.generate_parameters(100))
    return out


@pytest.mark.parametrize("name", ["TPE", "GP"])
def test_running_trials_spread_the_batch(name: str) -> None:
    ours = [min_distance(running_batch(name, s)) for s in range(4)]
    alone = [min_distance(independent_batch(name, s)) for s in range(4)]
    # no two proposals of a batch on top of each other ...
    assert min(ours) > EPSILON, f"{name}: closest pair of a batch {min(ours):.4f} apart ({ours})"
    # ... and clearly more spread than 8 draws of the same model
    assert np.mean(ours) > 1.5 * np.mean(alone), \
        f"{name}: closest pairs {np.round(ours, 3)} vs {np.round(alone, 3)} without the running trials"


def test_smac_batch_has_no_near_copies() -> None:
    """SMAC asked 8 times before any result gave the next-best points of one acquisition search,
    pairs 0.4 % to 1.8 % of the space apart; 8 SMAC tuners with different seeds are no baseline
    (each has its own random forest and random interleaving), so only the distance is checked."""
    pytest.importorskip("smac")
    ours = [min_distance(running_batch("SMAC", s)) for s in range(2)]
    assert min(ours) > EPSILON, f"SMAC: closest pair of a batch {min(ours):.4f} apart ({ours})"
