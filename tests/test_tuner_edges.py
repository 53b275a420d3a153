"""Tuners and assessors at the edges (issue 31, items 1-10): NNI's semantics where ours
differed, and no crash when the search space changes while trials run.

Each test quotes the NNI behaviour it checks (NNI's source, ``microsoft/nni``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nni.algorithms.hpo.bohb_advisor import BOHB
from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor
from nni.algorithms.hpo.gridsearch_tuner import GridSearchTuner
from nni.algorithms.hpo.hyperband_advisor import Hyperband
from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor
from nni.algorithms.hpo.pbt_tuner import PBTTuner
from nni.algorithms.registry import builtin_algorithms, create_algorithm
from nni.assessor import AssessResult
from nni.errors import NoMoreTrialError
from nni.search_space._flat import encode

from conftest import wait_for
from tuner_driving import hp

# ---- 1 and 10: Curvefitting ---------------------------------------------------------------


def _loss_curve(scale: float = 1.0) -> list[float]:
    """A power-law loss curve over 20 epochs (ends at 0.45 x scale)."""
    return [scale * (0.2 + 2.0 * x ** -0.7) for x in range(1, 21)]


def _verdicts(assessor: CurvefittingAssessor, trial: str, curve: list[float]) -> list[AssessResult]:
    return [assessor.assess_trial(trial, curve[:i]) for i in range(1, len(curve) + 1)]


def test_curvefitting_minimize_keeps_a_curve_like_the_best_and_a_better_one_stops_a_worse_one():
    assessor = CurvefittingAssessor(epoch_num=20, start_step=6, optimize_mode="minimize", seed=0)
    best = _loss_curve()
    _verdicts(assessor, "best", best)
    assessor.trial_end("best", True)
    assert assessor.completed_best_performance == pytest.approx(best[-1])
    # The same curve again: the best trial itself must never be stopped (it was Bad at 13 of
    # the 14 checks before: the model predicts a loss well above where the curve ends).
    same = _verdicts(assessor, "same", best)
    assert AssessResult.Bad not in same
    # A curve ending 26 % lower (better) is never stopped either.
    better = _verdicts(assessor, "better", _loss_curve(0.74))
    assert AssessResult.Bad not in better
    # One ending 60 % higher is stopped (the assessor still does its job).
    worse = _verdicts(assessor, "worse", _loss_curve(1.6))
    assert AssessResult.Bad in worse


def test_curvefitting_takes_nnis_class_args():
    # NNI's validator: ``'start_step': self.range('start_step', int, 0, 9999)``,
    # ``'threshold': self.range('threshold', float, 0, 9999)``; its docs' example uses threshold 9.
    assert CurvefittingAssessor(epoch_num=20, start_step=0).start_step == 0
    assert CurvefittingAssessor(epoch_num=20, start_step=6, threshold=9).threshold == 9.0
    assert CurvefittingAssessor(epoch_num=20, threshold=1.5).threshold == 1.5
    with pytest.raises(ValueError, match="threshold"):
        CurvefittingAssessor(threshold=-1)


def test_curvefitting_judges_at_and_after_epoch_num():
    # NNI's assess_trial has no upper bound on the step: it judges whenever
    # ``curr_step >= start_step`` (and the gap allows), also at or past ``epoch_num``.
    assessor = CurvefittingAssessor(epoch_num=5, start_step=3, seed=0)
    best = [0.5 + 0.4 * (1 - math.exp(-0.5 * x)) for x in range(1, 6)]
    assessor.assess_trial("best", best)
    assessor.trial_end("best", True)
    low = [0.3 + 0.1 * (1 - math.exp(-0.5 * x)) for x in range(1, 9)]
    verdicts = _verdicts(assessor, "low", low)
    assert verdicts[4:] == [AssessResult.Bad] * 4   # steps 5..8: epoch_num and beyond


# ---- 2 and 3: GridSearch ----------------------------------------------------------------

def _grid(space: dict, n: int) -> list:
    tuner = GridSearchTuner()
    tuner.update_search_space(space)
    out = []
    for i in range(n):
        try:
            out.append(tuner.generate_parameters(i))
        except NoMoreTrialError:
            out.append("end")
            break
    return out


def test_grid_follows_nnis_documented_example_order():
    # NNI's gridsearch_tuner.py comment: space x: choices(5, 7), y: normal(0, 1), z: quniform(2, 3, 1);
    # "generated parameters: (5,0,2) (7,0,2)" in the first epoch, then
    # "(5,0,3) (5,-0.67,2) (5,-0.67,3) (5,0.67,2) (5,0.67,3) (7,0,3) (7,-0.67,2) (7,-0.67,3)
    #  (7,0.67,2) (7,0.67,3)".
    space = {"x": {"_type": "choice", "_value": [5, 7]}, "y": {"_type": "normal", "_value": [0, 1]},
             "z": {"_type": "quniform", "_value": [2, 3, 1]}}
    got = [(p["x"], round(p["y"], 2), p["z"]) for p in _grid(space, 12)]
    assert got == [(5, 0, 2), (7, 0, 2),
                   (5, 0, 3), (5, -0.67, 2), (5, -0.67, 3), (5, 0.67, 2), (5, 0.67, 3),
                   (7, 0, 3), (7, -0.67, 2), (7, -0.67, 3), (7, 0.67, 2), (7, 0.67, 3)]


def test_grid_lists_a_quantized_range_coarse_to_fine_from_the_middle():
    # NNI: "The first epoch only explores middle point of uniform and normal parameters ...
    # Then in third epoch it adds [1/8, 3/8, 5/8, 7/8]" - q-types are not categorical there.
    xs = [p["x"] for p in _grid({"x": {"_type": "qloguniform", "_value": [1e-5, 1, 1e-5]}}, 7)]
    assert xs[:3] == [pytest.approx(0.00316), pytest.approx(0.00018), pytest.approx(0.05623)]
    assert min(xs) > 1e-5 * 3 and max(xs) > 0.2   # 7 points already span the range
    ints = _grid({"x": {"_type": "quniform", "_value": [0, 10, 1]}}, 20)
    assert ints[-1] == "end"   # then the grid is used up: every value of the range, once
    ints = [p["x"] for p in ints[:-1]]
    assert ints[:3] == [5.0, 2.0, 8.0]
    assert sorted(ints) == [float(i) for i in range(11)]


GRID_QNORMAL = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from nni.algorithms.hpo.gridsearch_tuner import GridSearchTuner
t = GridSearchTuner()
t.update_search_space(json.loads(sys.argv[1]))
print(json.dumps([t.generate_parameters(i) for i in range(int(sys.argv[2]))]))
"""


