"""Built-in tuners, the Medianstop assessor and the algorithm registry (real runs, no mocks)."""

from __future__ import annotations

import itertools
import json
import math
import textwrap

import numpy as np
import pytest

from nni.algorithms.hpo.gridsearch_tuner import GridSearchTuner
from nni.algorithms.hpo.hyperopt_tuner import HyperoptTuner
from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from nni.algorithms.registry import AlgorithmError, builtin_algorithms, create_algorithm
from nni.assessor import AssessResult, Assessor
from nni.errors import NoMoreTrialError
from nni.search_space import SearchSpaceError
from nni.tuner import Tuner
from nni.utils import OptimizeMode

FULL_SPACE = {
    "c": {"_type": "choice", "_value": ["relu", "tanh", 3, 0.5]},
    "ri": {"_type": "randint", "_value": [2, 7]},
    "big": {"_type": "randint", "_value": [0, 1_000_000]},
    "u": {"_type": "uniform", "_value": [-1.5, 2.5]},
    "qu": {"_type": "quniform", "_value": [1, 10, 3]},
    "lu": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "qlu": {"_type": "qloguniform", "_value": [1, 100, 5]},
    "n": {"_type": "normal", "_value": [10, 2]},
    "qn": {"_type": "qnormal", "_value": [0, 3, 0.5]},
    "ln": {"_type": "lognormal", "_value": [0, 1]},
    "qln": {"_type": "qlognormal", "_value": [1, 1, 2]},
    "model": {"_type": "choice", "_value": [
        {"_name": "svm", "C": {"_type": "loguniform", "_value": [0.01, 10]},
         "kernel": {"_type": "choice", "_value": [
             {"_name": "rbf", "gamma": {"_type": "uniform", "_value": [0, 1]}},
             {"_name": "linear"}]}},
        {"_name": "tree", "depth": {"_type": "randint", "_value": [1, 4]},
         "crit": {"_type": "quniform", "_value": [0, 1, 0.25]}},
        "none",
    ]},
}


def _is_multiple(v: float, q: float) -> bool:
    k = round(v / q)
    return abs(v - k * q) <= 1e-9 * max(1.0, abs(v))


