"""Population and bandit tuners (Evolution, RegularizedEvolution, Batch, Hyperband, BOHB, PBT)
and the Curvefitting and ASHA assessors: in-process runs of the tuner API plus one real
Hyperband experiment."""

from __future__ import annotations

import collections
import math
import os
import sqlite3
import json
from pathlib import Path

import numpy as np
import pytest

from nni.algorithms.hpo.asha_assessor import AshaAssessor
from nni.algorithms.hpo.batch_tuner import BatchTuner
from nni.algorithms.hpo.bohb_advisor import BOHB
from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor
from nni.algorithms.hpo.evolution_tuner import EvolutionTuner
from nni.algorithms.hpo.hyperband_advisor import Hyperband
from nni.algorithms.hpo.pbt_tuner import PBTTuner
from nni.algorithms.hpo.regularized_evolution_tuner import RegularizedEvolutionTuner
from nni.algorithms.registry import AlgorithmError, create_algorithm
from nni.assessor import AssessResult
from nni.errors import NoMoreTrialError
from nni.search_space import SearchSpaceError
from test_tuners import FULL_SPACE, check_params
from tuner_driving import drive, hp


def full_objective(p: dict) -> float:
    return -abs(p["u"] - 1.0) + (0.5 if p["c"] == "tanh" else 0.0)


def make(kind: str, seed: int | None = 3, **kw):
    cls = {"evolution": EvolutionTuner, "regevo": RegularizedEvolutionTuner, "hyperband": Hyperband,
           "bohb": BOHB, "pbt": PBTTuner}[kind]
    defaults = {"evolution": {"population_size": 8}, "regevo": {"population_size": 10, "sample_size": 4},
                "hyperband": {"R": 9, "eta": 3}, "bohb": {"min_budget": 1, "max_budget": 9, "min_points_in_model": 3},
                "pbt": {"population_size": 6}}[kind]
    return cls(seed=seed, **{**defaults, **kw})


TUNERS = ["evolution", "regevo", "hyperband", "bohb", "pbt"]


# ---- every tuner, every search-space type -------------------------------------------------------

@pytest.mark.parametrize("kind", TUNERS)
def test_every_space_type_stays_in_bounds(kind, tmp_path):
    extra = {"all_checkpoint_dir": str(tmp_path / "ckpt")} if kind == "pbt" else {}
    tuner = make(kind, **extra)
    tuner.update_search_space(FULL_SPACE)
    given = drive(tuner, full_objective, 90)
    assert len(given) == 90
    models = collections.Counter()
    for params in given:
        check_params(hp(params))
        m = params["model"]
        models[m if isinstance(m, str) else m["_name"]] += 1
    assert set(models) == {"svm", "tree", "none"}, models   # nested choice options are all explored


@pytest.mark.parametrize("kind", TUNERS)
def test_seed_reproduces_and_differs_across_seeds(kind, tmp_path):
    def run(seed):
        extra = {"all_checkpoint_dir": str(tmp_path / "ckpt")} if kind == "pbt" else {}
        tuner = make(kind, seed=seed, **extra)
        tuner.update_search_space(FULL_SPACE)
        return drive(tuner, full_objective, 40)
    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("kind", TUNERS)
def test_bad_spaces_are_refused_with_the_reason(kind, tmp_path):
    tuner = make(kind, **({"all_checkpoint_dir": str(tmp_path)} if kind == "pbt" else {}))
    with pytest.raises(SearchSpaceError, match="unknown _type 'unifrom'.*did you mean 'uniform'"):
        tuner.update_search_space({"x": {"_type": "unifrom", "_value": [0, 1]}})
    reserved = "save_checkpoint_dir" if kind == "pbt" else "TRIAL_BUDGET"
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, reserved: {"_type": "choice", "_value": [1]}}
    if kind in ("evolution", "regevo"):
        tuner.update_search_space(space)   # an ordinary name for these tuners
    else:
        with pytest.raises(ValueError, match=f"must not define '{reserved}'.*adds"):
            tuner.update_search_space(space)