def _grid_in_subprocess(space: dict, n: int) -> list:
    """The first ``n`` grid points, computed in a child under a memory cap (the old grid grew without bound)."""
    out = subprocess.run([sys.executable, "-c", GRID_QNORMAL, json.dumps(space), str(n)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_grid_on_qnormal_stops_splitting_what_rounds_alike():
    # NNI's _next_grid only halves an interval whose ends differ after rounding
    # (``diff_l = _less(l, mid, spec)``), so a quantized normal's grid does not double
    # forever: here 12 values come at once (before, the 12th had not come after minutes).
    params = _grid_in_subprocess({"a": {"_type": "qnormal", "_value": [0, 1, 1]}}, 12)
    assert [p["a"] for p in params[:5]] == [0.0, -1.0, 1.0, -2.0, 2.0]
    assert len({p["a"] for p in params}) == 12
    mixed = _grid_in_subprocess({"a": {"_type": "qnormal", "_value": [0, 1, 1]},
                                 "b": {"_type": "qlognormal", "_value": [0, 1, 1]}}, 40)
    assert mixed[0] == {"a": 0.0, "b": 1.0}
    assert len({json.dumps(p, sort_keys=True) for p in mixed}) == 40


# ---- 4: a search-space update while trials run -------------------------------------------

SPACE_A = {"x": {"_type": "uniform", "_value": [0, 1]}, "c": {"_type": "choice", "_value": [1, 2]}}
SPACE_B = {"x": {"_type": "uniform", "_value": [0, 2]}, "c": {"_type": "choice", "_value": [1, 2, 3]},
           "y": {"_type": "quniform", "_value": [1, 5, 1]}}
SPACE_C = {"y": {"_type": "quniform", "_value": [1, 100, 1]}}
_ALIASES = {"RegularizedEvolutionTuner", "BatchTuner", "PBTTuner", "GPTuner", "MetisTuner", "DNGOTuner"}
TUNER_NAMES = sorted(set(builtin_algorithms("tuner")) - _ALIASES - {"Batch"})


def _tuner(name: str, tmp_path) -> object:
    args = {"all_checkpoint_dir": str(tmp_path / "ckpt"), "population_size": 4} if name == "PBT" else {}
    tuner = create_algorithm("tuner", name=name, class_args=args)
    if name in ("MOTPE", "NSGA2"):
        tuner.set_objectives([{"metric": "a", "mode": "minimize"}, {"metric": "b", "mode": "minimize"}])
    return tuner


@pytest.mark.parametrize("name", TUNER_NAMES)
def test_every_tuner_goes_on_after_a_search_space_update_with_trials_running(name, tmp_path):
    """Three trials run in space A; the space gains a parameter (B), then loses two (C).

    NNI's Hyperband, BOHB and PBT crashed here (IndexError: queued configurations kept the
    old space's vectors) and the experiment went to ERROR.
    """
    tuner = _tuner(name, tmp_path)
    tuner.update_search_space(SPACE_A)
    running: list[tuple[int, dict]] = []
    next_id = 0

    def fill(keys: set[str]) -> None:
        nonlocal next_id
        while len(running) < 3:
            try:
                params = tuner.generate_parameters(next_id)
            except NoMoreTrialError:
                return
            assert set(hp(params)) == keys, params
            running.append((next_id, params))
            next_id += 1

    def finish_one() -> None:
        pid, params = running.pop(0)
        value = float(hp(params).get("x", 0) + hp(params).get("y", 0))
        tuner.receive_trial_result(pid, params, {"a": value, "b": -value} if name in ("MOTPE", "NSGA2") else value)
        tuner.trial_end(pid, True)

    fill({"x", "c"})
    assert len(running) == 3
    tuner.update_search_space(SPACE_B)
    given_in_b = 0
    for _ in range(30):
        if running:
            finish_one()
        before = next_id
        fill({"x", "c", "y"})
        given_in_b += next_id - before
    assert given_in_b >= 5
    tuner.update_search_space(SPACE_C)
    given_in_c = 0
    for _ in range(15):
        if running:
            finish_one()
        before = next_id
        fill({"y"})
        given_in_c += next_id - before
    assert given_in_c >= 3


HYPERBAND_TRIAL = """
import nni, pathlib, time
params = nni.get_next_parameter()
flag = pathlib.Path({flag!r})
deadline = time.time() + 240
while not flag.exists() and time.time() < deadline:   # the first trials run until the space changed
    time.sleep(0.2)
nni.report_final_result(params["x"] + params.get("y", 0))
"""


def test_hyperband_experiment_survives_a_space_update_while_three_trials_run(make_experiment, tmp_path):
    flag = tmp_path / "space-updated"
    exp = make_experiment(HYPERBAND_TRIAL.format(flag=str(flag)), SPACE_A,
                          concurrency=3, max_trials=6)
    exp.config.tuner.name = "Hyperband"
    exp.config.tuner.class_args = {"R": 3, "eta": 3, "optimize_mode": "maximize", "seed": 1}
    exp.start(port=0)
    wait_for(lambda: sum(j.status == "RUNNING" for j in exp.list_trial_jobs()) == 3, timeout=180,
             what="three running trials")
    exp.update_search_space(SPACE_B)            # the REST route nnictl update searchspace uses
    flag.write_text("yes")
    wait_for(lambda: exp.get_status() == "ERROR" or (
        len(exp.list_trial_jobs()) == 6 and all(j.status == "SUCCEEDED" for j in exp.list_trial_jobs())),
        timeout=240, what="six trials to succeed (or the experiment to fail)")
    assert exp.get_status() != "ERROR"
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 6 and all(j.status == "SUCCEEDED" for j in jobs)
    later = [j.hyperParameters[0].parameters for j in jobs[3:]]
    assert all("y" in p and "TRIAL_BUDGET" in p for p in later), later


# ---- 5: PBT's explore ---------------------------------------------------------------------

def test_pbt_explore_moves_by_range_times_factor_by_q_and_by_one(tmp_path):
    # NNI's exploit_and_explore: uniform ``perturb = (ub - lb) * factor; uv = hyper_parameter + perturb``;
    # quniform ``multi = round(hyper_parameter / q); uv = (multi + 1) * q``; randint ``uv = hyper_parameter + 1``.
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path), resample_probability=0.0, factor=0.2, seed=3)
    space = {"q": {"_type": "quniform", "_value": [0, 10, 1]}, "u": {"_type": "uniform", "_value": [-1, 1]},
             "r": {"_type": "randint", "_value": [0, 100]}}
    tuner.update_search_space(space)
    start = np.array(encode(tuner._dims, {"q": 2.0, "u": 0.0, "r": 3}), dtype=float)
    moved = [tuner._explore(start) for _ in range(40)]
    q_values = {float(v[0]) for v in moved}
    u_values = {round(float(v[1]), 6) for v in moved}
    r_values = {int(v[2]) for v in moved}
    assert q_values == {1.0, 3.0}          # was stuck at 2 (2 x 1.2 and 2 x 0.8 round to 2)
    assert u_values == {-0.4, 0.4}         # was stuck at 0 (0 x anything)
    assert r_values == {2, 4}


