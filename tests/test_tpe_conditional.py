"""TPE on nested ``choice`` spaces and its budget-aware defaults (issue 16).

Real tuners driven through the Tuner API; one test records what the estimators were
fitted on by wrapping the real estimator class (the real code still runs).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from nni.algorithms.hpo import tpe_tuner
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo._parzen import CATEGORICAL_EPS, JointParzen
from nni.algorithms.hpo.tpe_tuner import TpeTuner, auto_startup_jobs
from nni.search_space._flat import flatten

U01 = {"_type": "uniform", "_value": [0.0, 1.0]}

# Two branches with a parameter of the same name; 'b' is nested one level deeper.
NESTED_SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1.0]},
    "model": {"_type": "choice", "_value": [
        {"_name": "a", "x": U01, "k": {"_type": "randint", "_value": [0, 5]}},
        {"_name": "b", "x": U01, "kind": {"_type": "choice", "_value": [
            {"_name": "deep", "depth": {"_type": "randint", "_value": [1, 9]}},
            {"_name": "wide", "width": {"_type": "quniform", "_value": [8, 64, 8]}}]}},
        "plain",
    ]},
}


def nested_loss(p: dict) -> float:
    m = p["model"]
    if m == "plain":
        return 2.0
    if m["_name"] == "a":
        return 1.0 + (m["x"] - 0.1) ** 2 + 0.01 * m["k"]
    k = m["kind"]
    extra = 0.05 * abs(k["depth"] - 6) if k["_name"] == "deep" else 0.5
    return 3.0 * (m["x"] - 0.85) ** 2 + extra + 0.1 * (math.log10(p["lr"]) + 2) ** 2


def drive(tuner, space: dict, fn, n: int) -> list[tuple[dict, float]]:
    tuner.update_search_space(space)
    out = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        loss = fn(p)
        tuner.receive_trial_result(i, p, loss)
        out.append((p, loss))
    return out


def test_an_inactive_parameter_never_enters_an_estimator(monkeypatch):
    """Every joint estimator is fitted on the dims of one context only (the top level or one
    branch), and only on trials in which all of those dims were active."""
    dims = flatten(NESTED_SPACE)
    fits: list[tuple[list[int], np.ndarray]] = []
    real = tpe_tuner.JointParzen

    class Recording(real):
        def __init__(self, gdims, X, *args, **kwargs):
            fits.append(([d.index for d in gdims], X.copy()))
            super().__init__(gdims, X, *args, **kwargs)

    monkeypatch.setattr(tpe_tuner, "JointParzen", Recording)
    drive(TpeTuner(seed=3, tpe_args={"n_startup_jobs": 10}), NESTED_SPACE, nested_loss, 60)
    assert fits
    contexts_seen = set()
    for idx, X in fits:
        ctx = {(dims[i].parent, dims[i].parent_option) for i in idx}
        assert len(ctx) == 1, [dims[i].display for i in idx]     # one context per estimator
        contexts_seen |= ctx
        assert not np.isnan(X[:, idx]).any()                     # no inactive value inside
    # the top level and every branch (a, b, b/deep, b/wide) got modelled at some point
    assert len(contexts_seen) == 5, contexts_seen


def test_a_branch_is_modelled_from_its_own_trials():
    """b's x is good near 0.85 while a's x is good near 0.1 and every a trial beats every b
    trial: proposals in b still go to b's own good region, not a's and not the prior."""
    space = {"model": {"_type": "choice", "_value": [{"_name": "a", "x": U01}, {"_name": "b", "x": U01}]}}

    def loss(p: dict) -> float:
        m = p["model"]
        return abs(m["x"] - 0.1) if m["_name"] == "a" else 10 + abs(m["x"] - 0.85)

    rng = np.random.default_rng(0)
    history = [{"parameter": {"model": {"_name": name, "x": float(x)}}, "value": 0.0}
               for name in ("a", "b") for x in rng.uniform(0, 1, 30)]
    for row in history:
        row["value"] = loss(row["parameter"])
    xs_b = []
    for seed in range(40):
        tuner = TpeTuner(seed=seed)
        tuner.update_search_space(space)
        tuner.import_data(history)
        for i in range(3):
            p = tuner.generate_parameters(i)
            if p["model"]["_name"] == "b":
                xs_b.append(p["model"]["x"])
    assert len(xs_b) >= 10, len(xs_b)   # b is still explored although a always looked better
    assert statistics.median(abs(x - 0.85) for x in xs_b) < 0.12, sorted(xs_b)


def test_finds_the_optimum_of_a_branch_that_looks_worst_at_first():
    """The best branch ('b', a narrow region) has the worst typical random trial; a has a wide
    flat floor of 1.0.  TPE must not settle in a: it beats the floor and random search."""
    space = {"model": {"_type": "choice", "_value": [
        {"_name": "a", "x": {"_type": "uniform", "_value": [-5, 5]}, "y": {"_type": "uniform", "_value": [-5, 5]}},
        {"_name": "b", "lr": {"_type": "loguniform", "_value": [1e-6, 1.0]}, "mom": U01,
         "n": {"_type": "randint", "_value": [1, 21]}},
    ]}}

    def loss(p: dict) -> float:
        m = p["model"]
        if m["_name"] == "a":
            return 1.0 + 0.05 * (m["x"] ** 2 + m["y"] ** 2)
        return 2.0 * (math.log10(m["lr"]) + 2.5) ** 2 + 0.5 * (m["mom"] - 0.9) ** 2 + 0.1 * abs(m["n"] - 7)

    def best(tuner) -> float:
        if isinstance(tuner, TpeTuner):
            tuner.set_trial_budget(100)
        return min(v for _, v in drive(tuner, space, loss, 100))

    ours = [best(TpeTuner(seed=s)) for s in range(5)]
    rand = [best(RandomTuner(seed=s)) for s in range(5)]
    assert sum(v < 0.5 for v in ours) >= 4, ours            # below a's floor of 1.0, in b
    assert statistics.median(ours) < statistics.median(rand), (ours, rand)


def test_startup_trials_follow_the_trial_budget():
    t = TpeTuner()
    assert t.args.n_startup_jobs is None and t.n_startup_jobs == 20     # budget unknown: NNI's 20
    for budget, expected in ((30, 5), (60, 6), (100, 10), (200, 20), (5000, 20)):
        t.set_trial_budget(budget)
        assert t.n_startup_jobs == expected == auto_startup_jobs(budget)
    t.set_trial_budget(None)
    assert t.n_startup_jobs == 20
    explicit = TpeTuner(tpe_args={"n_startup_jobs": 7})
    explicit.set_trial_budget(30)
    assert explicit.n_startup_jobs == 7                                  # an explicit classArg wins


@pytest.mark.parametrize("budget", [30, 200])
def test_proposals_concentrate_after_the_startup_trials(budget):
    """Whatever start-up size the budget gives (5 or 20), the later proposals gather around
    the optimum: their median distance to it is well under random sampling's (about 0.21)."""
    space = {"x": U01}
    tuner = TpeTuner(seed=0)
    tuner.set_trial_budget(budget)
    params = drive(tuner, space, lambda p: abs(p["x"] - 0.3), 60)
    late = [p["x"] for p, _ in params[40:]]
    assert statistics.median(abs(x - 0.3) for x in late) < 0.1, late


