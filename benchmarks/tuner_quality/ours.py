"""This project's tuners on the benchmark problems, driven in-process through the Tuner API."""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

import numpy as np

from .problems import PROBLEMS, drive, time_suggestions

#: GP's random warm-up is lowered from NNI's 100000 to keep the full run under an hour;
#: at these budgets the local search that follows makes up the difference (see docs/benchmarks.md).
GP_WARM_UP = 10000


def available() -> list[str]:
    """Our tuners that can run here (SMAC needs the optional smac package, Evolution its module)."""
    names = ["tpe", "tpe_uni", "gp", "metis", "anneal", "random", "gridsearch"]
    if importlib.util.find_spec("smac") is not None:
        names.insert(2, "smac")
    if importlib.util.find_spec("nni.algorithms.hpo.evolution_tuner") is not None:
        names.insert(-2, "evolution")
    return names


#: Tuners that size themselves by the trial budget (TPE's start-up phase): they get one run per
#: budget, told that budget as ``maxTrialNumber`` would; the others run once to the largest budget.
BUDGET_AWARE = ("tpe",)


def needs_numeric(name: str) -> bool:
    """GP and Metis refuse non-numeric choices and nested spaces."""
    return name in ("gp", "metis")


def _dev_patch() -> None:
    """Development only: ``TUNER_QUALITY_TPE_PATCH='{"module.NAME": value}'`` overrides a
    private constant of the TPE modules (to compare variants on the tuning half)."""
    patch = os.environ.get("TUNER_QUALITY_TPE_PATCH")
    if not patch:
        return
    import nni.algorithms.hpo._parzen as parzen
    import nni.algorithms.hpo.tpe_tuner as tpe
    mods = {"tpe": tpe, "parzen": parzen}
    for key, value in json.loads(patch).items():
        mod, _, name = key.partition(".")
        if mod == "args":
            tpe.TpeArguments.DEFAULTS[name] = value
        else:
            setattr(mods[mod], name, value)


def make_tuner(name: str, seed: int) -> Any:
    """A fresh tuner, minimizing, seeded."""
    _dev_patch()
    if name == "tpe":
        from nni.algorithms.hpo.tpe_tuner import TpeTuner
        return TpeTuner(optimize_mode="minimize", seed=seed)
    if name == "tpe_uni":   # our TPE with independent (univariate) sampling, for comparison
        from nni.algorithms.hpo.tpe_tuner import TpeTuner
        return TpeTuner(optimize_mode="minimize", seed=seed, tpe_args={"multivariate": False})
    if name == "gp":
        from nni.algorithms.hpo.gp_tuner import GPTuner
        return GPTuner(optimize_mode="minimize", seed=seed, selection_num_warm_up=GP_WARM_UP)
    if name == "metis":
        from nni.algorithms.hpo.metis_tuner import MetisTuner
        return MetisTuner(optimize_mode="minimize", seed=seed)
    if name == "smac":
        from nni.algorithms.hpo.smac_tuner import SMACTuner
        return SMACTuner(optimize_mode="minimize", seed=seed)
    if name == "evolution":
        from nni.algorithms.hpo.evolution_tuner import EvolutionTuner
        return EvolutionTuner(optimize_mode="minimize", seed=seed)
    if name == "anneal":
        from nni.algorithms.hpo.hyperopt_tuner import HyperoptTuner
        return HyperoptTuner("anneal", optimize_mode="minimize", seed=seed)
    if name == "gridsearch":   # deterministic: one seed says it all
        from nni.algorithms.hpo.gridsearch_tuner import GridSearchTuner
        return GridSearchTuner()
    if name == "random":
        from nni.algorithms.hpo.random_tuner import RandomTuner
        return RandomTuner(seed=seed)
    raise ValueError(f"unknown tuner {name!r}")


def run(name: str, problem: str, seed: int, budget: int, parallel: int) -> dict:
    """Run ``budget`` trials keeping ``parallel`` of them pending (results come back oldest first)."""
    prob = PROBLEMS[problem]
    tuner = make_tuner(name, seed)
    tuner.update_search_space(prob.space)
    if name in BUDGET_AWARE:
        tuner.set_trial_budget(budget)   # what the manager does with maxTrialNumber
    ids = iter(range(budget))

    def ask() -> tuple[int, dict]:
        pid = next(ids)
        return pid, tuner.generate_parameters(pid)

    def tell(pid: int, params: dict, loss: float) -> None:
        tuner.receive_trial_result(pid, params, loss)
        tuner.trial_end(pid, True)

    return drive(ask, tell, prob, budget, parallel)


def latency(name: str, problem: str, n: int, k: int, seed: int = 0) -> dict:
    """Milliseconds per suggestion (generate + receive) with ``n`` results already stored."""
    prob = PROBLEMS[problem]
    rng = np.random.default_rng(seed)
    tuner = make_tuner(name, seed)
    tuner.update_search_space(prob.space)
    rows = []
    for _ in range(n):   # latency problems are uniform-only
        params = {key: float(rng.uniform(*spec["_value"])) for key, spec in prob.space.items()}
        rows.append({"parameter": params, "value": prob.fn(params)})
    tuner.import_data(rows)

    def suggest_and_report(i: int) -> None:
        params = tuner.generate_parameters(i)
        tuner.receive_trial_result(i, params, prob.fn(params))

    return time_suggestions(suggest_and_report, k)