# ---- 6: Medianstop ------------------------------------------------------------------------

@pytest.mark.parametrize("mode, completed, running, expected", [
    # NNI: maximize ``median = avg_array[(len(avg_array)-1) // 2]`` (the lower middle value)
    ("maximize", [0.4, 0.6], 0.45, AssessResult.Good),
    ("maximize", [0.4, 0.6], 0.35, AssessResult.Bad),
    # NNI: minimize ``median = avg_array[len(avg_array) // 2]`` (the upper middle value)
    ("minimize", [0.4, 0.6], 0.55, AssessResult.Good),
    ("minimize", [0.4, 0.6], 0.65, AssessResult.Bad),
])
def test_medianstop_takes_nnis_middle_value_of_an_even_count(mode, completed, running, expected):
    assessor = MedianstopAssessor(optimize_mode=mode)
    for i, value in enumerate(completed):
        assessor.assess_trial(f"done{i}", [value])
        assessor.trial_end(f"done{i}", True)
    assert assessor.assess_trial("running", [running]) is expected


# ---- 7: Hyperband ranks a run without a final result by its last intermediate result ------

def test_hyperband_ranks_a_run_without_final_result_by_its_last_intermediate_result():
    # NNI's advisor: ``set_config_perf(int(i), data['parameter_id'], data['sequence'], value)`` for
    # each PERIODICAL metric; the FINAL one replaces it. A run that dies keeps its last one.
    tuner = Hyperband(R=3, eta=3, optimize_mode="maximize", seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    first = [tuner.generate_parameters(i) for i in range(3)]   # bracket s=1: 3 configurations at budget 1
    assert [p["TRIAL_BUDGET"] for p in first] == [1, 1, 1]
    tuner.receive_trial_result(0, first[0], 0.5)
    tuner.trial_end(0, True)
    tuner.receive_intermediate_result(1, 0.7)
    tuner.receive_intermediate_result(1, 0.9)      # then it fails without a final result
    tuner.trial_end(1, False)
    tuner.receive_trial_result(2, first[2], 0.1)
    tuner.trial_end(2, True)
    promoted = tuner.generate_parameters(3)
    assert promoted["TRIAL_BUDGET"] == 3
    assert promoted["x"] == first[1]["x"]           # 0.9 is the best of the rung


# ---- 8: BOHB keeps a good categorical option with 1 - bandwidth ---------------------------

def test_bohb_keeps_the_good_categorical_option_with_one_minus_bandwidth():
    # NNI's BOHB config generator: ``if np.random.rand() < (1-bw): vector.append(int(m))``
    # ``else: vector.append(np.random.randint(t))`` - bw_factor only widens numeric kernels.
    tuner = BOHB(seed=0, bandwidth_factor=3)
    tuner.update_search_space({"c": {"_type": "choice", "_value": ["a", "b", "c", "d"]}})
    bandwidth = np.array([0.1])
    kept = np.mean([tuner._sample_near(np.array([0.0]), bandwidth)[0] == 0.0 for _ in range(3000)])
    # expected 1 - 0.1 + 0.1 / 4 = 0.925 (was 1 - 0.3 + 0.3 / 4 = 0.775)
    assert 0.9 < kept < 0.95


# ---- 9: TPE_legacy's good group is hyperopt's ----------------------------------------------

def test_tpe_legacy_good_group_is_gamma_times_sqrt_n():
    # hyperopt's tpe.py (NNI 2.x's TPE ran on it): ``n_below = min(int(np.ceil(gamma *
    # np.sqrt(len(l_vals)))), gamma_cap)`` with gamma 0.25 and gamma_cap 25.
    from nni.algorithms.hpo.hyperopt_tuner import classic_n_good
    assert classic_n_good(100, 0.25) == 3
    assert classic_n_good(20, 0.25) == 2
    assert classic_n_good(100_000, 0.25) == 25
    tuner = create_algorithm("tuner", name="TPE_legacy", class_args={"optimize_mode": "minimize", "seed": 1})
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    # 100 results: the best 3 (near 0.1) form the good group; with 25 the 22 next best (near 1) join it
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, 100)
    xs[:3] = [0.101, 0.102, 0.103]
    tuner.import_data([{"parameter": {"x": float(x)}, "value": abs(float(x) - 0.1) if i < 3 else 2 - float(x)}
                       for i, x in enumerate(xs)])
    proposals = np.array([tuner.generate_parameters(i)["x"] for i in range(30)])
    assert np.mean(proposals > 0.5) < 0.2    # with a good group of 25 they all went near 1