@pytest.mark.parametrize("cls,args,match", [
    (EvolutionTuner, {"population_size": 0}, "population_size must be an int >= 1"),
    (EvolutionTuner, {"optimize_mode": "max"}, "optimize_mode must be 'minimize' or 'maximize'"),
    (RegularizedEvolutionTuner, {"population_size": 5, "sample_size": 6}, "sample_size .6. must not exceed"),
    (Hyperband, {"eta": 1}, "eta must be an int >= 2"),
    (Hyperband, {"exec_mode": "fast"}, "exec_mode must be 'parallelism' or 'serial'"),
    (BOHB, {"min_budget": 5, "max_budget": 3}, "min_budget .5. must not exceed max_budget"),
    (BOHB, {"random_fraction": 1.5}, r"random_fraction must be a number in \[0, 1\]"),
    (PBTTuner, {"fraction": 0.7}, r"fraction must be a number in \(0, 0.5\]"),
    (PBTTuner, {"seed": -1}, "seed must be a non-negative int"),
    (CurvefittingAssessor, {"threshold": -1}, r"threshold must be a number in \[0, 9999\]"),
    (AshaAssessor, {"reduction_factor": 1}, "reduction_factor must be an int >= 2"),
])
def test_bad_class_args_say_what_is_wrong(cls, args, match):
    with pytest.raises(ValueError, match=match):
        cls(**args)


def test_registry_builds_every_algorithm_with_nni_class_args(tmp_path):
    pbt = create_algorithm("tuner", name="PBTTuner", class_args={
        "optimize_mode": "minimize", "all_checkpoint_dir": str(tmp_path), "population_size": 4,
        "factor": 0.1, "resample_probability": 0.5, "fraction": 0.25})
    assert isinstance(pbt, PBTTuner) and pbt.resample_probability == 0.5
    assert isinstance(create_algorithm("tuner", name="Evolution", class_args={"optimize_mode": "maximize",
                                                                            "population_size": 10}), EvolutionTuner)
    assert isinstance(create_algorithm("tuner", name="RegularizedEvolutionTuner",
                                       class_args={"population_size": 10, "sample_size": 3}),
                      RegularizedEvolutionTuner)
    assert isinstance(create_algorithm("tuner", name="BatchTuner"), BatchTuner)
    assert isinstance(create_algorithm("tuner", name="Hyperband", class_args={"R": 27, "eta": 3,
                                                                             "exec_mode": "serial"}), Hyperband)
    assert isinstance(create_algorithm("tuner", name="BOHB", class_args={"min_budget": 1, "max_budget": 27}), BOHB)
    assert isinstance(create_algorithm("assessor", name="Curvefitting", class_args={"epoch_num": 20}),
                      CurvefittingAssessor)
    assert isinstance(create_algorithm("assessor", name="ASHA", class_args={"reduction_factor": 2}), AshaAssessor)
    with pytest.raises(AlgorithmError, match="bad classArgs for tuner 'Hyperband'.*unexpected keyword.*'r'"):
        create_algorithm("tuner", name="Hyperband", class_args={"r": 27})


# ---- evolution ---------------------------------------------------------------------------------

FLAT = {"a": {"_type": "uniform", "_value": [0, 1]}, "b": {"_type": "uniform", "_value": [0, 1]},
        "c": {"_type": "choice", "_value": ["x", "y", "z"]}}


def _differs_in_one(p: dict, q: dict) -> bool:
    return sum(p[k] != q[k] for k in p) == 1


@pytest.mark.parametrize("kind", ["evolution", "regevo"])
def test_evolution_children_mutate_one_parameter_of_an_earlier_result(kind):
    tuner = make(kind, optimize_mode="maximize")
    tuner.update_search_space(FLAT)
    size = tuner.population_size
    given = drive(tuner, lambda p: p["a"] + p["b"], 60, concurrency=1)
    for i, child in enumerate(given[size:], start=size):
        assert any(_differs_in_one(child, parent) for parent in given[:i]), child


def test_evolution_improves_over_its_random_start():
    tuner = EvolutionTuner(optimize_mode="maximize", population_size=10, seed=1)
    tuner.update_search_space(FLAT)
    given = drive(tuner, lambda p: p["a"] + p["b"], 150, concurrency=1)
    first = np.mean([p["a"] + p["b"] for p in given[:10]])
    last = np.mean([p["a"] + p["b"] for p in given[-30:]])
    assert last > first + 0.3 and last > 1.4, (first, last)   # random search averages 1.0


def test_regularized_evolution_drops_the_oldest_not_the_worst():
    tuner = RegularizedEvolutionTuner(optimize_mode="maximize", population_size=5, sample_size=2, seed=0)
    tuner.update_search_space(FLAT)
    values = [10.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]   # the first (best) result must age out
    for pid, v in enumerate(values):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, v)
        tuner.trial_end(pid, True)
    assert sorted(-tuner._y[list(tuner._population)]) == [0.2, 0.3, 0.4, 0.5, 0.6]