def check_params(p: dict) -> None:
    """Every value is in bounds, on its q step, of the right Python type."""
    json.dumps(p)  # plain JSON-serializable
    assert set(p) == set(FULL_SPACE)
    assert p["c"] in ["relu", "tanh", 3, 0.5]
    assert type(p["ri"]) is int and 2 <= p["ri"] < 7
    assert type(p["big"]) is int and 0 <= p["big"] < 1_000_000
    for k in ("u", "qu", "lu", "qlu", "n", "qn", "ln", "qln"):
        assert type(p[k]) is float, (k, p[k])
    assert -1.5 <= p["u"] <= 2.5
    assert p["qu"] in (1.0, 3.0, 6.0, 9.0)
    assert 1e-4 <= p["lu"] <= 1e-1
    assert 1 <= p["qlu"] <= 100 and (_is_multiple(p["qlu"], 5) or p["qlu"] in (1.0, 100.0))
    assert _is_multiple(p["qn"], 0.5)
    assert p["ln"] > 0
    assert p["qln"] >= 0 and _is_multiple(p["qln"], 2)
    m = p["model"]
    if m == "none":
        return
    assert isinstance(m, dict) and m["_name"] in ("svm", "tree")
    if m["_name"] == "svm":
        assert set(m) == {"_name", "C", "kernel"}
        assert 0.01 <= m["C"] <= 10
        k = m["kernel"]
        assert k["_name"] in ("rbf", "linear")
        if k["_name"] == "rbf":
            assert set(k) == {"_name", "gamma"} and 0 <= k["gamma"] <= 1
        else:
            assert k == {"_name": "linear"}
    else:
        assert set(m) == {"_name", "depth", "crit"}
        assert type(m["depth"]) is int and 1 <= m["depth"] < 4
        assert m["crit"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def _objective(p: dict) -> float:
    return (p["u"] - 1) ** 2 + math.log(p["lu"]) ** 2 / 50 + (0 if p["c"] == "tanh" else 0.3)


TUNERS = {
    "random": lambda seed=None: RandomTuner(seed=seed),
    "tpe": lambda seed=None: TpeTuner(seed=seed, tpe_args={"n_startup_jobs": 5}),
    "tpe_liar_worst": lambda seed=None: TpeTuner(seed=seed, tpe_args={"n_startup_jobs": 3,
                                                                      "constant_liar_type": "worst"}),
    "anneal": lambda seed=None: HyperoptTuner("anneal", seed=seed),
    "hyperopt_tpe": lambda seed=None: HyperoptTuner("tpe", seed=seed, parallel_optimize=True),
    "hyperopt_random": lambda seed=None: HyperoptTuner("random_search", seed=seed),
}


def _run(tuner: Tuner, space: dict, n: int, objective=None, start: int = 0) -> list[dict]:
    tuner.update_search_space(space)
    out = []
    for i in range(start, start + n):
        p = tuner.generate_parameters(i)
        out.append(p)
        if objective is not None:
            tuner.receive_trial_result(i, p, objective(p))
            tuner.trial_end(i, True)
    return out


@pytest.mark.parametrize("name", list(TUNERS) + ["grid"])
def test_every_type_in_bounds(name):
    tuner = GridSearchTuner() if name == "grid" else TUNERS[name](seed=3)
    params = _run(tuner, FULL_SPACE, 60, _objective)
    for p in params:
        check_params(p)
    if name != "grid":  # every nested branch is reached
        names = {p["model"] if p["model"] == "none" else p["model"]["_name"] for p in params}
        assert names == {"svm", "tree", "none"}


@pytest.mark.parametrize("name", ["random", "tpe", "anneal", "hyperopt_tpe"])
def test_seed_reproducible_and_different(name):
    a = _run(TUNERS[name](seed=7), FULL_SPACE, 30, _objective)
    b = _run(TUNERS[name](seed=7), FULL_SPACE, 30, _objective)
    c = _run(TUNERS[name](seed=8), FULL_SPACE, 30, _objective)
    assert a == b
    assert a != c


FINITE_SPACE = {
    "act": {"_type": "choice", "_value": ["relu", "tanh"]},
    "k": {"_type": "randint", "_value": [0, 2]},
    "w": {"_type": "quniform", "_value": [0, 1, 0.5]},
    "opt": {"_type": "choice", "_value": [
        {"_name": "sgd", "mom": {"_type": "choice", "_value": [0.0, 0.9]}},
        {"_name": "adam"},
    ]},
}


def _finite_points() -> set[str]:
    opts = [{"_name": "sgd", "mom": 0.0}, {"_name": "sgd", "mom": 0.9}, {"_name": "adam"}]
    return {json.dumps({"act": a, "k": k, "w": w, "opt": o}, sort_keys=True)
            for a, k, w, o in itertools.product(["relu", "tanh"], [0, 1], [0.0, 0.5, 1.0], opts)}


def test_grid_enumerates_exact_product():
    tuner = GridSearchTuner()
    tuner.update_search_space(FINITE_SPACE)
    expected = _finite_points()
    got = []
    for i in range(len(expected)):
        got.append(json.dumps(tuner.generate_parameters(i), sort_keys=True))
    assert len(got) == len(set(got)) == 36
    assert set(got) == expected
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(999)
    assert tuner.generate_multiple_parameters([1000, 1001]) == []


def test_grid_continuous_progressive_and_unique():
    tuner = GridSearchTuner()
    space = {"x": {"_type": "uniform", "_value": [0, 8]}, "c": {"_type": "choice", "_value": ["a", "b"]},
             "lg": {"_type": "loguniform", "_value": [1, 100]}}
    params = _run(tuner, space, 60)
    assert params[0] == {"x": 4.0, "c": "a", "lg": pytest.approx(10.0)}
    assert params[1]["x"] == 4.0 and params[1]["c"] == "b"
    keys = [json.dumps(p, sort_keys=True) for p in params]
    assert len(set(keys)) == len(keys)
    # the first round (2 points) is the middle, the next uses quarters and stays in the middle
    assert {p["x"] for p in params[:2]} == {4.0}
    assert {p["x"] for p in params[2:18]} == {2.0, 4.0, 6.0}
    assert {p["x"] for p in params[18:60]} <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}