def test_the_manager_tells_tpe_the_trial_budget(make_experiment):
    """A real experiment: the manager passes maxTrialNumber to TPE (and later changes of it)."""
    trial = "import nni\np = nni.get_next_parameter()\nnni.report_final_result((p['x'] - 0.3) ** 2)\n"
    tuner = TpeTuner(seed=0)
    exp = make_experiment(trial, {"x": U01}, tuner=tuner, concurrency=2, max_trials=8)
    assert exp.run(port=0) is True
    assert tuner._trial_budget == 8 and tuner.n_startup_jobs == 5
    assert len(tuner._history) == 8


def _distances_to_incumbent(share: float, seed: int, monkeypatch) -> list[float]:
    """Drive TPE on a 2-D bowl; for every proposal after the start-up, its distance (max norm)
    to the best trial seen before it."""
    monkeypatch.setattr(tpe_tuner, "LOCAL_SEARCH_SHARE", share)
    tuner = TpeTuner(seed=seed, tpe_args={"n_startup_jobs": 10})
    tuner.update_search_space({"x": U01, "y": U01})
    best: tuple[dict, float] | None = None
    dists = []
    for i in range(50):
        p = tuner.generate_parameters(i)
        if i >= 10:
            dists.append(max(abs(p["x"] - best[0]["x"]), abs(p["y"] - best[0]["y"])))
        loss = (p["x"] - 0.7) ** 2 + (p["y"] - 0.2) ** 2
        tuner.receive_trial_result(i, p, loss)
        if best is None or loss < best[1]:
            best = (p, loss)
    return dists


