"""Costs that stay flat as the history grows (issue 31): the cheaper paths give what the
full computations gave, and the work per suggestion no longer grows with every result.

Timings live in benchmarks/tuner_costs.py; these tests assert behaviour and bounded work
(memory, model calls), which do not depend on the machine's load.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from nni.algorithms.hpo import _gp
from nni.algorithms.hpo._gp import GaussianProcess
from nni.algorithms.hpo._pareto import ParetoLayers, constrained_ranks, non_dominated_sort
from nni.algorithms.hpo.gp_tuner import GPTuner
from nni.algorithms.hpo.motpe_tuner import MOTPETuner, split_good_bad
from nni.algorithms.hpo.nsga2_tuner import NSGA2Tuner, select_population

ROOT = Path(__file__).resolve().parent.parent
HAS_SMAC = importlib.util.find_spec("smac") is not None
needs_smac = pytest.mark.skipif(not HAS_SMAC, reason='smac is not installed (pip install "nni-ng[smac]")')
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
         "n": {"_type": "randint", "_value": [1, 9]}}


def _params(rng: random.Random) -> dict:
    return {"x": rng.random(), "lr": 10 ** rng.uniform(-4, -1), "n": rng.randint(1, 8)}


def _loss(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + (math.log10(p["lr"]) + 2.5) ** 2 / 4 + abs(p["n"] - 5) / 8


# ---- GP -----------------------------------------------------------------------------------
def test_gp_posterior_with_triangular_solves_equals_the_inverse_formula():
    rng = np.random.default_rng(3)
    X, y = rng.random((40, 3)), rng.random(40)
    gp = GaussianProcess(nu=2.5).fit(X, y)
    U = rng.random((25, 3))
    mu, sd = gp.predict(U)
    # the textbook formulas with an explicit inverse: mu = k* K^-1 y, var = k** - k* K^-1 k*^T
    K = gp._cov(gp.X, gp.X, gp.ls, gp.sf2) + (gp.sn2 + 2e-10) * np.eye(len(X))
    Kinv = np.linalg.inv(K)
    Ks = gp._cov(U, gp.X, gp.ls, gp.sf2)
    assert np.allclose(mu, Ks @ Kinv @ gp.ys, atol=1e-8)
    assert np.allclose(sd ** 2, np.maximum(gp.sf2 - np.einsum("ij,jk,ik->i", Ks, Kinv, Ks), 1e-12), atol=1e-8)
    assert np.allclose(gp.predict_mean(U), mu)
    # leave-one-out: the known closed form from the diagonal of K^-1
    loo_mu, loo_sd = gp.loo()
    assert np.allclose(loo_mu, gp.ys - (Kinv @ gp.ys) / np.diag(Kinv), atol=1e-6)
    assert np.allclose(loo_sd, 1 / np.sqrt(np.diag(Kinv)), rtol=1e-6)
    B = rng.random((40, 7))
    L = np.linalg.cholesky(K)
    assert np.allclose(_gp.solve_lower(L, B), np.linalg.solve(L, B))
    assert np.allclose(_gp.solve_upper(L.T, B), np.linalg.solve(L.T, B))


def test_gp_with_a_long_history_stays_bounded_in_memory_and_keeps_the_best_results():
    """3,000 results: the old posterior (inv(L) and n x n temporaries) peaked near 500 MB."""
    rng = random.Random(0)
    tuner = GPTuner(optimize_mode="minimize", seed=0)
    tuner.update_search_space(SPACE)
    losses = []
    for i in range(3000):
        p = _params(rng)
        losses.append(_loss(p))
        tuner.receive_trial_result(i, p, losses[-1])
    tracemalloc.start()
    try:
        params = tuner.generate_parameters(10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20, f"one suggestion allocated {peak / 2**20:.0f} MB at its peak"
    assert 0 <= params["x"] <= 1 and 1 <= params["n"] <= 8
    gp = tuner._gp
    assert len(gp.X) == _gp.POSTERIOR_MAX
    # the best third of the results is in the model (EI looks where the good results are)
    kept = set(gp.kept.tolist())
    assert set(np.argsort(losses, kind="stable")[: _gp.POSTERIOR_MAX // 3].tolist()) <= kept
    # ... and the best result is the model's best (its targets are warped: the order is kept)
    assert int(gp.kept[int(np.argmin(gp.ys))]) == int(np.argmin(losses))


# ---- Pareto fronts ------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4])
def test_pareto_layers_equal_a_full_sort_after_random_insertions(k):
    rng = np.random.default_rng(k)
    for trial in range(60):
        n = int(rng.integers(1, 90))
        # ties and duplicates on integer grids, general position otherwise
        Y = rng.integers(0, 4, size=(n, k)).astype(float) if trial % 2 else rng.random((n, k))
        layers = ParetoLayers(k)
        for count, i in enumerate(rng.permutation(n), 1):
            layers.add(int(i), Y[i])
            if count % 17 == 0 or count == n:   # the fronts are right at every step, not just the end
                added = np.array([j for front in layers.fronts() for j in front])
                assert (layers.ranks(n)[added] == non_dominated_sort(Y[added])).all()
        assert (layers.ranks(n) == non_dominated_sort(Y)).all()


def _dtlz2(p: dict, names: list[str]) -> dict:
    g = sum((p[n] - 0.5) ** 2 for n in names[2:])
    a, b = p[names[0]] * math.pi / 2, p[names[1]] * math.pi / 2
    return {"f0": (1 + g) * math.cos(a) * math.cos(b), "f1": (1 + g) * math.cos(a) * math.sin(b),
            "f2": (1 + g) * math.sin(a), "c": p[names[2]] - 0.7}


MO_SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(4)}
OBJECTIVES = [{"metric": f"f{i}", "mode": "minimize"} for i in range(3)]


@pytest.mark.parametrize("constraints", [None, ["c"]])
def test_nsga2_fronts_kept_per_result_equal_a_full_resort(constraints):
    tuner = NSGA2Tuner(objectives=OBJECTIVES, seed=1, population_size=12, constraints=constraints)
    tuner.update_search_space(MO_SPACE)
    names = list(MO_SPACE)
    rng = random.Random(5)
    for i in range(300):
        if i % 3 == 0 and i >= 12:   # its own suggestions and foreign results interleaved
            p = tuner.generate_parameters(i)
        else:
            p = {n: rng.random() for n in names}
        if i % 7 == 0:   # duplicates share a front
            p = dict(p)
        tuner.receive_trial_result(i, p, _dtlz2(p, names))
        if i % 37 == 0 or i == 299:
            X, F, viol, fronts = tuner._fronts()
            ranks = np.full(len(F), -1)
            for r, front in enumerate(fronts):
                ranks[front] = r
            assert (ranks == constrained_ranks(F, viol if constraints else None)).all()
            idx, _, _ = tuner._current_parents()
            expect, _, _ = select_population(F, viol, tuner.population_size)
            assert sorted(idx.tolist()) == sorted(expect.tolist())


def test_motpe_good_group_from_kept_fronts_equals_a_full_resort():
    tuner = MOTPETuner(objectives=OBJECTIVES, seed=2)
    tuner.update_search_space(MO_SPACE)
    names = list(MO_SPACE)
    rng = random.Random(6)
    for i in range(400):
        p = tuner.generate_parameters(i) if i % 4 == 0 else {n: rng.random() for n in names}
        tuner.receive_trial_result(i, p, _dtlz2(p, names))
    X, F, _, fronts = tuner._fronts()
    n_good = math.ceil(0.1 * len(F))
    good_kept, bad_kept = split_good_bad(F, n_good, np.random.default_rng(0), fronts)
    good_full, bad_full = split_good_bad(F, n_good, np.random.default_rng(0))
    assert good_kept.tolist() == good_full.tolist() and bad_kept.tolist() == bad_full.tolist()


# ---- SMAC ---------------------------------------------------------------------------------
def _smac(seed: int = 0):
    from nni.algorithms.hpo.smac_tuner import SMACTuner
    tuner = SMACTuner(optimize_mode="minimize", seed=seed)
    tuner.update_search_space(SPACE)
    return tuner


@needs_smac
def test_smac_after_importing_many_rows_suggests_with_a_flat_number_of_model_calls():
    """Importing n rows recomputed SMAC's objective bounds n times (O(n^2)), and each
    suggestion called the forest once per known configuration (SMAC's _get_x_best)."""
    rng = random.Random(1)
    rows = [_params(rng) for _ in range(600)]
    tuner = _smac()
    tuner.import_data([{"parameter": p, "value": _loss(p)} for p in rows[:300]])   # SMAC built with them
    first = tuner.generate_parameters(-1)
    tuner.receive_trial_result(-1, first, _loss(first))
    rows.append(first)
    rh = tuner._smac.runhistory
    bounds_calls = []
    original_bounds = rh._update_objective_bounds
    rh._update_objective_bounds = lambda: (bounds_calls.append(1), original_bounds())[1]
    model = tuner._smac._config_selector._model
    predict_calls = []
    original_predict = model.predict_marginalized
    model.predict_marginalized = lambda X: (predict_calls.append(len(X)), original_predict(X))[1]

    tuner.import_data([{"parameter": p, "value": _loss(p)} for p in rows[300:]])   # SMAC was built: told one by one
    assert len(rh) == 601
    assert len(bounds_calls) <= 2, f"objective bounds recomputed {len(bounds_calls)} times for 300 rows"
    seen = {tuple(sorted(p.items())) for p in rows}
    for i in range(3):
        predict_calls.clear()
        p = tuner.generate_parameters(i)
        assert 0 <= p["x"] <= 1 and 1 <= p["n"] <= 8 and 1e-4 <= p["lr"] <= 1e-1
        assert tuple(sorted(p.items())) not in seen
        # SMAC's local search makes a few dozen batched calls; before, one call per known configuration
        assert len(predict_calls) < 300, f"{len(predict_calls)} model calls for one suggestion after 601 results"
        tuner.receive_trial_result(i, p, _loss(p))


@needs_smac
def test_smac_own_runtime_warnings_do_not_reach_the_user():
    """SMAC's local search logs np.mean([]) at debug level: 'Mean of empty slice' per ask."""
    from nni.algorithms.hpo.smac_tuner import SMACTuner
    space = {"model": {"_type": "choice", "_value": [
        {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}},
        {"_name": "b", "k": {"_type": "randint", "_value": [0, 3]}}]},
        "c": {"_type": "choice", "_value": ["relu", "tanh"]}}
    tuner = SMACTuner(optimize_mode="minimize", config_dedup=True, seed=1)
    tuner.update_search_space(space)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(24):
            p = tuner.generate_parameters(i)
            loss = (p["model"].get("x", 0.5) if p["model"]["_name"] == "a" else p["model"]["k"]) + (p["c"] == "tanh")
            tuner.receive_trial_result(i, p, loss)
        # a warning of the user's own still shows while SMAC's are silenced
        warnings.warn("the user's own", RuntimeWarning)
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert runtime == ["the user's own"]


# ---- the benchmark's table ----------------------------------------------------------------
def test_benchmark_table_in_the_docs_is_the_one_the_committed_results_give():
    spec = importlib.util.spec_from_file_location("tuner_costs", ROOT / "benchmarks" / "tuner_costs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tuner_costs"] = module
    spec.loader.exec_module(module)
    import json
    data = json.loads((ROOT / "benchmarks" / "results" / "tuner_costs.json").read_text())
    assert module.docs_table() == module.render(data)


@needs_smac
def test_building_smac_leaves_the_processes_logging_alone(caplog):
    """SMAC's facade runs logging.config.dictConfig: it set the root logger to CRITICAL and
    disabled every existing logger, so the manager's and the other tuners' warnings vanished."""
    import logging
    other = logging.getLogger("nni.algorithms.hpo._multi_objective")
    root_level = logging.getLogger().level
    _smac()
    assert logging.getLogger().level == root_level and not other.disabled
    with caplog.at_level(logging.WARNING):
        other.warning("still heard")
    assert "still heard" in caplog.text