def test_grid_normal_uses_distribution():
    tuner = GridSearchTuner()
    params = _run(tuner, {"n": {"_type": "normal", "_value": [5, 2]}}, 7)
    xs = [p["n"] for p in params]
    assert xs[0] == 5.0
    assert len(set(xs)) == 7
    assert xs[1] == pytest.approx(5 - 2 * 0.6744897, abs=1e-4)


@pytest.mark.parametrize("name", ["random", "tpe", "anneal", "hyperopt_tpe", "tpe_liar_worst"])
@pytest.mark.parametrize("report", [True, False])
def test_finite_space_no_duplicates_then_exhausted(name, report):
    tuner = TUNERS[name](seed=1)
    objective = (lambda p: p["w"] + (p["act"] == "relu")) if report else None
    params = _run(tuner, FINITE_SPACE, 36, objective)
    keys = [json.dumps(p, sort_keys=True) for p in params]
    assert len(set(keys)) == 36
    assert set(keys) == _finite_points()
    if name == "anneal":   # NNI's Anneal goes on proposing (repeats) once the space is used up
        assert json.dumps(tuner.generate_parameters(100), sort_keys=True) in _finite_points()
        return
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(100)


def test_import_data_counts_as_used_in_finite_space():
    tuner = RandomTuner(seed=0)
    tuner.update_search_space({"a": {"_type": "choice", "_value": [1, 2, 3]}})
    tuner.import_data([{"parameter": {"a": 1}, "value": 0.1}, {"parameter": {"a": 2}, "value": 0.2}])
    assert tuner.generate_parameters(0) == {"a": 3}
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(1)


def test_import_data_steers_tpe():
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}
    rng = np.random.default_rng(0)
    data = []
    for _ in range(60):
        x, y = float(rng.uniform()), float(rng.uniform())
        data.append({"parameter": {"x": x, "y": y}, "value": abs(x - 0.3) + abs(y - 0.3)})
    tuner = TpeTuner(seed=0)
    tuner.update_search_space(space)
    tuner.import_data(data)
    xs = [tuner.generate_parameters(i)["x"] for i in range(20)]
    assert abs(float(np.median(xs)) - 0.3) < 0.12
    assert np.mean([abs(x - 0.3) < 0.2 for x in xs]) >= 0.6
    # without data the same tuner samples the prior: far less concentrated
    fresh = TpeTuner(seed=0)
    fresh.update_search_space(space)
    ys = [fresh.generate_parameters(i)["x"] for i in range(20)]
    assert np.mean([abs(x - 0.3) < 0.2 for x in ys]) < np.mean([abs(x - 0.3) < 0.2 for x in xs])


def test_import_data_skips_misfits(caplog):
    tuner = TpeTuner(seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]},
                               "c": {"_type": "choice", "_value": ["a", "b"]}})
    caplog.set_level("INFO")
    tuner.import_data([
        {"parameter": {"x": 0.5, "c": "a"}, "value": 1.0},
        {"parameter": {"x": 1.5, "c": "a"}, "value": 1.0},          # out of bounds
        {"parameter": {"x": 0.5, "c": "zzz"}, "value": 1.0},        # not a choice
        {"parameter": {"c": "a"}, "value": 1.0},                    # missing
        {"parameter": {"x": 0.2, "c": "b"}, "value": {"default": 0.3, "other": 1}},
        {"parameter": {"x": 0.2, "c": "b"}, "value": "not a metric"},
        {"value": 1.0},
    ])
    assert len(tuner._history) == 2
    assert "outside" in caplog.text and "not one of the choices" in caplog.text and "missing" in caplog.text


def _sphere(p: dict) -> float:
    return sum((p[f"x{i}"] - 0.7) ** 2 for i in range(4))


SPHERE = {f"x{i}": {"_type": "uniform", "_value": [-5, 5]} for i in range(4)}


def _best(tuner: Tuner, n: int = 60) -> float:
    return min(_sphere(p) for p in _run(tuner, SPHERE, n, _sphere))


