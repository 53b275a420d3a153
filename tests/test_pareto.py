"""Pareto dominance, fronts, crowding distance, hypervolume and objectives parsing
(hand-checked cases), and the MOTPE and NSGA2 tuners run in-process over every space type."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nni._objectives import Objective, ObjectiveValueError, objective_values, parse_objectives
from nni.algorithms.hpo._pareto import (
    constrained_ranks,
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_contributions,
    non_dominated_mask,
    non_dominated_sort,
)
from nni.algorithms.hpo.motpe_tuner import MOTPETuner, split_good_bad
from nni.algorithms.hpo.nsga2_tuner import NSGA2Tuner, select_population
from nni.algorithms.registry import AlgorithmError, create_algorithm
from nni.errors import NoMoreTrialError
from test_tuners import FULL_SPACE, check_params

MM = ["minimize", "maximize"]


# ---- dominance and fronts ---------------------------------------------------------------------
def test_dominance_with_mixed_directions():
    # accuracy up, latency down
    modes = ["maximize", "minimize"]
    assert dominates([0.9, 3.0], [0.8, 4.0], modes)
    assert dominates([0.9, 3.0], [0.9, 4.0], modes)          # tie on one, better on the other
    assert not dominates([0.9, 3.0], [0.9, 3.0], modes)      # equal points do not dominate
    assert not dominates([0.9, 5.0], [0.8, 4.0], modes)      # a trade-off
    assert not dominates([0.8, 4.0], [0.9, 3.0], modes)
    assert dominates([1.0, 2.0], [1.0, 3.0])                 # default: all minimised
    assert not dominates([1.0, 2.0], [1.0, 3.0], ["minimize", "maximize"])


def test_front_with_ties_and_duplicates():
    Y = [[1, 5], [2, 3], [2, 3], [3, 3], [4, 1], [5, 5], [1, 5]]
    ranks = non_dominated_sort(Y)
    # both copies of (2, 3) and of (1, 5) are on the front; (3, 3) ties (2, 3) on f1 and loses on f0
    assert ranks.tolist() == [0, 0, 0, 1, 0, 2, 0]
    assert non_dominated_mask(Y).tolist() == [True, True, True, False, True, False, True]


def test_front_respects_modes_and_nan():
    Y = [[0.9, 10.0], [0.95, 20.0], [0.8, 5.0], [0.85, 30.0], [float("nan"), 1.0]]
    ranks = non_dominated_sort(Y, ["maximize", "minimize"])
    # (0.85, 30) is dominated by (0.9, 10) and (0.95, 20); the NaN row comes last
    assert ranks.tolist() == [0, 0, 0, 1, 2]


def test_three_objective_fronts_match_brute_force():
    rng = np.random.default_rng(0)
    Y = rng.integers(0, 4, size=(40, 3)).astype(float)
    ranks = non_dominated_sort(Y)
    remaining = set(range(len(Y)))
    level = 0
    while remaining:
        front = {i for i in remaining if not any(dominates(Y[j], Y[i]) for j in remaining)}
        assert {i for i in range(len(Y)) if ranks[i] == level} == front
        remaining -= front
        level += 1


def test_crowding_distance_hand_checked():
    Y = [[0, 4], [1, 2], [2, 1], [4, 0]]
    d = crowding_distance(Y)
    assert math.isinf(d[0]) and math.isinf(d[3])
    # (1, 2): f0 gap 2/4, f1 gap 3/4 -> 1.25;  (2, 1): f0 gap 3/4, f1 gap 2/4 -> 1.25
    assert d[1] == pytest.approx(1.25) and d[2] == pytest.approx(1.25)
    assert all(math.isinf(v) for v in crowding_distance([[1, 2], [2, 1]]))


# ---- hypervolume ---------------------------------------------------------------------------------
def test_hypervolume_2d_hand_checked():
    Y = [[1, 3], [2, 2], [3, 1], [2, 2], [3, 3], [0.5, 4]]
    # three steps of area 3 + 2 + 1; the duplicate and the dominated point add nothing,
    # (0.5, 4) does not beat the reference point in f1
    assert hypervolume(Y, [4, 4]) == pytest.approx(6.0)
    assert hypervolume([], [4, 4]) == 0.0
    assert hypervolume([[5, 5]], [4, 4]) == 0.0


def test_hypervolume_maximised_objective():
    # accuracy (maximise) and latency (minimise); reference: accuracy 0, latency 10
    Y = [[0.9, 5.0], [0.5, 1.0]]
    # (0.9-0)*(10-5) + (0.5-0)*(5-1) = 4.5 + 2.0
    assert hypervolume(Y, [0.0, 10.0], ["maximize", "minimize"]) == pytest.approx(6.5)


def test_hypervolume_3d_hand_checked():
    assert hypervolume([[1, 1, 1]], [2, 2, 2]) == pytest.approx(1.0)
    # two unit-offset boxes of volume 2*1*1 = 2 and 1*2*1 = 2 overlapping in 1*1*1: union 3
    Y = [[0, 1, 1], [1, 0, 1]]
    assert hypervolume(Y, [2, 2, 2]) == pytest.approx(3.0)
    # three corners of a 2-cube plus a dominated point: 3 * 2*2*1 boxes... computed by inclusion-exclusion
    Y = [[0, 1, 1], [1, 0, 1], [1, 1, 0], [1.5, 1.5, 1.5]]
    # each box 2x1x1 along one axis within [0,2]^3 shifted: |A|=|B|=|C|=2, pairwise overlaps 1, triple 1
    assert hypervolume(Y, [2, 2, 2]) == pytest.approx(2 + 2 + 2 - 1 - 1 - 1 + 1)


def test_hypervolume_many_objectives_is_seeded_monte_carlo():
    Y = [[0.5, 0.5, 0.5, 0.5], [0.25, 1, 1, 1]]
    exact = 0.5 ** 4 + 0.75 * 0.0 + 0.0   # the second point only adds volume where f1<0.5 region...
    # exact by inclusion-exclusion: |A| = 0.5^4, |B| = 1.75*1*1*1 within ref 2 -> compute both
    ref = [2, 2, 2, 2]
    a = 1.5 ** 4
    b = 1.75 * 1 * 1 * 1
    ab = 1.5 * 1 * 1 * 1     # the intersection: [0.5,2] x [1,2]^3
    exact = a + b - ab
    est = hypervolume(Y, ref, seed=3)
    assert est == hypervolume(Y, ref, seed=3)               # same seed, same value
    assert est == pytest.approx(exact, rel=0.02)


def test_hypervolume_contributions():
    Y = [[1, 3], [2, 2], [3, 1], [3, 3], [2, 2]]
    c = hypervolume_contributions(Y, [4, 4])
    assert c[0] == pytest.approx(1.0) and c[2] == pytest.approx(1.0)
    assert c[1] == 0.0 and c[4] == 0.0   # duplicates: removing one copy loses nothing
    assert c[3] == 0.0                   # dominated
    # removing a front point can expose a dominated one: only the difference counts
    c = hypervolume_contributions([[1, 1], [2, 2]], [3, 3])
    assert c[0] == pytest.approx(4 - 1) and c[1] == 0.0


def test_constrained_ranks():
    Y = [[1, 1], [2, 2], [0, 0], [0, 5]]
    violation = np.array([0.0, 0.0, 2.0, 0.5])   # total violations (nni/_constraints.py)
    # feasible ones first by dominance, then the infeasible by violation
    assert constrained_ranks(Y, violation).tolist() == [0, 1, 3, 2]


# ---- objectives -----------------------------------------------------------------------------------
def test_parse_objectives_names_the_wrong_entry():
    objs = parse_objectives([{"metric": "accuracy", "mode": "Maximize"}, {"metric": "latency"}])
    assert objs == [Objective("accuracy", "maximize"), Objective("latency", "minimize")]
    with pytest.raises(ValueError, match=r"objectives\[1\]\.mode"):
        parse_objectives([{"metric": "a"}, {"metric": "b", "mode": "up"}])
    with pytest.raises(ValueError, match=r"objectives\[0\]\.metric"):
        parse_objectives([{"mode": "minimize"}])
    with pytest.raises(ValueError, match=r"objectives\[1\]\.metric 'a' is given twice"):
        parse_objectives([{"metric": "a"}, {"metric": "a", "mode": "maximize"}])
    with pytest.raises(ValueError, match="at least one"):
        parse_objectives([])
    with pytest.raises(ValueError, match=r"unknown field.*'direction'"):
        parse_objectives([{"metric": "a", "direction": "minimize"}])


def test_objective_values_says_which_key_is_wrong():
    objs = parse_objectives([{"metric": "acc", "mode": "maximize"}, {"metric": "ms"}])
    assert objective_values({"acc": 0.9, "ms": 3, "other": "x"}, objs) == [0.9, 3.0]
    assert objective_values('{"acc": 0.9, "ms": 3}', objs) == [0.9, 3.0]
    for value, key in [({"acc": 0.9}, "ms"), ({"acc": float("nan"), "ms": 1}, "acc"),
                       ({"acc": 0.9, "ms": float("inf")}, "ms"), ({"acc": "high", "ms": 1}, "acc"),
                       ({"acc": True, "ms": 1}, "acc"), (0.9, None)]:
        with pytest.raises(ObjectiveValueError) as info:
            objective_values(value, objs)
        assert info.value.key == key


# ---- tuners ----------------------------------------------------------------------------------------
OBJECTIVES = [{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}]


def full_objectives(p: dict) -> dict:
    """Two conflicting objectives over FULL_SPACE: 'acc' wants u high and 'tanh', 'cost' wants u low."""
    acc = p["u"] + (0.5 if p["c"] == "tanh" else 0.0) - 0.01 * abs(p["n"] - 10)
    cost = (p["u"] + 1.5) ** 2 + (0.3 if p["model"] == "none" else 0.0)
    return {"default": acc, "acc": acc, "cost": cost}


def drive(tuner, objective, n: int, concurrency: int = 3) -> tuple[list[dict], list[dict]]:
    """Like the manager: up to ``concurrency`` pending trials, the oldest finishes first."""
    given, values, running, pid = [], [], [], 0
    while len(given) < n or running:
        if len(given) < n and len(running) < concurrency:
            params = tuner.generate_parameters(pid)
            given.append(params)
            running.append((pid, params))
            pid += 1
            continue
        done_id, done_params = running.pop(0)
        v = objective(done_params)
        values.append(v)
        tuner.receive_trial_result(done_id, done_params, v)
        tuner.trial_end(done_id, True)
    return given, values


def make(kind: str, seed: int = 0, **kw):
    cls = {"motpe": MOTPETuner, "nsga2": NSGA2Tuner}[kind]
    defaults = {"motpe": {"n_startup_jobs": 8}, "nsga2": {"population_size": 8}}[kind]
    return cls(objectives=OBJECTIVES, seed=seed, **{**defaults, **kw})


@pytest.mark.parametrize("kind", ["motpe", "nsga2"])
def test_tuner_covers_every_space_type(kind):
    tuner = make(kind)
    tuner.update_search_space(FULL_SPACE)
    given, _ = drive(tuner, full_objectives, 60, concurrency=4)
    for p in given:
        check_params(p)
    # the model/evolution phase still explores nested branches and every choice
    late = given[20:]
    assert {p["c"] for p in late} >= {"tanh"}
    assert len({json_key(p) for p in given}) == len(given)


def json_key(p: dict) -> str:
    import json
    return json.dumps(p, sort_keys=True)


@pytest.mark.parametrize("kind", ["motpe", "nsga2"])
def test_same_seed_same_suggestions(kind):
    runs = []
    for _ in range(2):
        tuner = make(kind, seed=5)
        tuner.update_search_space(FULL_SPACE)
        runs.append(drive(tuner, full_objectives, 30)[0])
    assert runs[0] == runs[1]
    other = make(kind, seed=6)
    other.update_search_space(FULL_SPACE)
    assert drive(other, full_objectives, 30)[0] != runs[0]


def _zdt1_like(p: dict) -> dict:
    x = [p[f"x{i}"] for i in range(6)]
    g = 1 + 9 * sum(x[1:]) / 5
    f2 = g * (1 - math.sqrt(x[0] / g))
    return {"default": x[0], "f1": x[0], "f2": f2}


ZDT_SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(6)}
ZDT_OBJ = [{"metric": "f1", "mode": "minimize"}, {"metric": "f2", "mode": "minimize"}]


@pytest.mark.parametrize("name", ["MOTPE", "NSGA2"])
def test_tuner_beats_random_on_a_zdt_problem(name):
    """Over 5 seeds, the final hypervolume beats random search with the same budget."""
    def run(tuner_name: str, seed: int) -> float:
        args = {"seed": seed} if tuner_name == "Random" else {"seed": seed, "objectives": ZDT_OBJ}
        tuner = create_algorithm("tuner", name=tuner_name, class_args=args)
        tuner.update_search_space(ZDT_SPACE)
        _, values = drive(tuner, _zdt1_like, 80, concurrency=2)
        return hypervolume([[v["f1"], v["f2"]] for v in values], [1.1, 11.0])
    ours = [run(name, s) for s in range(5)]
    rand = [run("Random", s) for s in range(5)]
    assert np.median(ours) > np.median(rand), (ours, rand)


@pytest.mark.parametrize("kind", ["motpe", "nsga2"])
def test_import_data_and_resume_reproducibility(kind):
    tuner = make(kind, seed=1)
    tuner.update_search_space(FULL_SPACE)
    given, values = drive(tuner, full_objectives, 20)
    data = [{"parameter": p, "value": v} for p, v in zip(given, values)]
    data.append({"parameter": given[0], "value": {"acc": 1.0}})          # lacks 'cost': skipped
    data.append({"parameter": {"bogus": 1}, "value": values[0]})         # does not fit: skipped
    fresh = make(kind, seed=1)
    fresh.update_search_space(FULL_SPACE)
    fresh.import_data(data)
    X, F, _ = fresh._completed()
    assert len(F) == 20
    # imported rows are minimised: acc negated, cost as is
    assert F[0].tolist() == pytest.approx([-values[0]["acc"], values[0]["cost"]])
    # the imported parameter sets are not proposed again
    nxt = [fresh.generate_parameters(100 + i) for i in range(10)]
    assert not {json_key(p) for p in nxt} & {json_key(p) for p in given}
    for p in nxt:
        check_params(p)


@pytest.mark.parametrize("kind", ["motpe", "nsga2"])
def test_result_missing_an_objective_is_not_learned(kind, caplog):
    tuner = make(kind)
    tuner.update_search_space(FULL_SPACE)
    p = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, p, {"acc": 0.5, "cost": float("nan")})
    tuner.receive_trial_result(0, p, {"acc": 0.5})
    assert len(tuner._completed()[1]) == 0
    assert "'cost'" in caplog.text


def test_tuner_without_objectives_says_how_to_set_them():
    tuner = MOTPETuner(seed=0)
    tuner.update_search_space(FULL_SPACE)
    p = tuner.generate_parameters(0)
    with pytest.raises(RuntimeError, match="objectives"):
        tuner.receive_trial_result(0, p, {"a": 1})


def test_finite_space_is_exhausted_without_repeats():
    space = {"a": {"_type": "choice", "_value": [1, 2, 3]}, "b": {"_type": "randint", "_value": [0, 2]}}
    for kind in ("motpe", "nsga2"):
        tuner = make(kind, n_startup_jobs=2) if kind == "motpe" else make(kind, population_size=2)
        tuner.update_search_space(space)
        seen = []
        for i in range(6):
            p = tuner.generate_parameters(i)
            seen.append(json_key(p))
            tuner.receive_trial_result(i, p, {"acc": p["a"], "cost": p["b"]})
        assert len(set(seen)) == 6
        with pytest.raises(NoMoreTrialError):
            tuner.generate_parameters(6)


def test_motpe_good_group_is_the_front_spread_by_hypervolume():
    # 6 points on a front and 4 dominated: a good group of 3 keeps the two ends and a middle one
    F = np.array([[0, 5], [1, 4], [2, 2.9], [3, 2], [4, 1], [5, 0], [5, 5], [4, 4], [3, 3], [6, 6]], float)
    good, bad = split_good_bad(F, 3)
    assert set(good.tolist()) <= {0, 1, 2, 3, 4, 5}
    assert len(good) == 3 and len(bad) == 7
    # a good group larger than the front takes the whole front, then the next front
    good, _ = split_good_bad(F, 8)
    assert set(good.tolist()) >= {0, 1, 2, 3, 4, 5}


def test_nsga2_selection_keeps_fronts_then_crowding():
    F = np.array([[0, 4], [1, 3], [1.1, 2.9], [4, 0], [5, 5], [6, 6]], float)
    idx, ranks, _ = select_population(F, np.zeros(len(F)), 3)
    # the front has 4 points; the extremes have infinite crowding distance, and of the two close
    # middle points only one stays
    assert set(idx.tolist()) >= {0, 3} and len(idx) == 3 and set(ranks.tolist()) == {0}
    assert len(set(idx.tolist()) & {1, 2}) == 1


def test_nsga2_constraints_steer_to_feasible_region():
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}

    def fn(p):   # feasible only for x >= 0.6
        return {"f1": p["x"], "f2": 1 - p["x"] + p["y"], "c": 0.6 - p["x"]}

    def late_feasible_share(constraints):
        tuner = NSGA2Tuner(objectives=[{"metric": "f1"}, {"metric": "f2"}], constraints=constraints, seed=0,
                           population_size=10)
        tuner.update_search_space(space)
        _, values = drive(tuner, fn, 80)
        return np.mean([v["c"] <= 0 for v in values[-30:]])

    # random search would be 40 % feasible; unconstrained NSGA-II chases f1 -> 0 (infeasible)
    constrained, free = late_feasible_share(["c"]), late_feasible_share(None)
    assert constrained > 0.6 and constrained > free + 0.3, (constrained, free)


def test_registry_builds_the_multi_objective_tuners():
    t = create_algorithm("tuner", name="motpe", class_args={"objectives": OBJECTIVES, "seed": 1})
    assert isinstance(t, MOTPETuner) and t.multi_objective
    t = create_algorithm("tuner", name="NSGA2", class_args={"population_size": 10})
    assert isinstance(t, NSGA2Tuner) and t.objectives is None
    with pytest.raises(AlgorithmError, match=r"objectives\[0\]\.mode"):
        create_algorithm("tuner", name="NSGA2", class_args={"objectives": [{"metric": "a", "mode": "best"}]})
    with pytest.raises(AlgorithmError, match="population_size"):
        create_algorithm("tuner", name="NSGA2", class_args={"population_size": 1})
    with pytest.raises(AlgorithmError, match="gamma"):
        create_algorithm("tuner", name="MOTPE", class_args={"gamma": 1.5})


def test_benchmark_hypervolume_matches_the_library():
    from benchmarks.multi_objective import hypervolume as bench_hv
    rng = np.random.default_rng(4)
    for k in (2, 3):
        Y = rng.random((50, k)) * 2
        assert bench_hv(Y.tolist(), (1.5,) * k) == pytest.approx(hypervolume(Y, [1.5] * k))


# ---- the Pareto page shows names as text ------------------------------------------------------
#: Markup in a metric name and a parameter name: the page must show it, not run it.
EVIL = "<img src=x onerror=window.__xss=1>"   # no quotes: JSON.stringify shows it unchanged


def test_pareto_page_shows_markup_in_names_as_text(tmp_path):
    """A metric (objective) and a parameter named with an ``<img onerror=...>``, served by a real
    viewer to Chromium: the Pareto page's summary, best list and front table show the names as
    written, no image element is made from them and no script runs."""
    import os
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright
    from test_loop_lag import Manager, fill_store

    metric, parameter = "acc " + EVIL, "lr " + EVIL
    objectives = [{"metric": metric, "mode": "maximize"}, {"metric": "cost", "mode": "minimize"}]

    def point(i: int, n: int) -> tuple[dict, dict]:
        x = (i + 1) / n
        return {parameter: x}, {"default": x, metric: x, "cost": x * x}
    experiment_dir = tmp_path / "experiments" / "markup01"
    space = {parameter: {"_type": "uniform", "_value": [0, 1]}}
    fill_store(experiment_dir / "db" / "nni.sqlite", 6, config={"searchSpace": space, "objectives": objectives},
               point=point)
    viewer = Manager("view", experiment_dir)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(viewer.webui_url)            # its secret becomes the page's cookie
                page.goto(f"http://127.0.0.1:{viewer.port}/pareto")
                page.wait_for_selector("#front tbody tr", timeout=60_000)
                assert page.locator("#front tbody tr").count() == 6          # every result is on the front
                # an image of our own, same address, made after the page's: once its load has
                # failed, theirs (had any been made) have fired their onerror too
                assert page.evaluate("""() => new Promise((resolve) => {
                    const probe = new Image(); probe.onerror = () => resolve(true); probe.src = "x"; })""")
                assert page.evaluate("window.__xss") is None
                assert page.locator("main img").count() == 0
                assert metric in page.inner_text("#front thead")
                assert parameter in page.inner_text("#front tbody")
                assert metric in page.inner_text("#best-list") and metric in page.inner_text("#summary")
                assert not errors, errors
            finally:
                browser.close()
    finally:
        viewer.stop()