@pytest.mark.parametrize("kind", ["evolution", "regevo"])
def test_evolution_imported_results_form_the_population(kind):
    tuner = make(kind, optimize_mode="minimize", population_size=4, **({"sample_size": 4} if kind == "regevo" else {}))
    tuner.update_search_space(FLAT)
    best = {"a": 0.25, "b": 0.75, "c": "y"}
    data = [{"parameter": best, "value": 0.0}] + [
        {"parameter": {"a": 0.9, "b": 0.9, "c": "x"}, "value": 5.0 + i} for i in range(3)]
    tuner.import_data(data)
    child = tuner.generate_parameters(0)   # no random start: evolution starts from the import
    assert any(_differs_in_one(child, e["parameter"]) for e in data), child
    if kind == "regevo":   # a tournament over the whole population always mutates the best
        assert _differs_in_one(child, best)


# ---- batch -------------------------------------------------------------------------------------

def test_batch_enumerates_each_set_exactly_once_then_stops():
    sets = [{"lr": 0.1, "bs": 32}, {"lr": 0.01, "bs": 64}, {"lr": 0.001, "bs": 16, "opt": "sgd"}]
    tuner = BatchTuner()
    tuner.update_search_space({"combine_params": {"_type": "choice", "_value": sets}})
    got = [tuner.generate_parameters(i) for i in range(3)]
    assert got == sets
    got[0]["lr"] = 99   # the caller's copy; the tuner's list is unchanged
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(3)
    assert tuner.generate_multiple_parameters([4, 5]) == []


def test_batch_skips_imported_sets():
    sets = [{"x": i} for i in range(4)]
    tuner = BatchTuner()
    tuner.update_search_space({"combine_params": {"_type": "choice", "_value": sets}})
    tuner.import_data([{"parameter": {"x": 1}, "value": 0.5}, {"parameter": {"x": 3}, "value": 0.1}])
    assert tuner.generate_multiple_parameters(list(range(10))) == [{"x": 0}, {"x": 2}]


def test_batch_takes_one_choice_of_any_name_with_scalar_or_dict_values_as_nni():
    tuner = BatchTuner()
    tuner.update_search_space({"lr": {"_type": "choice", "_value": [0.1, 0.01, "x", [1, 2]]}})
    assert tuner.generate_multiple_parameters(list(range(6))) == [0.1, 0.01, "x", [1, 2]]
    tuner = BatchTuner()
    tuner.update_search_space({"sets": {"_type": "choice", "_value": [{"a": 1}, 3]}})
    assert [tuner.generate_parameters(0), tuner.generate_parameters(1)] == [{"a": 1}, 3]


@pytest.mark.parametrize("space,match", [
    ({"lr": {"_type": "uniform", "_value": [0, 1]}}, "must be \\{\"_type\": \"choice\""),
    ({"a": {"_type": "choice", "_value": [1]}, "b": {"_type": "choice", "_value": [1]}},
     "exactly one parameter.*got \\['a', 'b'\\]"),
    ({"combine_params": {"_type": "choice", "_value": []}}, "lists no parameter sets"),
])
def test_batch_refuses_other_space_shapes(space, match):
    with pytest.raises(ValueError, match=match):
        BatchTuner().update_search_space(space)


# ---- hyperband ---------------------------------------------------------------------------------

SIZES_27_3 = [(3, [27, 9, 3, 1], [1, 3, 9, 27]), (2, [12, 4, 1], [3, 9, 27]), (1, [6, 2], [9, 27]), (0, [4], [27])]


def test_hyperband_bracket_and_rung_sizes_for_r27_eta3():
    assert Hyperband(R=27, eta=3).brackets_schedule() == SIZES_27_3
    # NNI's defaults: budgets are floored ints
    assert Hyperband(R=60, eta=3).brackets_schedule()[0] == (3, [27, 9, 3, 1], [2, 6, 20, 60])
    assert BOHB(min_budget=1, max_budget=27, eta=3).brackets_schedule() == SIZES_27_3
    assert BOHB().brackets_schedule() == [(1, [3, 1], [1, 3]), (0, [2], [3])]
    assert BOHB(min_budget=0.5, max_budget=2, eta=2).brackets_schedule()[0] == (2, [4, 2, 1], [0.5, 1, 2])


def _runs(given):
    """Consecutive (budget, count) groups."""
    out = []
    for p in given:
        if out and out[-1][0] == p["TRIAL_BUDGET"]:
            out[-1][1] += 1
        else:
            out.append([p["TRIAL_BUDGET"], 1])
    return [tuple(x) for x in out]


