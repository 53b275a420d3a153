"""Runs of optimizers on problems, in batches: ``python -m benchmarks.bbo.run`` reads one job a line.

Prints one JSON line: the losses in the order they were evaluated and the optimizer's own
time (suggest + observe, the problem's evaluation excluded). Runs in the project's venv for
our tuners and in the peers' venv for theirs; imports each library only when asked for it.

Every optimizer sees the same loop: ask ``batch`` suggestions, evaluate all of them, tell all
results, for ``rounds`` rounds (the challenge's 16 x 8; the sequential budget is 60 x 1).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from typing import Any, Callable

import numpy as np

from .problems import PROBLEMS, Problem, random_params

OURS = ("tpe", "tpe_uni", "gp", "smac", "random")   # tpe_uni: TPE with multivariate: false
PEERS = ("hebo", "optuna_tpe", "optuna_gp", "smac_peer", "random_peer")

Suggest = Callable[[int], list[dict[str, Any]]]
Observe = Callable[[list[dict[str, Any]], list[float]], None]


def drive(problem: Problem, suggest: Suggest, observe: Observe, rounds: int, batch: int) -> dict:
    losses: list[float] = []
    spent = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        params = suggest(batch)
        spent += time.perf_counter() - t0
        if not params:   # the optimizer has nothing left to propose
            break
        values = [problem.evaluate(p) for p in params]
        losses.extend(values)
        t0 = time.perf_counter()
        observe(params, values)
        spent += time.perf_counter() - t0
    return {"losses": losses, "optimizer_seconds": spent}


# ---- ours -----------------------------------------------------------------------------------
def _ours(name: str, problem: Problem, seed: int, budget: int) -> tuple[Suggest, Observe]:
    if name == "tpe":
        from nni.algorithms.hpo.tpe_tuner import TpeTuner
        tuner: Any = TpeTuner(optimize_mode="minimize", seed=seed)
    elif name == "tpe_uni":
        from nni.algorithms.hpo.tpe_tuner import TpeTuner
        tuner = TpeTuner(optimize_mode="minimize", seed=seed, tpe_args={"multivariate": False})
    elif name == "gp":
        from nni.algorithms.hpo.gp_tuner import GPTuner
        tuner = GPTuner(optimize_mode="minimize", seed=seed)
    elif name == "smac":
        from nni.algorithms.hpo.smac_tuner import SMACTuner
        tuner = SMACTuner(optimize_mode="minimize", seed=seed)
    elif name == "random":
        from nni.algorithms.hpo.random_tuner import RandomTuner
        tuner = RandomTuner(seed=seed)
    else:
        raise ValueError(f"unknown tuner {name!r}")
    tuner.update_search_space(problem.nni_space())
    if hasattr(tuner, "set_trial_budget"):
        tuner.set_trial_budget(budget)   # what the manager does with maxTrialNumber
    from nni.errors import NoMoreTrialError
    ids: dict[int, int] = {}   # id(params) -> parameter id
    counter = iter(range(10 ** 9))

    def suggest(n: int) -> list[dict]:
        out = []
        for _ in range(n):
            pid = next(counter)
            try:
                params = tuner.generate_parameters(pid)
            except NoMoreTrialError:   # a finite space used up (kNN's is 100 sets): the run is over
                break
            ids[id(params)] = pid
            out.append(params)
        return out

    def observe(params: list[dict], values: list[float]) -> None:
        for p, v in zip(params, values):
            pid = ids.pop(id(p))
            tuner.receive_trial_result(pid, p, v)
            tuner.trial_end(pid, True)

    return suggest, observe


# ---- peers ----------------------------------------------------------------------------------
def _optuna(name: str, problem: Problem, seed: int, batch: int) -> tuple[Suggest, Observe]:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if name == "optuna_tpe":   # Optuna 5's defaults (multivariate), constant liar for batches
        sampler: Any = optuna.samplers.TPESampler(seed=seed, constant_liar=batch > 1)
    else:
        sampler = optuna.samplers.GPSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    dists: dict[str, Any] = {}
    for key, (kind, scale, lo, hi) in problem.spec.items():
        if kind == "bool":
            dists[key] = CategoricalDistribution([False, True])
        elif kind == "int":
            dists[key] = IntDistribution(lo, hi, log=scale == "log")
        else:
            dists[key] = FloatDistribution(lo, hi, log=scale == "log")
    trials: dict[int, Any] = {}

    def suggest(n: int) -> list[dict]:
        out = []
        for _ in range(n):
            trial = study.ask(dists)
            params = dict(trial.params)
            trials[id(params)] = trial
            out.append(params)
        return out

    def observe(params: list[dict], values: list[float]) -> None:
        for p, v in zip(params, values):
            study.tell(trials.pop(id(p)), v)

    return suggest, observe


def _hebo(problem: Problem, seed: int) -> tuple[Suggest, Observe]:
    import pandas as pd
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO
    np.random.seed(seed)
    torch.manual_seed(seed)
    params_spec = []
    for key, (kind, scale, lo, hi) in problem.spec.items():
        if kind == "bool":
            params_spec.append({"name": key, "type": "bool"})
        elif kind == "int":
            params_spec.append({"name": key, "type": "pow_int" if scale == "log" else "int", "lb": lo, "ub": hi})
        else:
            params_spec.append({"name": key, "type": "pow" if scale == "log" else "num", "lb": lo, "ub": hi})
    opt = HEBO(DesignSpace().parse(params_spec), scramble_seed=seed)
    frames: dict[int, Any] = {}

    def suggest(n: int) -> list[dict]:
        rec = opt.suggest(n_suggestions=n)
        out = []
        for i in range(len(rec)):
            row = rec.iloc[[i]]
            params = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].to_dict().items()}
            frames[id(params)] = row
            out.append(params)
        return out

    def observe(params: list[dict], values: list[float]) -> None:
        rows = pd.concat([frames.pop(id(p)) for p in params])
        opt.observe(rows, np.asarray(values, dtype=float).reshape(-1, 1))

    return suggest, observe


def _smac(problem: Problem, seed: int, budget: int) -> tuple[Suggest, Observe]:
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
    from smac import HyperparameterOptimizationFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue
    space = ConfigurationSpace(seed=seed)
    for key, (kind, scale, lo, hi) in problem.spec.items():
        if kind == "bool":
            space.add(Categorical(key, [False, True]))
        elif kind == "int":
            space.add(Integer(key, (lo, hi), log=scale == "log"))
        else:
            space.add(Float(key, (lo, hi), log=scale == "log"))
    outdir = tempfile.mkdtemp(prefix="bbo-smac-")
    scenario = Scenario(space, deterministic=True, n_trials=budget, seed=seed, output_directory=outdir)
    smac = HyperparameterOptimizationFacade(scenario, lambda config, seed=0: 0.0, overwrite=True,
                                            logging_level=40)
    infos: dict[int, Any] = {}

    def suggest(n: int) -> list[dict]:
        out = []
        for _ in range(n):
            try:
                info = smac.ask()
            except Exception as exc:   # a finite space used up: the run is over, as for ours
                if type(exc).__name__ in ("ConfigurationSpaceExhaustedException", "StopIteration"):
                    break
                raise
            params = dict(info.config)
            infos[id(params)] = info
            out.append(params)
        return out

    def observe(params: list[dict], values: list[float]) -> None:
        for p, v in zip(params, values):
            smac.tell(infos.pop(id(p)), TrialValue(cost=v))

    return suggest, observe


def _random(problem: Problem, seed: int) -> tuple[Suggest, Observe]:
    rng = np.random.default_rng(seed)
    return (lambda n: [random_params(problem, rng) for _ in range(n)]), (lambda params, values: None)


def run(job: dict) -> dict:
    problem = PROBLEMS[job["problem"]]
    name, seed, rounds, batch = job["optimizer"], int(job["seed"]), int(job["rounds"]), int(job["batch"])
    budget = rounds * batch
    if name in OURS:
        suggest, observe = _ours(name, problem, seed, budget)
    elif name in ("optuna_tpe", "optuna_gp"):
        suggest, observe = _optuna(name, problem, seed, batch)
    elif name == "hebo":
        suggest, observe = _hebo(problem, seed)
    elif name == "smac_peer":
        suggest, observe = _smac(problem, seed, budget)
    elif name == "random_peer":
        suggest, observe = _random(problem, seed)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    return {**job, **drive(problem, suggest, observe, rounds, batch)}


def serve() -> None:
    """One job a line on stdin, one result a line on stdout: a worker that pays the imports once."""
    # Libraries print to stdout (pymoo's "compiled modules" notice): the protocol keeps the real
    # stdout for itself and everything else goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin:
        if line.strip():
            try:
                result = run(json.loads(line))
            except Exception as exc:   # one broken run must not end the study
                result = {**json.loads(line), "error": f"{type(exc).__name__}: {exc}"}
            protocol.write(json.dumps(result) + "\n")
            protocol.flush()


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    serve()
