"""This project's tuners on the benchmark problems, driven in-process through the Tuner API."""

from __future__ import annotations

import importlib.util
import time
from collections import deque
from typing import Any

import numpy as np

from .problems import PROBLEMS

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


def needs_numeric(name: str) -> bool:
    """GP and Metis refuse non-numeric choices and nested spaces."""
    return name in ("gp", "metis")


def make_tuner(name: str, seed: int) -> Any:
    """A fresh tuner, minimizing, seeded."""
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
    losses: list[float] = []
    pending: deque = deque()
    spent = 0.0
    asked = 0
    while len(losses) < budget:
        while len(pending) < parallel and asked < budget:
            t0 = time.perf_counter()
            params = tuner.generate_parameters(asked)
            spent += time.perf_counter() - t0
            pending.append((asked, params))
            asked += 1
        pid, params = pending.popleft()
        loss = prob.fn(params)
        t0 = time.perf_counter()
        tuner.receive_trial_result(pid, params, loss)
        tuner.trial_end(pid, True)
        spent += time.perf_counter() - t0
        losses.append(loss)
    return {"losses": losses, "tuner_seconds": spent}


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
    t0 = time.perf_counter()
    done = 0
    while done < k:
        params = tuner.generate_parameters(done)
        tuner.receive_trial_result(done, params, prob.fn(params))
        done += 1
        if done >= 2 and time.perf_counter() - t0 > 20:
            break   # slow tuners (GP at 1,000 results): a few suggestions are enough to measure
    return {"ms": 1000 * (time.perf_counter() - t0) / done, "k": done}
