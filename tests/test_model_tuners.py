"""Model-based tuners: TPE, GP, Metis, SMAC (real tuners driven through the Tuner API)."""

from __future__ import annotations

import importlib.util
import math
import statistics
import subprocess
import sys

import numpy as np
import pytest

from nni.algorithms.hpo.gp_tuner import GPTuner
from nni.algorithms.hpo.metis_tuner import MetisTuner
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from nni.algorithms.registry import create_algorithm

HAS_SMAC = importlib.util.find_spec("smac") is not None
needs_smac = pytest.mark.skipif(not HAS_SMAC, reason='smac is not installed (pip install "nni-ng[smac]")')

NUMERIC_SPACE = {
    "u": {"_type": "uniform", "_value": [-1.5, 2.5]},
    "qu": {"_type": "quniform", "_value": [1, 10, 3]},
    "lu": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "qlu": {"_type": "qloguniform", "_value": [1, 100, 5]},
    "ri": {"_type": "randint", "_value": [2, 7]},
    "c": {"_type": "choice", "_value": [1, 2.5, 10, -3]},
}
BRANIN_SPACE = {"x1": {"_type": "uniform", "_value": [-5, 10]}, "x2": {"_type": "uniform", "_value": [0, 15]}}


def branin(p: dict) -> float:
    x1, x2 = p["x1"], p["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def numeric_loss(p: dict) -> float:
    return (p["u"] - 0.7) ** 2 + abs(p["qu"] - 7) + math.log10(p["lu"]) ** 2 / 10 + p["ri"] + p["c"] / 10


def make(kind: str, seed: int | None = 0, mode: str = "minimize", **kw):
    if kind == "tpe":
        return TpeTuner(optimize_mode=mode, seed=seed, tpe_args=kw.pop("tpe_args", {"n_startup_jobs": 10}), **kw)
    if kind == "gp":
        return GPTuner(optimize_mode=mode, seed=seed, selection_num_warm_up=kw.pop("warm_up", 5000), **kw)
    if kind == "metis":
        return MetisTuner(optimize_mode=mode, seed=seed, selection_num_starting_points=100, **kw)
    if kind == "smac":
        from nni.algorithms.hpo.smac_tuner import SMACTuner
        return SMACTuner(optimize_mode=mode, seed=seed, **kw)
    if kind == "dngo":
        from nni.algorithms.hpo.dngo_tuner import DNGOTuner
        return DNGOTuner(optimize_mode=mode, seed=seed, trials_per_update=10, num_epochs_per_training=200, **kw)
    if kind == "random":
        return RandomTuner(seed=seed)
    raise AssertionError(kind)


MODEL_KINDS = ["tpe", "gp", "metis", pytest.param("smac", marks=needs_smac)]


def drive(tuner, space: dict, fn, n: int) -> list[dict]:
    tuner.update_search_space(space)
    out = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        out.append(p)
        tuner.receive_trial_result(i, p, fn(p))
    return out


# ---- search-space handling ------------------------------------------------------------------

@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_bounds_q_steps_and_choice_values(kind):
    params = drive(make(kind), NUMERIC_SPACE, numeric_loss, 18)   # past every cold start
    for p in params:
        assert -1.5 <= p["u"] <= 2.5
        assert p["qu"] in (1, 3, 6, 9, 10)            # clip(round(x / 3) * 3, 1, 10)
        assert 1e-4 <= p["lu"] <= 1e-1
        assert 1 <= p["qlu"] <= 100 and (p["qlu"] % 5 == 0 or p["qlu"] in (1, 100))
        assert isinstance(p["ri"], int) and 2 <= p["ri"] <= 6
        assert p["c"] in (1, 2.5, 10, -3) and type(p["c"]) is type(NUMERIC_SPACE["c"]["_value"][
            NUMERIC_SPACE["c"]["_value"].index(p["c"])])


@pytest.mark.parametrize("kind", ["gp", "metis"])
def test_gp_family_refuses_what_it_cannot_model(kind):
    tuner = make(kind)
    with pytest.raises(ValueError, match=r"nested.*'model/a/x'"):
        tuner.update_search_space({"model": {"_type": "choice", "_value": [
            {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}}, {"_name": "b"}]}})
    with pytest.raises(ValueError, match=r"numeric choice values.*'act'.*'relu'"):
        tuner.update_search_space({"act": {"_type": "choice", "_value": ["relu", "tanh"]}})
    with pytest.raises(ValueError, match=r"'normal'.*'n'.*supported types"):
        tuner.update_search_space({"n": {"_type": "normal", "_value": [0, 1]}})
    with pytest.raises(ValueError, match=r"numeric choice values.*'mixed'.*'x'"):
        tuner.update_search_space({"mixed": {"_type": "choice", "_value": [True, "x"]}})