FAILING_AT_BUDGET_1 = """
import nni, sys
params = nni.get_next_parameter()
nni.report_intermediate_result(params["x"])
if params["TRIAL_BUDGET"] == 1:
    sys.exit(1)              # fails without a final result: ranked by the intermediate one
nni.report_final_result(params["x"])
"""


def test_hyperband_experiment_promotes_the_failed_run_with_the_best_intermediate_result(make_experiment):
    """Through the manager: it gives intermediate results to Hyperband, which ranks failed runs by them."""
    exp = make_experiment(FAILING_AT_BUDGET_1, {"x": {"_type": "uniform", "_value": [0, 1]}},
                          concurrency=3, max_trials=4)
    exp.config.tuner.name = "Hyperband"
    exp.config.tuner.class_args = {"R": 3, "eta": 3, "optimize_mode": "maximize", "seed": 4, "exec_mode": "serial"}
    exp.start(port=0)
    wait_for(lambda: len(exp.list_trial_jobs()) == 4 and exp.list_trial_jobs()[3].status in ("SUCCEEDED", "FAILED"),
             timeout=240, what="the promoted trial to end")
    jobs = exp.list_trial_jobs()
    first = [j.hyperParameters[0].parameters["x"] for j in jobs[:3]]
    assert [j.status for j in jobs[:3]] == ["FAILED"] * 3
    assert max(first) != first[0]   # (the seed) ranking every failed run as the worst promotes the first
    promoted = jobs[3].hyperParameters[0].parameters
    assert promoted["TRIAL_BUDGET"] == 3 and promoted["x"] == max(first)
