"""Every built-in tuner over every search-space type of NNI's format (issue 12).

Each tuner runs 3 rounds of 50 parameter sets with results fed back and ``import_data``
in the middle (as a resumed experiment does); every value is checked against its spec
(bounds, Python type, q step, choice membership, nested structure).  On a small finite
space the exhaustive tuners (Random, TPE, TPE_legacy, GridSearch) stop after every point,
the others never run dry (NNI's behaviour).
"""

from __future__ import annotations

import json
import math
import random

import pytest

from nni.algorithms.registry import create_algorithm
from nni.errors import NoMoreTrialError
from test_tuners import FULL_SPACE
from tuner_driving import drive, hp

#: Every ``_type``, plus the degenerate (low == high) and single-value forms NNI accepts.
ALL_TYPES = {
    **FULL_SPACE,   # every type once, nested choices included
    "c": {"_type": "choice", "_value": ["relu", "tanh", 3, 0.5, True]},
    "c1": {"_type": "choice", "_value": ["only"]},
    "ri": {"_type": "randint", "_value": [-2, 7]},
    "ri1": {"_type": "randint", "_value": [5, 6]},
    "big": {"_type": "randint", "_value": [0, 10_000_000]},
    "u0": {"_type": "uniform", "_value": [0.25, 0.25]},
    "qu0": {"_type": "quniform", "_value": [4, 4, 2]},
    "lu0": {"_type": "loguniform", "_value": [0.01, 0.01]},
    "qlu0": {"_type": "qloguniform", "_value": [8, 8, 1]},
}

#: What GP, Metis and DNGO accept (as in NNI): flat, numeric, no normal family.
NUMERIC_TYPES = {k: v for k, v in ALL_TYPES.items()
                 if k in ("ri", "ri1", "big", "u", "u0", "qu", "qu0", "lu", "lu0", "qlu", "qlu0")}
NUMERIC_TYPES["c"] = {"_type": "choice", "_value": [1, 2.5, 10]}
NUMERIC_TYPES["c1"] = {"_type": "choice", "_value": [7]}

# name -> (class args, numeric-only space, exhaustive on a finite space)
TUNERS = {
    "TPE": ({"optimize_mode": "minimize", "seed": 1}, False, True),
    "Random": ({"seed": 1}, False, True),
    "Anneal": ({"optimize_mode": "minimize", "seed": 1}, False, False),
    "TPE_legacy": ({"optimize_mode": "minimize", "seed": 1}, False, True),
    "GridSearch": ({}, False, True),
    "Evolution": ({"optimize_mode": "minimize", "population_size": 8, "seed": 1}, False, False),
    "RegularizedEvolution": ({"optimize_mode": "minimize", "population_size": 10, "sample_size": 4,
                              "seed": 1}, False, False),
    "Hyperband": ({"optimize_mode": "minimize", "R": 9, "eta": 3, "seed": 1}, False, False),
    "BOHB": ({"optimize_mode": "minimize", "min_budget": 1, "max_budget": 9, "min_points_in_model": 3,
              "seed": 1}, False, False),
    "PBT": ({"optimize_mode": "minimize", "population_size": 6, "seed": 1}, False, False),
    "GP": ({"optimize_mode": "minimize", "cold_start_num": 5, "selection_num_warm_up": 500,
            "selection_num_starting_points": 10, "seed": 1}, True, False),
    "Metis": ({"optimize_mode": "minimize", "selection_num_starting_points": 30, "cold_start_num": 5,
               "seed": 1}, True, False),
    "SMAC": ({"optimize_mode": "minimize", "seed": 1}, False, False),
    "DNGO": ({"optimize_mode": "minimize", "sample_size": 200, "trials_per_update": 15,
              "num_epochs_per_training": 100, "seed": 1}, True, False),
}


def _build(name: str, tmp_path):
    args = dict(TUNERS[name][0])
    if name == "SMAC":
        pytest.importorskip("smac")
    if name == "PBT":
        args["all_checkpoint_dir"] = str(tmp_path / "ckpt")
    return create_algorithm("tuner", name=name, class_args=args)


def _multiple(v: float, q: float) -> bool:
    return abs(v - round(v / q) * q) <= 1e-9 * max(1.0, abs(v))


def check_value(path: str, spec: dict, v) -> None:
    """Assert ``v`` is a value NNI's semantics allow for ``spec``."""
    t, a = spec["_type"], spec["_value"]
    if t == "choice":
        named = [o for o in a if isinstance(o, dict) and "_name" in o]
        if isinstance(v, dict) and "_name" in v:
            opt = next(o for o in named if o["_name"] == v["_name"])
            sub = {k: s for k, s in opt.items() if k != "_name"}
            assert set(v) == {"_name", *sub}, (path, v)
            for k, s in sub.items():
                check_value(f"{path}/{k}", s, v[k])
        else:
            assert any(o == v and type(o) is type(v) for o in a), (path, v)
        return
    if t == "randint":
        assert type(v) is int and a[0] <= v < a[1], (path, v)
        return
    assert type(v) is float and math.isfinite(v), (path, v)
    q = a[2] if t.startswith("q") else None
    if "normal" in t:
        if "log" in t:
            assert v >= 0 if q else v > 0, (path, v)
        if q:
            assert _multiple(v, q), (path, v)
        return
    lo, hi = a[0], a[1]
    assert lo - 1e-9 * abs(lo) <= v <= hi + 1e-9 * abs(hi), (path, v)
    if q:
        assert _multiple(v, q) or v in (lo, hi), (path, v)