@pytest.mark.parametrize("kind", [*MODEL_KINDS, "dngo"])
def test_a_bool_choice_is_tuned_and_comes_back_as_bool(kind):
    # Bayesmark's Ridge has fit_intercept: [False, True]; NNI's GP takes bools as 0 and 1.
    space = {"flag": {"_type": "choice", "_value": [False, True]}, "x": {"_type": "uniform", "_value": [0, 1]}}
    params = drive(make(kind, seed=3), space, lambda p: (p["x"] - 0.3) ** 2 + (0.0 if p["flag"] else 1.0), 30)
    assert all(type(p["flag"]) is bool for p in params)
    assert {p["flag"] for p in params} == {False, True}
    # past the cold start (SMAC's is 20 trials) the model has seen that True is better
    assert sum(p["flag"] for p in params[-10:]) >= 7


def test_gp_and_metis_arguments_are_validated():
    with pytest.raises(ValueError, match="utility must be one of 'ei', 'ucb', 'poi'"):
        GPTuner(utility="foo")
    with pytest.raises(ValueError, match="nu must be one of 0.5, 1.5, 2.5 or inf"):
        GPTuner(nu=2)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        GPTuner(alpha=0)
    with pytest.raises(ValueError, match="cold_start_num must be an int >= 0"):
        GPTuner(cold_start_num=-1)
    with pytest.raises(ValueError, match="optimize_mode must be 'minimize' or 'maximize'"):
        GPTuner(optimize_mode="max")
    with pytest.raises(ValueError, match=r"exploration_probability must be in \[0, 1\]"):
        MetisTuner(exploration_probability=1.5)
    with pytest.raises(ValueError, match="no_resampling must be true or false"):
        MetisTuner(no_resampling="yes")
    # registry names reach the classes, with NNI's defaults (maximize)
    gp = create_algorithm("tuner", name="GP", class_args={"utility": "ucb", "kappa": 2})
    assert type(gp) is GPTuner and gp.optimize_mode.value == "maximize" and gp.kappa == 2
    assert type(create_algorithm("tuner", name="Metis")) is MetisTuner


# ---- seeds, optimize mode, import_data --------------------------------------------------------

@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_same_proposals(kind):
    a = drive(make(kind, seed=7), NUMERIC_SPACE, numeric_loss, 14)
    b = drive(make(kind, seed=7), NUMERIC_SPACE, numeric_loss, 14)
    c = drive(make(kind, seed=8), NUMERIC_SPACE, numeric_loss, 14)
    assert a == b
    assert a != c


@pytest.mark.parametrize("kind", ["gp", "tpe", pytest.param("smac", marks=needs_smac)])
def test_maximize_mode_climbs(kind):
    """The same problem maximized (negated metric) must find the same good region."""
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    params = drive(make(kind, mode="maximize"), space, lambda p: -(p["x"] - 0.3) ** 2, 25 if kind == "smac" else 40)
    best = max(params, key=lambda p: -(p["x"] - 0.3) ** 2)
    assert abs(best["x"] - 0.3) < 0.03
    late = [p["x"] for p in params[-10:]]
    assert statistics.median(abs(x - 0.3) for x in late) < 0.2