def test_tpe_beats_random():
    tpe = [_best(TpeTuner(seed=s)) for s in range(5)]
    rnd = [_best(RandomTuner(seed=s)) for s in range(5)]
    assert np.median(tpe) < 0.6 * np.median(rnd), (tpe, rnd)


def test_anneal_beats_random():
    ann = [_best(HyperoptTuner("anneal", seed=s)) for s in range(5)]
    rnd = [_best(RandomTuner(seed=s)) for s in range(5)]
    assert np.median(ann) < np.median(rnd), (ann, rnd)


@pytest.mark.parametrize("factory", [lambda m: TpeTuner(optimize_mode=m, seed=0, tpe_args={"n_startup_jobs": 10}),
                                     lambda m: HyperoptTuner("anneal", optimize_mode=m, seed=0)])
def test_optimize_mode_honoured(factory):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    late = {}
    for mode in ("minimize", "maximize", OptimizeMode.Maximize):
        params = _run(factory(mode), space, 50, lambda p: p["x"])
        late[mode] = float(np.median([p["x"] for p in params[-20:]]))
    assert late["minimize"] < 0.3
    assert late["maximize"] > 0.7
    assert late[OptimizeMode.Maximize] == late["maximize"]


@pytest.mark.parametrize("name", ["tpe", "anneal", "random"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), {"default": float("nan")}])
def test_non_finite_metrics_do_not_crash(name, bad):
    tuner = TUNERS[name](seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    for i in range(15):
        p = tuner.generate_parameters(i)
        tuner.receive_trial_result(i, p, bad if i % 2 else p["x"])
        assert 0 <= p["x"] <= 1


def test_non_finite_counts_as_worst_for_tpe():
    # losses are NaN for x > 0.5: TPE must not think that half is good
    tuner = TpeTuner(seed=1, tpe_args={"n_startup_jobs": 10})
    objective = lambda p: float("nan") if p["x"] > 0.5 else 1 - p["x"]  # noqa: E731
    params = _run(tuner, {"x": {"_type": "uniform", "_value": [0, 1]}}, 50, objective)
    late = [p["x"] for p in params[-20:]]
    assert np.median(late) < 0.55


@pytest.mark.parametrize("liar,expect_rows", [("best", 28), ("worst", 28), ("mean", 28), (None, 20)])
def test_constant_liar_imputes_pending(liar, expect_rows):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    tuner = TpeTuner(seed=0, tpe_args={"n_startup_jobs": 5, "constant_liar_type": liar})
    _run(tuner, space, 20, lambda p: abs(p["x"] - 0.5))
    batch = [tuner.generate_parameters(100 + i)["x"] for i in range(8)]
    assert len(set(batch)) == 8
    X, y, n_done = tuner._observations(tuner.args.constant_liar_type)
    assert n_done == 20 and len(X) == len(y) == expect_rows
    if liar == "worst":
        assert np.all(y[20:] == y[:20].max())
    if liar == "best":
        assert np.all(y[20:] == y[:20].min())


def test_trial_end_failure_drops_pending():
    tuner = TpeTuner(seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    tuner.generate_parameters(1)
    assert 1 in tuner._pending
    tuner.trial_end(1, False)
    assert 1 not in tuner._pending


def test_receive_customized_result_and_unknown_id():
    tuner = TpeTuner(seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    tuner.receive_trial_result(42, {"x": 0.25}, 1.0)             # id never generated: encoded from params
    tuner.receive_trial_result(43, {"x": 7.0}, 1.0)              # does not fit: ignored
    tuner.receive_customized_trial_result(44, {"x": 0.75}, {"default": 2.0})
    assert [loss for _, loss in tuner._history] == [1.0, 2.0]


def test_update_search_space_validates_and_order():
    tuner = TpeTuner()
    with pytest.raises(RuntimeError, match="update_search_space"):
        tuner.generate_parameters(0)
    with pytest.raises(SearchSpaceError, match="'x'"):
        tuner.update_search_space({"x": {"_type": "uniform", "_value": [1, 0]}})


def test_search_space_change_keeps_fitting_history():
    tuner = TpeTuner(seed=0)
    _run(tuner, {"x": {"_type": "uniform", "_value": [0, 1]}}, 10, lambda p: p["x"])
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 0.5]}})
    assert all(p["x"] <= 0.5 for p, _ in tuner._history)
    assert 0 <= tuner.generate_parameters(50)["x"] <= 0.5