def test_hyperband_serial_runs_every_rung_in_order_and_promotes_the_best():
    tuner = Hyperband(R=27, eta=3, exec_mode="serial", optimize_mode="maximize", seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    given = drive(tuner, lambda p: p["x"], 70, concurrency=5)
    assert _runs(given[:69]) == [(1, 27), (3, 9), (9, 3), (27, 1), (3, 12), (9, 4), (27, 1), (9, 6), (27, 6)]
    # rung 1 of the first bracket runs exactly the 9 best of its 27 rung-0 configurations
    rung0 = sorted((p["x"] for p in given[:27]), reverse=True)
    assert sorted(p["x"] for p in given[27:36]) == sorted(rung0[:9])
    assert given[39]["x"] == rung0[0]
    # the next iteration starts (after the last bracket completes) with fresh configurations
    assert given[69]["TRIAL_BUDGET"] == 1 and given[69]["x"] not in {p["x"] for p in given[:69]}


def test_hyperband_minimize_promotes_the_smallest():
    tuner = Hyperband(R=9, eta=3, exec_mode="serial", optimize_mode="minimize", seed=2)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    given = drive(tuner, lambda p: p["x"], 13, concurrency=9)
    assert sorted(p["x"] for p in given[9:12]) == sorted(p["x"] for p in given[:9])[:3]
    assert given[12]["x"] == min(p["x"] for p in given[:9])


def test_hyperband_serial_waits_for_the_rung_then_continues():
    tuner = Hyperband(R=9, eta=3, exec_mode="serial", seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    first = tuner.generate_multiple_parameters(list(range(20)))
    assert len(first) == 9 and {p["TRIAL_BUDGET"] for p in first} == {1}
    with pytest.raises(NoMoreTrialError, match="waiting"):
        tuner.generate_parameters(20)
    for pid, p in enumerate(first):
        tuner.receive_trial_result(pid, p, p["x"])
    promoted = tuner.generate_multiple_parameters([21, 22, 23, 24])
    assert [p["TRIAL_BUDGET"] for p in promoted] == [3, 3, 3]


def test_hyperband_parallelism_starts_the_next_bracket_while_a_rung_waits():
    tuner = Hyperband(R=27, eta=3, exec_mode="parallelism", seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    batch = tuner.generate_multiple_parameters(list(range(30)))
    assert [p["TRIAL_BUDGET"] for p in batch] == [1] * 27 + [3] * 3   # bracket s=2 starts at budget 3


def test_hyperband_failed_trials_count_as_worst_and_do_not_stall():
    tuner = Hyperband(R=9, eta=3, exec_mode="serial", seed=4)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    given = drive(tuner, lambda p: p["x"], 22, concurrency=4, fail=lambda p: p["x"] > 0.5)
    assert len(given) == 22   # one full iteration despite failures
    assert _runs(given) == [(1, 9), (3, 3), (9, 1), (3, 5), (9, 4)]
    ranked = sorted(range(9), key=lambda j: (-given[j]["x"] if given[j]["x"] <= 0.5 else math.inf, j))
    assert [p["x"] for p in given[9:12]] == [given[j]["x"] for j in ranked[:3]]   # failures rank last


def test_hyperband_import_data_warm_starts_the_first_bracket():
    tuner = Hyperband(R=9, eta=3, seed=0, optimize_mode="maximize")
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    tuner.import_data([{"parameter": {"x": 0.123, "TRIAL_BUDGET": 9}, "value": 5.0},
                       {"parameter": {"x": 0.456}, "value": 1.0},
                       {"parameter": {"x": 7.0}, "value": 9.0}])   # out of bounds: skipped
    first = tuner.generate_multiple_parameters(list(range(9)))
    assert [p["x"] for p in first[:2]] == [0.123, 0.456] and 7.0 not in [p["x"] for p in first]


# ---- BOHB --------------------------------------------------------------------------------------

def test_bohb_model_concentrates_on_the_good_region():
    space = {"x": {"_type": "uniform", "_value": [-5, 5]}, "k": {"_type": "choice", "_value": ["a", "b", "c"]}}

    def loss(p):
        return (p["x"] - 2.0) ** 2 + (0 if p["k"] == "b" else 3)

    tuner = BOHB(optimize_mode="minimize", min_budget=1, max_budget=9, eta=3, random_fraction=0.1, seed=0)
    tuner.update_search_space(space)
    given = drive(tuner, loss, 200, concurrency=1)
    fresh = [p for p in given[100:] if p["TRIAL_BUDGET"] == 1]
    near = np.mean([abs(p["x"] - 2) < 1 for p in fresh])
    b_share = np.mean([p["k"] == "b" for p in fresh])
    assert near > 0.5 and b_share > 0.6, (near, b_share)   # random search: 0.1 and 0.33


def test_bohb_import_data_feeds_the_model_at_its_budget():
    space = {"x": {"_type": "uniform", "_value": [0, 10]}}
    tuner = BOHB(optimize_mode="maximize", min_budget=1, max_budget=3, random_fraction=0, min_points_in_model=2, seed=1)
    tuner.update_search_space(space)
    rng = np.random.default_rng(0)
    data = [{"parameter": {"x": float(x)}, "value": -abs(float(x) - 7)} for x in rng.uniform(0, 10, 40)]
    tuner.import_data(data)
    assert set(tuner._obs_budget) == {3.0}   # no TRIAL_BUDGET: counted as max_budget runs
    proposals = tuner.generate_multiple_parameters(list(range(3)))
    assert all(abs(p["x"] - 7) < 1.5 for p in proposals), proposals


# ---- PBT ---------------------------------------------------------------------------------------

PBT_SPACE = {"lr": {"_type": "loguniform", "_value": [1e-4, 1]}, "mom": {"_type": "uniform", "_value": [0, 1]},
             "layers": {"_type": "randint", "_value": [1, 20]}, "opt": {"_type": "choice", "_value": ["sgd", "adam"]}}


def test_pbt_bottom_members_copy_checkpoint_and_perturbed_params_of_the_top(tmp_path):
    tuner = PBTTuner(optimize_mode="maximize", all_checkpoint_dir=str(tmp_path / "ck"), population_size=5,
                     factor=0.2, resample_probability=0.0, fraction=0.2, seed=0)
    tuner.update_search_space(PBT_SPACE)
    gen0 = tuner.generate_multiple_parameters(list(range(10)))
    assert len(gen0) == 5   # then it waits for the generation
    for i, p in enumerate(gen0):
        assert p["save_checkpoint_dir"] == str(tmp_path / "ck" / str(i) / "0") == p["load_checkpoint_dir"]
        assert os.path.isdir(p["save_checkpoint_dir"])
    scores = [3.0, 9.0, 1.0, 5.0, 4.0]   # member 1 is best, member 2 worst
    for pid, (p, s) in enumerate(zip(gen0, scores)):
        tuner.receive_trial_result(pid, p, s)
        tuner.trial_end(pid, True)
    gen1 = tuner.generate_multiple_parameters(list(range(10, 20)))
    assert len(gen1) == 5
    for i, p in enumerate(gen1):
        assert p["save_checkpoint_dir"] == str(tmp_path / "ck" / str(i) / "1")
        if i == 2:   # the worst member exploits the best and explores around its values
            assert p["load_checkpoint_dir"] == gen0[1]["save_checkpoint_dir"]
            top = gen0[1]
            for key in ("lr", "mom"):
                assert p[key] == pytest.approx(top[key] * 1.2) or p[key] == pytest.approx(top[key] * 0.8) \
                    or any(p[key] == pytest.approx(edge) for edge in (1e-4, 1.0, 0.0)), (key, p[key], top[key])
            assert p["layers"] != top["layers"] and abs(p["layers"] - top["layers"]) <= max(1, 0.2 * top["layers"] + 1)
            assert p["opt"] == top["opt"]   # an unordered choice keeps its value when perturbed
        else:
            assert hp(p) == hp(gen0[i])
            assert p["load_checkpoint_dir"] == gen0[i]["save_checkpoint_dir"]


def test_pbt_resample_probability_one_redraws_and_failures_count_as_worst(tmp_path):
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=4, resample_probability=1.0,
                     fraction=0.25, seed=1)
    tuner.update_search_space(PBT_SPACE)
    gen0 = tuner.generate_multiple_parameters(list(range(4)))
    for pid, p in enumerate(gen0):
        if pid == 0:
            tuner.trial_end(pid, False)   # no result: the worst member
        else:
            tuner.receive_trial_result(pid, p, float(pid))
            tuner.trial_end(pid, True)
    gen1 = tuner.generate_multiple_parameters(list(range(4, 8)))
    assert gen1[0]["load_checkpoint_dir"] == gen0[3]["save_checkpoint_dir"]
    assert gen1[0]["lr"] != gen0[3]["lr"] and gen1[0]["mom"] != gen0[3]["mom"]


def test_pbt_default_checkpoint_dir_is_the_managers_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path / "exp" / "checkpoint"))
    tuner = PBTTuner(population_size=2, seed=0)
    tuner.update_search_space(PBT_SPACE)
    p = tuner.generate_parameters(0)
    assert p["save_checkpoint_dir"] == str(tmp_path / "exp" / "checkpoint" / "0" / "0")