def _rows(fn, n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = {"x": float(rng.uniform(0, 1))}
        out.append({"parameter": p, "value": fn(p)})
    return out


@pytest.mark.parametrize("kind", ["gp", "metis", "tpe", pytest.param("smac", marks=needs_smac)])
def test_import_data_is_used(kind):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    fn = lambda p: (p["x"] - 0.3) ** 2   # noqa: E731
    extra = {"utility": "ucb", "kappa": 0.0} if kind == "gp" else {}
    tuner = make(kind, seed=3, **extra)
    tuner.update_search_space(space)
    tuner.import_data(_rows(fn, 30) + [{"parameter": {"x": 7.0}, "value": 0.0}, {"bad": 1}])
    assert len(tuner._y) == 30                 # the row outside the space and the malformed one skipped
    xs = []
    for i in range(6):                         # past every cold start thanks to the imported rows
        p = tuner.generate_parameters(i)
        tuner.receive_trial_result(i, p, fn(p))
        xs.append(p["x"])
    assert min(abs(x - 0.3) for x in xs) < 0.05, xs
    if kind == "smac":
        assert len(tuner._smac.runhistory) == 36   # imported rows reached SMAC's run history


def test_metis_resamples_an_outlier():
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    fn = lambda p: (p["x"] - 0.5) ** 2   # noqa: E731
    rows = [{"parameter": {"x": x}, "value": fn({"x": x})} for x in np.linspace(0, 1, 21).tolist()]
    rows.append({"parameter": {"x": 0.27}, "value": -0.5})   # far better than its neighbours: noise?
    tuner = MetisTuner(optimize_mode="minimize", no_resampling=False, seed=0, selection_num_starting_points=50)
    tuner.update_search_space(space)
    tuner.import_data(rows)
    first = tuner.generate_parameters(0)
    assert first == {"x": 0.27}                # measured again
    tuner.receive_trial_result(0, first, fn(first))
    assert tuner.generate_parameters(1) != {"x": 0.27}   # only once
    plain = MetisTuner(optimize_mode="minimize", seed=0, selection_num_starting_points=50)   # no_resampling
    plain.update_search_space(space)
    plain.import_data(rows)
    assert plain.generate_parameters(0) != {"x": 0.27}


# ---- TPE arguments and the constant liar ------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ({"n_startup": 5}, r"unknown key\(s\) 'n_startup'; valid keys: constant_liar_type"),
    ({"constant_liar_type": "min"}, r"constant_liar_type'\] must be 'best', 'worst', 'mean' or None"),
    ({"n_ei_candidates": 0}, r"n_ei_candidates'\] must be a positive int"),
    ({"n_startup_jobs": -1}, r"n_startup_jobs'\] must be a non-negative int"),
    ({"linear_forgetting": 2.5}, r"linear_forgetting'\] must be a non-negative int"),
    ({"prior_weight": 0}, r"prior_weight'\] must be a positive number"),
    ({"gamma": 1.0}, r"gamma'\] must be a number in \(0, 1\)"),
    ({"multivariate": "yes"}, r"multivariate'\] must be true or false"),
])
def test_tpe_args_validation(args, message):
    with pytest.raises(ValueError, match=message):
        TpeTuner(tpe_args=args)
    with pytest.raises(ValueError, match="tpe_args must be a dict"):
        TpeTuner(tpe_args=[1])


def test_tpe_args_accepted_and_applied():
    t = TpeTuner(tpe_args={"constant_liar_type": None, "n_startup_jobs": 3, "n_ei_candidates": 50,
                           "linear_forgetting": 10, "prior_weight": 0.5, "gamma": 0.1})
    assert (t.args.constant_liar_type, t.args.n_startup_jobs, t.args.n_ei_candidates) == (None, 3, 50)
    assert (t.args.linear_forgetting, t.args.prior_weight, t.args.gamma) == (10, 0.5, 0.1)
    assert TpeTuner().args.constant_liar_type == "worst" and TpeTuner().n_startup_jobs == 20