@pytest.mark.parametrize("make", [
    lambda: TpeTuner(optimize_mode="maxmize"),
    lambda: TpeTuner(tpe_args={"gama": 0.2}),
    lambda: TpeTuner(tpe_args={"gamma": 2}),
    lambda: TpeTuner(tpe_args={"constant_liar_type": "median"}),
    lambda: RandomTuner(seed="x"),
    lambda: HyperoptTuner("bayes"),
    lambda: HyperoptTuner("tpe", constant_liar_type="best"),
    lambda: MedianstopAssessor(start_step=-1),
])
def test_bad_constructor_args(make):
    with pytest.raises(ValueError):
        make()


# ---- Medianstop -----------------------------------------------------------------------------

def test_medianstop_stops_bad_keeps_good():
    a = MedianstopAssessor(optimize_mode="maximize")
    for t, curve in enumerate([[0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.7], [0.45, 0.55, 0.65, 0.75]]):
        for step in range(1, len(curve) + 1):
            a.assess_trial(f"done{t}", curve[:step])
        a.trial_end(f"done{t}", True)
    bad = [0.1, 0.12, 0.13]
    good = [0.5, 0.7, 0.9]
    assert a.assess_trial("bad", bad[:1]) is AssessResult.Bad
    assert a.assess_trial("good", good) is AssessResult.Good
    # beyond the steps completed trials reached there is nothing to compare with
    assert a.assess_trial("long", [0.0] * 6) is AssessResult.Good


def test_medianstop_minimize_start_step_and_failed_trials():
    a = MedianstopAssessor(optimize_mode="minimize", start_step=3)
    a.assess_trial("ok", [1.0, 0.8, 0.6])
    a.trial_end("ok", True)
    a.assess_trial("crashed", [0.01, 0.01, 0.01])
    a.trial_end("crashed", False)          # failed trials do not count
    assert a.assess_trial("t", [5.0, 5.0]) is AssessResult.Good          # before start_step
    assert a.assess_trial("t", [5.0, 5.0, 5.0]) is AssessResult.Bad       # 5 > median avg 0.8
    assert a.assess_trial("u", [0.5, 0.9, 0.9]) is AssessResult.Good      # best 0.5 < 0.8
    assert a.assess_trial("v", [{"default": 0.7}, {"default": 0.75}, {"default": 0.79}]) is AssessResult.Good


def test_medianstop_without_completed_trials_keeps_everything():
    a = MedianstopAssessor()
    assert isinstance(a, Assessor)
    assert a.assess_trial("x", [0.0, 0.0]) is AssessResult.Good


# ---- registry --------------------------------------------------------------------------------

def test_builtin_names():
    tuners = builtin_algorithms("tuner")
    # NNI's config names (and the aliases NNI accepted) at NNI's class paths
    assert {"TPE", "Random", "Anneal", "TPE_legacy", "GridSearch", "Evolution", "BatchTuner", "Hyperband",
            "BOHB", "GPTuner", "MetisTuner", "SMAC", "PBTTuner", "RegularizedEvolutionTuner"} <= set(tuners)
    assert tuners["TPE"] == "nni.algorithms.hpo.tpe_tuner.TpeTuner"
    assert tuners["BOHB"] == "nni.algorithms.hpo.bohb_advisor.BOHB"
    assessors = builtin_algorithms("assessor")
    assert assessors["Medianstop"] == "nni.algorithms.hpo.medianstop_assessor.MedianstopAssessor"
    assert assessors["Curvefitting"] == "nni.algorithms.hpo.curvefitting_assessor.CurvefittingAssessor"
    with pytest.raises(AlgorithmError):
        builtin_algorithms("advisor")


@pytest.mark.parametrize("name,cls", [("TPE", TpeTuner), ("tpe", TpeTuner), ("random", RandomTuner),
                                      ("RANDOM", RandomTuner), ("Anneal", HyperoptTuner),
                                      ("tpe_legacy", HyperoptTuner), ("gridsearch", GridSearchTuner)])