def check_params(space: dict, params: dict) -> None:
    json.dumps(params)
    values = hp(params)
    assert set(values) == set(space), (set(values) ^ set(space))
    for name, spec in space.items():
        check_value(name, spec, values[name])


def _loss(params: dict) -> float:
    if "lu" not in params:   # the small finite spaces
        return params["b"] + (0.5 if params["a"] in ("x", 1) else 0.0)
    return (params["u"] - 1) ** 2 + math.log(params["lu"]) ** 2 / 50 + params["ri"] / 20


def _random_params(space: dict, rng: random.Random) -> dict:
    """A valid parameter set drawn independently of any tuner (the imported history)."""
    out = {}
    for name, spec in space.items():
        t, a = spec["_type"], spec["_value"]
        if t == "choice":
            opt = rng.choice(a)
            if isinstance(opt, dict):
                sub = {k: s for k, s in opt.items() if k != "_name"}
                out[name] = {"_name": opt["_name"], **_random_params(sub, rng)}
            else:
                out[name] = opt
        elif t == "randint":
            out[name] = rng.randrange(a[0], a[1])
        elif "normal" in t:
            out[name] = float(round(math.exp(rng.gauss(a[0], a[1])) / a[2]) * a[2]) if t == "qlognormal" else \
                math.exp(rng.gauss(a[0], a[1])) if t == "lognormal" else \
                float(round(rng.gauss(a[0], a[1]) / a[2]) * a[2]) if t == "qnormal" else rng.gauss(a[0], a[1])
        else:
            lo, hi = a[0], a[1]
            v = math.exp(rng.uniform(math.log(lo), math.log(hi))) if "log" in t else rng.uniform(lo, hi)
            if t.startswith("q"):
                v = min(max(round(v / a[2]) * a[2], lo), hi)
            out[name] = float(v)
    return out


#: Model-based tuners refit on every proposal (a GP is O(n^3)): 150 proposals take minutes on a busy machine.
_SLOW = pytest.mark.timeout(1800)
_ROUND_PARAMS = [pytest.param(n, marks=_SLOW) if n in ("GP", "Metis", "SMAC") else n for n in TUNERS]


@pytest.mark.parametrize("name", _ROUND_PARAMS)
def test_three_rounds_of_50_with_import_data_between_stay_valid(name, tmp_path):
    numeric = TUNERS[name][1]
    space = NUMERIC_TYPES if numeric else ALL_TYPES
    tuner = _build(name, tmp_path)
    tuner.update_search_space(space)
    rng = random.Random(7)
    pid = 0
    for round_ in range(3):
        if round_ == 1:
            rows = [_random_params(space, rng) for _ in range(20)]
            for p in rows:
                check_params(space, p)   # the importer itself makes valid sets
            tuner.import_data([{"parameter": p, "value": _loss(p)} for p in rows])
        given = drive(tuner, _loss, 50, first_id=pid, finish=True)
        pid += 50
        assert len(given) == 50, f"{name} ran dry in round {round_} after {len(given)} sets"
        for params in given:
            check_params(space, params)
        # the degenerate and single-value parameters are constants
        assert {p["u0"] for p in given} == {0.25} and {p["ri1"] for p in given} == {5}
        assert {p["qu0"] for p in given} == {4.0} and {p["qlu0"] for p in given} == {8.0}
        assert {p["c1"] for p in given} <= {"only", 7}
        assert all(p["lu0"] == pytest.approx(0.01) for p in given)


SMALL = {"a": {"_type": "choice", "_value": ["x", "y"]}, "b": {"_type": "randint", "_value": [0, 3]},
         "k": {"_type": "uniform", "_value": [1.5, 1.5]}}
SMALL_NUMERIC = {"a": {"_type": "choice", "_value": [1, 2]}, "b": {"_type": "randint", "_value": [0, 3]},
                 "k": {"_type": "quniform", "_value": [2, 2, 1]}}


@pytest.mark.parametrize("name", list(TUNERS))
def test_small_finite_space_exhaustive_tuners_end_the_others_never_run_dry(name, tmp_path):
    _, numeric, exhaustive = TUNERS[name]
    space = SMALL_NUMERIC if numeric else SMALL
    tuner = _build(name, tmp_path)
    tuner.update_search_space(space)
    given = drive(tuner, _loss, 30, finish=True)
    points = {json.dumps(hp(p), sort_keys=True) for p in given}
    for p in given:
        check_params(space, p)
    if exhaustive:
        assert len(given) == 6 and len(points) == 6, (name, len(given))
        with pytest.raises(NoMoreTrialError):
            tuner.generate_parameters(10_000)
    else:
        assert len(given) == 30, f"{name} ran dry after {len(given)} sets of a 6-point space"
        assert len(points) >= 3