@pytest.mark.parametrize("kind, liar", [("tpe", "best"), ("tpe", "worst"), ("tpe", "mean"), ("gp", None)])
def test_constant_liar_spreads_pending_proposals(kind, liar):
    """Four proposals with no result in between: the liar imputes the pending ones so they differ."""
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}
    fn = lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2   # noqa: E731
    extra = {"tpe_args": {"n_startup_jobs": 10, "constant_liar_type": liar}} if kind == "tpe" else {}
    tuner = make(kind, seed=0, **extra)
    drive(tuner, space, fn, 25)
    pending = [tuner.generate_parameters(100 + i) for i in range(4)]
    X, y, n_done = tuner._observations(liar or "best")
    assert n_done == 25 and len(y) == 29            # the 4 pending rows are imputed
    pts = np.array([[p["x"], p["y"]] for p in pending])
    dists = [np.linalg.norm(pts[i] - pts[j]) for i in range(4) for j in range(i + 1, 4)]
    assert min(dists) > (1e-3 if kind == "tpe" else 1e-6), pending


# ---- SMAC specifics ---------------------------------------------------------------------------

@needs_smac
def test_smac_nested_space_and_config_dedup():
    from nni.algorithms.hpo.smac_tuner import SMACTuner
    space = {"model": {"_type": "choice", "_value": [
        {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}},
        {"_name": "b", "k": {"_type": "randint", "_value": [0, 3]}}]},
        "c": {"_type": "choice", "_value": ["relu", "tanh"]}}
    tuner = SMACTuner(optimize_mode="minimize", config_dedup=True, seed=1)
    fn = lambda p: (p["model"].get("x", 0.5) if p["model"]["_name"] == "a" else p["model"]["k"]) \
        + (p["c"] == "tanh")   # noqa: E731
    params = drive(tuner, space, fn, 24)
    keys = [str(sorted(p.items())) for p in params]
    assert len(set(keys)) == len(keys)
    for p in params:
        assert set(p) == {"model", "c"} and p["c"] in ("relu", "tanh")
        if p["model"]["_name"] == "a":
            assert set(p["model"]) == {"_name", "x"} and 0 <= p["model"]["x"] <= 1
        else:
            assert set(p["model"]) == {"_name", "k"} and p["model"]["k"] in (0, 1, 2)


@needs_smac
def test_smac_goes_on_over_a_small_finite_space_in_batches():
    """SMAC's own trial generator ends (``StopIteration`` from its ``ask``) on a small finite
    space before every set was tried (here after ~25 of 30, asked 8 at a time): the tuner goes
    on with the sets not tried yet, then repeats, instead of failing the experiment's tuner."""
    from nni.algorithms.hpo.smac_tuner import SMACTuner
    space = {"a": {"_type": "randint", "_value": [1, 11]}, "p": {"_type": "choice", "_value": [1, 2, 3]}}
    tuner = SMACTuner(optimize_mode="minimize", seed=0)
    tuner.update_search_space(space)
    proposed = []
    for round_ in range(5):
        batch = [(8 * round_ + i, tuner.generate_parameters(8 * round_ + i)) for i in range(8)]
        for pid, params in batch:
            tuner.receive_trial_result(pid, params, (params["a"] - 7) ** 2 + params["p"])
            tuner.trial_end(pid, True)
        proposed += [(params["a"], params["p"]) for _, params in batch]
    assert len(proposed) == 40
    assert sorted(set(proposed[:30])) == [(a, p) for a in range(1, 11) for p in (1, 2, 3)]


def test_smac_module_imports_without_smac():
    code = ("import sys; sys.modules['smac'] = None; sys.modules['ConfigSpace'] = None\n"
            "import nni.algorithms.hpo.smac_tuner as m\n"
            "try:\n    m.SMACTuner()\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert 'ERR SMACTuner needs the "smac" package' in out.stdout and 'pip install "nni-ng[smac]"' in out.stdout


# ---- quality: each model tuner beats random search on Branin --------------------------------------

@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_beats_random_on_branin(kind):
    def best(k: str, seed: int) -> float:
        return min(branin(p) for p in drive(make(k, seed=seed), BRANIN_SPACE, branin, 60))
    ours = statistics.median(best(kind, s) for s in range(3))
    rand = statistics.median(best("random", s) for s in range(3))
    assert ours < rand, (ours, rand)
    assert ours < 0.8    # the optimum is 0.3979