def test_create_builtin_tuner_case_insensitive(name, cls):
    tuner = create_algorithm("tuner", name=name)
    assert type(tuner) is cls
    if name.lower() == "anneal":
        assert tuner.algorithm_name == "anneal"
    if name.lower() == "tpe_legacy":
        assert tuner.algorithm_name == "tpe"


def test_create_builtin_with_args():
    tuner = create_algorithm("tuner", name="TPE", class_args={"optimize_mode": "maximize", "seed": 3})
    assert tuner.optimize_mode is OptimizeMode.Maximize and tuner.seed == 3
    assessor = create_algorithm("assessor", name="medianstop", class_args={"start_step": 2})
    assert isinstance(assessor, MedianstopAssessor) and assessor.start_step == 2


def test_builtin_bad_class_args():
    with pytest.raises(AlgorithmError, match="optimize_mode.*'minimize' or 'maximize'.*maxmize"):
        create_algorithm("tuner", name="TPE", class_args={"optimize_mode": "maxmize"})
    with pytest.raises(AlgorithmError, match="optimise_mode.*signature: TpeTuner\\(optimize_mode"):
        create_algorithm("tuner", name="TPE", class_args={"optimise_mode": "maximize"})
    with pytest.raises(AlgorithmError, match="algorithm_name.*cannot be set"):
        create_algorithm("tuner", name="Anneal", class_args={"algorithm_name": "tpe"})


@pytest.mark.parametrize("name", ["DNGOTuner", "dngo", "DNGO"])
def test_dngo_is_built_in_under_nni_names(name):
    from nni.algorithms.hpo.dngo_tuner import DNGOTuner
    tuner = create_algorithm("tuner", name=name, class_args={"optimize_mode": "minimize", "sample_size": 200})
    assert isinstance(tuner, DNGOTuner) and tuner.sample_size == 200


def test_dngo_model_beats_random_on_a_smooth_function():
    """After its first training DNGO concentrates near the optimum of a 2-d bowl."""
    from nni.algorithms.hpo.dngo_tuner import DNGOTuner
    space = {"x": {"_type": "uniform", "_value": [-5, 5]}, "y": {"_type": "quniform", "_value": [-5, 5, 0.5]}}
    tuner = DNGOTuner(optimize_mode="minimize", trials_per_update=10, num_epochs_per_training=200, seed=1)
    tuner.update_search_space(space)
    losses = []
    for i in range(40):
        p = tuner.generate_parameters(i)
        assert -5 <= p["x"] <= 5 and (p["y"] / 0.5) == round(p["y"] / 0.5)
        loss = (p["x"] - 1) ** 2 + (p["y"] + 2) ** 2
        losses.append(loss)
        tuner.receive_trial_result(i, p, loss)
    assert tuner._model is not None
    assert np.median(losses[20:]) < np.median(losses[:10]) / 2
    with pytest.raises(ValueError, match="DNGOTuner does not support 'normal'"):
        DNGOTuner().update_search_space({"a": {"_type": "normal", "_value": [0, 1]}})


@pytest.mark.parametrize("name", ["PPOTuner", "NetworkMorphism", "ppo"])
def test_nas_tuners(name):
    with pytest.raises(AlgorithmError, match="NAS tuner.*out of scope"):
        create_algorithm("tuner", name=name)


def test_unknown_name_did_you_mean():
    with pytest.raises(AlgorithmError, match="unknown built-in tuner 'TPF'.*Did you mean 'TPE'.*Available"):
        create_algorithm("tuner", name="TPF")
    with pytest.raises(AlgorithmError, match="unknown built-in assessor 'xyzzy'.*Available built-in assessors: "
                                             "Medianstop"):
        create_algorithm("assessor", name="xyzzy")
    with pytest.raises(AlgorithmError, match="built-in assessor, not a tuner"):
        create_algorithm("tuner", name="Medianstop")