def test_local_search_samples_the_incumbents_kernel_narrowed():
    """A local proposal's candidates all come from one observation's kernel, with its
    bandwidth times the given factor; categorical values keep the observation's option
    (up to the kernel's even spread)."""
    dims = flatten({"x": U01, "c": {"_type": "choice", "_value": ["a", "b", "c", "d"]}})
    X = np.array([[0.1, 0.0], [0.5, 1.0], [0.52, 2.0], [0.9, 3.0]])
    pe = JointParzen(dims, X, np.ones(4), 1.0)
    rng = np.random.default_rng(0)
    narrow = pe.sample(rng, 4000, only=2, scale=0.25)
    assert abs(np.median(narrow[:, 0]) - 0.52) < 0.01
    # the kernel's own bandwidth, a quarter of it (far from the bounds: barely truncated)
    assert abs(np.std(narrow[:, 0]) / (0.25 * pe.sig[2, 0]) - 1) < 0.1, (np.std(narrow[:, 0]), pe.sig[2, 0])
    assert (narrow[:, 1] == 2.0).mean() > 1 - CATEGORICAL_EPS


def test_local_search_proposes_around_the_incumbent(monkeypatch):
    """With every proposal local, TPE's proposals stay closer to the incumbent than plain TPE's
    (every proposal from the whole good mixture)."""
    local = [statistics.median(_distances_to_incumbent(1.0, s, monkeypatch)) for s in range(4)]
    plain = [statistics.median(_distances_to_incumbent(0.0, s, monkeypatch)) for s in range(4)]
    assert statistics.mean(local) < 0.8 * statistics.mean(plain), (local, plain)


def test_local_search_keeps_a_context_and_its_branch(monkeypatch):
    """On a nested space a local proposal stays valid: each branch's parameters come from that
    branch's own incumbent, inactive parameters stay absent, values stay in their bounds."""
    monkeypatch.setattr(tpe_tuner, "LOCAL_SEARCH_SHARE", 1.0)
    tuner = TpeTuner(seed=1, tpe_args={"n_startup_jobs": 10})
    for p, _ in drive(tuner, NESTED_SPACE, nested_loss, 60):
        assert 1e-4 <= p["lr"] <= 1.0
        m = p["model"]
        if m == "plain":
            continue
        assert 0.0 <= m["x"] <= 1.0
        if m["_name"] == "a":
            assert set(m) == {"_name", "x", "k"} and 0 <= m["k"] < 5
        else:
            k = m["kind"]
            assert set(k) == ({"_name", "depth"} if k["_name"] == "deep" else {"_name", "width"})


MIXED_FLAT_SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1.0]},
    "units": {"_type": "quniform", "_value": [8, 64, 8]},
    "x": U01,
    "z": {"_type": "normal", "_value": [0.0, 1.0]},
    "k": {"_type": "randint", "_value": [0, 5]},
    "c": {"_type": "choice", "_value": ["a", "b", "c"]},
}


def _per_dim(pe: JointParzen) -> JointParzen:
    """The same estimator with the all-at-once path of bounded dims switched off."""
    pe._flat = np.zeros(0, dtype=int)
    pe._flat_dims = set()
    return pe


def test_bounded_dims_at_once_score_and_sample_as_one_by_one():
    """Bounded continuous dims are scored and sampled all at once (the fast path of a flat
    space); the densities equal the one-dim-at-a-time computation and the samples follow the
    same distribution, canonical (on the q grid, inside the bounds)."""
    dims = flatten(MIXED_FLAT_SPACE)
    rng = np.random.default_rng(3)
    X = _random_rows(dims, rng, 40)
    fast, slow = JointParzen(dims, X, np.ones(40), 1.0), _per_dim(JointParzen(dims, X, np.ones(40), 1.0))
    assert len(fast._flat) == 3       # lr, units, x
    C = _random_rows(dims, rng, 200)
    np.testing.assert_allclose(fast.log_pdf(C), slow.log_pdf(C), rtol=1e-10, atol=1e-10)
    for only, scale in ((None, 1.0), (7, 0.25)):
        a = fast.sample(np.random.default_rng(5), 20000, only=only, scale=scale)
        b = slow.sample(np.random.default_rng(6), 20000, only=only, scale=scale)
        for dim in dims:
            j = dim.index
            assert abs(a[:, j].mean() - b[:, j].mean()) < 0.05 * (a[:, j].std() + 1e-9) + 1e-6, dim.name
            sa, sb = a[:, j].std(), b[:, j].std()
            assert abs(sa - sb) <= 0.05 * max(sa, sb) + 1e-9, dim.name
        units = [d for d in dims if d.name == "units"][0]
        values = np.exp(a[:, units.index]) if units.log else a[:, units.index]
        assert np.allclose(values / 8, np.round(values / 8)) and values.min() >= 8 and values.max() <= 64


def _random_rows(dims, rng, n):
    from nni.algorithms.hpo._base import random_vector
    return np.array([random_vector(dims, rng) for _ in range(n)])