def test_pbt_import_data_seeds_the_first_generation(tmp_path):
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=3, optimize_mode="minimize", seed=0)
    tuner.update_search_space(PBT_SPACE)
    best = {"lr": 0.01, "mom": 0.9, "layers": 4, "opt": "adam"}
    worse = {"lr": 0.5, "mom": 0.1, "layers": 2, "opt": "sgd"}
    tuner.import_data([{"parameter": worse, "value": 2.0}, {"parameter": best, "value": 0.5}])
    gen0 = [hp(p) for p in tuner.generate_multiple_parameters([0, 1, 2])]
    assert gen0[:2] == [best, worse] and gen0[2] not in (best, worse)


# ---- Curvefitting ------------------------------------------------------------------------------

def _curve(final: float, rate: float, n: int = 20) -> list[float]:
    return [final - (final - 0.1) * math.exp(-rate * (i + 1)) for i in range(n)]


def test_curvefitting_stops_clearly_bad_curves_and_keeps_good_ones():
    a = CurvefittingAssessor(epoch_num=20, start_step=6, threshold=0.95, seed=1)
    good = _curve(0.9, 0.3)
    assert a.assess_trial("t0", good[:6]) is AssessResult.Good   # nothing completed yet
    for k in range(7, 21):
        a.assess_trial("t0", good[:k])
    a.trial_end("t0", True)
    assert a.completed_best == pytest.approx(good[-1]) == a.completed_best_performance
    bad = _curve(0.5, 0.4)            # plateaus at 0.5, far below 0.95 * 0.9
    slow_good = _curve(0.95, 0.15)    # 0.60 at step 6 but heading to 0.91 at step 20
    verdicts = [a.assess_trial("t1", bad[:k]) for k in range(1, 13)]
    # NNI's model waits until at least 4 curve families agree, then stops the trial
    assert AssessResult.Bad in verdicts and AssessResult.Bad not in verdicts[:5]
    assert all(a.assess_trial("t2", slow_good[:k]) is AssessResult.Good for k in range(1, 21))
    almost = _curve(0.87, 0.3)        # within 5 % of the best: continues
    assert all(a.assess_trial("t3", almost[:k]) is AssessResult.Good for k in range(1, 21))