def test_bad_kind_and_name_class_combination():
    with pytest.raises(AlgorithmError, match="'tuner' or 'assessor'"):
        create_algorithm("advisor", name="TPE")
    with pytest.raises(AlgorithmError, match="exactly one"):
        create_algorithm("tuner")
    with pytest.raises(AlgorithmError, match="exactly one"):
        create_algorithm("tuner", name="TPE", class_name="a.B")
    with pytest.raises(AlgorithmError, match="classArgs must be a mapping"):
        create_algorithm("tuner", name="TPE", class_args=[1])


CUSTOM = textwrap.dedent("""
    from nni.tuner import Tuner

    class MyTuner(Tuner):
        def __init__(self, alpha, beta=2):
            self.alpha, self.beta = alpha, beta
        def update_search_space(self, space):
            self.space = space
        def generate_parameters(self, pid, **kw):
            return {"x": self.alpha}
        def receive_trial_result(self, *a, **kw):
            pass

    not_a_class = 3
""")


@pytest.fixture
def code_dir(tmp_path):
    (tmp_path / "my_tuner_mod_x1.py").write_text(CUSTOM)
    pkg = tmp_path / "mypkg_x1"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "algo.py").write_text(CUSTOM)
    (tmp_path / "broken_mod_x1.py").write_text("raise RuntimeError('boom at import')\n")
    return tmp_path


def test_custom_tuner_from_code_directory(code_dir):
    tuner = create_algorithm("tuner", class_name="my_tuner_mod_x1.MyTuner", code_directory=str(code_dir),
                             class_args={"alpha": 5})
    assert isinstance(tuner, Tuner) and tuner.alpha == 5 and tuner.beta == 2
    tuner2 = create_algorithm("tuner", class_name="mypkg_x1.algo.MyTuner", code_directory=code_dir,
                              class_args={"alpha": 1, "beta": 3})
    assert tuner2.beta == 3
    builtin = create_algorithm("tuner", class_name="nni.algorithms.hpo.random_tuner.RandomTuner")
    assert isinstance(builtin, RandomTuner)


def test_custom_tuner_errors(code_dir):
    with pytest.raises(AlgorithmError, match="not found in codeDirectory.*no_such_mod"):
        create_algorithm("tuner", class_name="no_such_mod.T", code_directory=str(code_dir))
    with pytest.raises(AlgorithmError, match="not found on sys.path"):
        create_algorithm("tuner", class_name="no_such_mod_zz.T")
    with pytest.raises(AlgorithmError, match="has no class 'Nope'.*MyTuner"):
        create_algorithm("tuner", class_name="my_tuner_mod_x1.Nope", code_directory=str(code_dir))
    with pytest.raises(AlgorithmError, match="not a class"):
        create_algorithm("tuner", class_name="my_tuner_mod_x1.not_a_class", code_directory=str(code_dir))
    with pytest.raises(AlgorithmError, match="gamma.*signature: MyTuner\\(alpha, beta=2\\)"):
        create_algorithm("tuner", class_name="my_tuner_mod_x1.MyTuner", code_directory=str(code_dir),
                         class_args={"alpha": 1, "gamma": 2})
    with pytest.raises(AlgorithmError, match="alpha.*signature"):
        create_algorithm("tuner", class_name="my_tuner_mod_x1.MyTuner", code_directory=str(code_dir))
    with pytest.raises(AlgorithmError, match="boom at import"):
        create_algorithm("tuner", class_name="broken_mod_x1.T", code_directory=str(code_dir))
    with pytest.raises(AlgorithmError, match="does not exist"):
        create_algorithm("tuner", class_name="m.T", code_directory=str(code_dir / "missing"))
    with pytest.raises(AlgorithmError, match="module.ClassName"):
        create_algorithm("tuner", class_name="JustAName")


@pytest.mark.parametrize("name", ["random", "tpe", "anneal", "grid"])
def test_empty_space_gives_one_empty_set(name):
    tuner = GridSearchTuner() if name == "grid" else TUNERS[name](seed=0)
    tuner.update_search_space({})
    assert tuner.generate_parameters(0) == {}
    tuner.receive_trial_result(0, {}, 1.0)
    if name == "anneal":   # not exhaustive (as NNI's Anneal): the one point again
        assert tuner.generate_parameters(1) == {}
        return
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(1)