def test_curvefitting_minimize_gap_and_start_step():
    a = CurvefittingAssessor(epoch_num=20, start_step=5, threshold=0.9, gap=3, optimize_mode="minimize", seed=1)
    best_loss = [1.0 / (i + 1) ** 0.5 for i in range(20)]   # ends at 0.224
    for k in range(1, 21):
        a.assess_trial("t0", best_loss[:k])
    a.trial_end("t0", True)
    flat_bad = [2.0 - 0.01 * i for i in range(20)]
    verdicts = [a.assess_trial("t1", flat_bad[:k]) for k in range(1, 18)]
    # judged only at steps 5, 8, 11, 14, 17 (NNI's gap), and stopped there
    bad_steps = [k + 1 for k, v in enumerate(verdicts) if v is AssessResult.Bad]
    assert bad_steps and set(bad_steps) <= {5, 8, 11, 14, 17}, bad_steps
    good = [0.5 / (i + 1) ** 0.6 for i in range(20)]   # clearly better than t0 all along
    assert all(a.assess_trial("t2", good[:k]) is AssessResult.Good for k in range(1, 21))


def test_curvefitting_package_layout_and_curve_model_numbers_match_nni():
    """NNI's CurveModel attributes and methods, with figures from NNI's own unit test."""
    from nni.algorithms.hpo.curvefitting_assessor.curvefunctions import curve_combination_models
    from nni.algorithms.hpo.curvefitting_assessor.model_factory import CurveModel
    assert CurvefittingAssessor(20).start_step == 6 and CurvefittingAssessor(20).target_pos == 20
    model = CurveModel(21)
    model.effective_model = list(curve_combination_models)
    model.effective_model_num = 12
    model.point_num = 9
    model.target_pos = 20
    model.trial_history = [1] * 9
    weights = np.ones(12) / 12
    assert model.predict_y("vap", 9) == pytest.approx(0.5591906328335763)
    assert model.predict_y("logx_linear", 15) == pytest.approx(1.0704360293379522)
    assert model.f_comb(9, weights) == pytest.approx(1.1543379521172443)
    assert model.f_comb(15, weights) == pytest.approx(1.6949395581692737)
    assert CurveModel(21).predict([1, 199, 0, 199, 1, 209, 2]) is None   # no family fits: wait
    assert CurvefittingAssessor(20).assess_trial(1, [1]) is AssessResult.Good


def test_curvefitting_least_squares_matches_scipy_curve_fit():
    """Our Levenberg-Marquardt reaches scipy's curve_fit optimum (NNI fits with scipy)."""
    optimize = pytest.importorskip("scipy.optimize")
    from nni.algorithms.hpo.curvefitting_assessor.curvefunctions import all_models, model_para_num
    from nni.algorithms.hpo.curvefitting_assessor.model_factory import curve_fit
    x = np.arange(1, 11, dtype=float)
    y = np.array(_curve(0.9, 0.3, 10))
    compared = 0
    for name in ("vap", "pow3", "linear", "logx_linear", "dr_hill_zero_background", "mmf", "exp4", "weibull"):
        with np.errstate(all="ignore"):
            ref = optimize.curve_fit(all_models[name], x, y)[0]
        ours = curve_fit(all_models[name], x, y, np.ones(model_para_num[name]))
        assert all_models[name](20.0, *ours) == pytest.approx(all_models[name](20.0, *ref), rel=1e-5), name
        compared += 1
    assert compared == 8


# ---- ASHA --------------------------------------------------------------------------------------

def test_asha_keeps_the_top_third_at_each_rung():
    a = AshaAssessor(optimize_mode="maximize", min_resource=1, reduction_factor=3)
    assert a.rung_steps(30) == [1, 3, 9, 27]
    curves = {f"t{i}": [v] * 12 for i, v in enumerate([0.5, 0.9, 0.1, 0.8, 0.2, 0.3, 0.95])}
    first = {tid: a.assess_trial(tid, c[:1]) for tid, c in curves.items()}
    # rung 1, in arrival order: 0.5 (1 of 1 kept), 0.9 (1 of 2), 0.1 (3rd of 3: stop), 0.8 (2nd, keep 2 of 4),
    # 0.2 (stop), 0.3 (5th of 6, keep 2: stop), 0.95 (best: keep)
    assert {t for t, v in first.items() if v is AssessResult.Bad} == {"t2", "t4", "t5"}
    # between rungs nothing is judged
    assert a.assess_trial("t0", curves["t0"][:2]) is AssessResult.Good
    # rung 3: t1 (0.9) arrives first and continues; t3 (0.8) is 2nd of 2 (keep 1): stop; t6 continues
    assert a.assess_trial("t1", curves["t1"][:3]) is AssessResult.Good
    assert a.assess_trial("t3", curves["t3"][:3]) is AssessResult.Bad
    assert a.assess_trial("t6", curves["t6"][:3]) is AssessResult.Good


def test_asha_minimize_max_resource_and_nan():
    a = AshaAssessor(optimize_mode="minimize", min_resource=2, reduction_factor=2, max_resource=4)
    assert a.rung_steps(100) == [2, 4]
    assert a.assess_trial("a", [5.0, 1.0]) is AssessResult.Good
    assert a.assess_trial("b", [0.1, 3.0]) is AssessResult.Bad     # value at the rung step counts
    assert a.assess_trial("c", [1.0, float("nan")]) is AssessResult.Bad
    assert a.assess_trial("a", [5.0, 1.0, 1.0]) is AssessResult.Good   # step 3: no rung
    assert a.assess_trial("a", [5.0, 1.0, 1.0, 0.5]) is AssessResult.Good
    assert a.assess_trial("a", [5.0, 1.0, 1.0, 0.5] + [9.0] * 8) is AssessResult.Good   # beyond max_resource


# ---- a real experiment ----------------------------------------------------------------------------

HYPERBAND_TRIAL = """
    import nni
    params = nni.get_next_parameter()
    budget = params["TRIAL_BUDGET"]
    for epoch in range(budget):
        nni.report_intermediate_result(params["x"] * (epoch + 1) / budget)
    nni.report_final_result(params["x"] * budget)
"""


def test_hyperband_experiment_runs_every_rung_with_its_budget(make_experiment):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = make_experiment(HYPERBAND_TRIAL, space, concurrency=3, max_trials=22)
    exp.config.tuner.name = "Hyperband"
    exp.config.tuner.class_args = {"R": 9, "eta": 3, "exec_mode": "serial", "optimize_mode": "maximize", "seed": 7}
    exp.start(port=0)
    assert exp.wait(timeout=300) == "DONE"
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    conn = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    rows = [json.loads(r[0]) for r in conn.execute(
        "SELECT p.parameters FROM parameters p JOIN trials t ON t.trial_id = p.trial_id ORDER BY t.sequence_id")]
    statuses = [r[0] for r in conn.execute("SELECT status FROM trials")]
    assert len(rows) == 22 and statuses.count("SUCCEEDED") == 22
    assert _runs(rows) == [(1, 9), (3, 3), (9, 1), (3, 5), (9, 4)]   # budgets R / eta**k
    # rung 1 of bracket s=2 re-ran the 3 best of its 9 configurations at 3 x the budget
    assert sorted(p["x"] for p in rows[9:12]) == sorted(p["x"] for p in rows[:9])[-3:]


CURVE_TRIAL = """
import nni
p = nni.get_next_parameter()
x = p["x"]
budget = int(p.get("TRIAL_BUDGET", 9))
value = 0.0
for step in range(1, budget + 1):
    value = x * (1 - 0.5 ** step)          # a learning curve that rises to x
    nni.report_intermediate_result(value)
nni.report_final_result(value)
"""


@pytest.mark.parametrize("tuner,args,assessor,assessor_args", [
    ("BOHB", {"min_budget": 1, "max_budget": 9, "eta": 3, "seed": 3}, "ASHA",
     {"min_resource": 1, "reduction_factor": 3}),
    ("Evolution", {"population_size": 4, "seed": 3}, "Curvefitting",
     {"epoch_num": 9, "start_step": 3, "threshold": 0.95}),
])
def test_bandit_and_population_tuners_with_assessors_complete_a_real_experiment(
        make_experiment, tuner, args, assessor, assessor_args):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = make_experiment(CURVE_TRIAL, space, concurrency=3, max_trials=15)
    exp.config.tuner.name = tuner
    exp.config.tuner.class_args = {"optimize_mode": "maximize", **args}
    exp.config.assessor.name = assessor
    exp.config.assessor.class_args = {"optimize_mode": "maximize", **assessor_args}
    exp.start(port=0)
    assert exp.wait(timeout=300) == "DONE"
    jobs = exp.list_trial_jobs()
    exp.stop()
    assert len(jobs) == 15
    statuses = {j.status for j in jobs}
    assert statuses <= {"SUCCEEDED", "EARLY_STOPPED"} and "SUCCEEDED" in statuses
    for job in jobs:
        x = job.hyperParameters[0].parameters["x"]
        assert 0 <= x <= 1


def test_pbt_experiment_passes_checkpoints_from_generation_to_generation(make_experiment):
    trial = """
import json, os, nni
p = nni.get_next_parameter()
os.makedirs(p["save_checkpoint_dir"], exist_ok=True)
start = 0.0
loaded = os.path.join(p["load_checkpoint_dir"], "model.json")
if os.path.exists(loaded):
    start = json.load(open(loaded))["score"]
score = start + p["lr"]
json.dump({"score": score}, open(os.path.join(p["save_checkpoint_dir"], "model.json"), "w"))
nni.report_final_result(score)
"""
    space = {"lr": {"_type": "uniform", "_value": [0.1, 1.0]}}
    exp = make_experiment(trial, space, concurrency=4, max_trials=12)
    exp.config.tuner.name = "PBT"
    exp.config.tuner.class_args = {"optimize_mode": "maximize", "population_size": 4, "seed": 5}
    exp.start(port=0)
    assert exp.wait(timeout=300) == "DONE"
    jobs = exp.list_trial_jobs()
    exp.stop()
    assert len(jobs) == 12 and all(j.status == "SUCCEEDED" for j in jobs)
    finals = sorted(float(j.finalMetricData[0].data) for j in jobs)
    # three generations: scores accumulate through the checkpoints, so the best exceeds any one lr
    assert finals[-1] > 1.0
    # The checkpoints live in the experiment's own checkpoint/ directory, which the manager gave
    # the tuner without setting NNI_CHECKPOINT_DIRECTORY in this (the user's) process.
    checkpoint = os.path.join(exp.config.experiment_working_directory, exp.id, "checkpoint")
    assert all(j.hyperParameters[0].parameters["save_checkpoint_dir"].startswith(checkpoint + os.sep)
               for j in jobs)
    assert "NNI_CHECKPOINT_DIRECTORY" not in os.environ
