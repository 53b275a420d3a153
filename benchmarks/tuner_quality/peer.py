"""The peers (Optuna, hyperopt) on the benchmark problems; runs in a venv that has them.

Usage: ``python -m benchmarks.tuner_quality.peer '<job json>'`` from the repository root;
prints one JSON line with the result.  Does not import ``nni``.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from typing import Any, Iterator

import numpy as np

from .problems import PROBLEMS, apply_q, drive, time_suggestions

#: optuna_tpe: TPESampler's defaults (Optuna 5.0: multivariate); optuna_tpe_uni: multivariate=False
#: (the default before Optuna 5.0); hyperopt_tpe: hyperopt.tpe.suggest
PEERS = ("optuna_tpe", "optuna_tpe_uni", "hyperopt_tpe")


def _is_nested(o: Any) -> bool:
    return isinstance(o, dict) and "_name" in o


def _specs(space: dict, prefix: str) -> Iterator[tuple[str, str, Any, str]]:
    """(key, _type, _value, the peer's parameter name) of each parameter of a (sub)space."""
    for key, spec in space.items():
        if key != "_name":
            yield key, spec["_type"], spec["_value"], prefix + key


# ---- Optuna --------------------------------------------------------------------------------
def optuna_params(trial: Any, space: dict, prefix: str = "") -> dict:
    """Sample NNI-format parameters from an Optuna trial (define-by-run)."""
    out: dict = {}
    for key, t, v, name in _specs(space, prefix):
        spec = space[key]
        if t == "choice":
            i = trial.suggest_categorical(name, list(range(len(v))))
            if _is_nested(v[i]):
                out[key] = {"_name": v[i]["_name"], **optuna_params(trial, v[i], f"{name}/{v[i]['_name']}/")}
            else:
                out[key] = v[i]
        elif t == "randint":
            out[key] = trial.suggest_int(name, int(v[0]), int(v[1]) - 1)
        elif t in ("uniform", "loguniform"):
            out[key] = trial.suggest_float(name, v[0], v[1], log=t == "loguniform")
        elif t == "quniform":
            lo, hi, q = v
            steps = (hi - lo) / q
            if abs(steps - round(steps)) < 1e-9:
                out[key] = trial.suggest_float(name, lo, hi, step=q)
            else:
                out[key] = apply_q(spec, trial.suggest_float(name, lo, hi))
        elif t == "qloguniform":
            out[key] = apply_q(spec, trial.suggest_float(name, v[0], v[1], log=True))
        else:
            raise ValueError(f"benchmark peer: {t} is not used by the problems")
    return out


def _optuna_study(tuner: str, seed: int, parallel: int) -> Any:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    # constant liar only matters with pending trials; set it explicitly (5.0's default is on)
    kwargs: dict = {"seed": seed, "constant_liar": parallel > 1}
    if tuner == "optuna_tpe_uni":
        kwargs["multivariate"] = False
    return optuna.create_study(sampler=optuna.samplers.TPESampler(**kwargs))


def run_optuna(tuner: str, problem: str, seed: int, budget: int, parallel: int) -> dict:
    prob = PROBLEMS[problem]
    study = _optuna_study(tuner, seed, parallel)

    def ask() -> tuple[Any, dict]:
        trial = study.ask()
        return trial, optuna_params(trial, prob.space)

    return drive(ask, lambda trial, params, loss: study.tell(trial, loss), prob, budget, parallel)


# ---- hyperopt ------------------------------------------------------------------------------
def hyperopt_space(space: dict, prefix: str = "") -> dict:
    """NNI search space -> hyperopt space (nested choices become nested hp.choice dicts)."""
    from hyperopt import hp
    out: dict = {}
    for key, t, v, name in _specs(space, prefix):
        if t == "choice":
            opts = [{"_name": o["_name"], **hyperopt_space(o, f"{name}/{o['_name']}/")} if _is_nested(o) else o
                    for o in v]
            out[key] = hp.choice(name, opts)
        elif t == "randint":
            out[key] = hp.randint(name, int(v[0]), int(v[1]))
        elif t == "uniform":
            out[key] = hp.uniform(name, v[0], v[1])
        elif t == "loguniform":
            out[key] = hp.loguniform(name, math.log(v[0]), math.log(v[1]))
        elif t == "quniform":
            out[key] = hp.quniform(name, v[0], v[1], v[2])
        elif t == "qloguniform":
            out[key] = hp.qloguniform(name, math.log(v[0]), math.log(v[1]), v[2])
        else:
            raise ValueError(f"benchmark peer: {t} is not used by the problems")
    return out


def _py(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _py(v) for k, v in x.items()}
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _fix_q(space: dict, params: dict) -> dict:
    """hyperopt's q-types are not clipped; NNI's are."""
    for key, spec in space.items():
        if key == "_name" or key not in params:
            continue
        if spec["_type"] in ("quniform", "qloguniform"):
            params[key] = apply_q(spec, params[key])
        elif spec["_type"] == "choice" and isinstance(params[key], dict):
            for o in spec["_value"]:
                if _is_nested(o) and o["_name"] == params[key]["_name"]:
                    _fix_q(o, params[key])
    return params


def run_hyperopt(problem: str, seed: int, budget: int) -> dict:
    from hyperopt import STATUS_OK, Trials, fmin, tpe
    prob = PROBLEMS[problem]
    losses: list[float] = []
    true: list[float] = []
    evals = [0.0]

    def objective(params: dict) -> dict:
        t0 = time.perf_counter()
        params = _fix_q(prob.space, _py(params))
        loss = prob.observe(params)
        if prob.noise:
            true.append(prob.fn(params))
        evals[0] += time.perf_counter() - t0
        losses.append(loss)
        return {"loss": loss, "status": STATUS_OK}

    space = hyperopt_space(prob.space)
    trials = Trials()
    t0 = time.perf_counter()
    fmin(objective, space, algo=tpe.suggest, max_evals=budget, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return {"losses": losses, "tuner_seconds": time.perf_counter() - t0 - evals[0],
            **({"true": true} if prob.noise else {})}


# ---- latency -------------------------------------------------------------------------------
def latency(tuner: str, problem: str, n: int, k: int, seed: int = 0) -> dict:
    """Milliseconds per suggestion (ask + tell) with ``n`` results already stored."""
    prob = PROBLEMS[problem]
    rng = np.random.default_rng(seed)
    if tuner.startswith("optuna"):
        import optuna
        study = _optuna_study(tuner, seed, 1)
        dists = {key: optuna.distributions.FloatDistribution(spec["_value"][0], spec["_value"][1])
                 for key, spec in prob.space.items()}   # latency problems are uniform-only
        trials = []
        for _ in range(n):
            params = {key: float(rng.uniform(d.low, d.high)) for key, d in dists.items()}
            trials.append(optuna.trial.create_trial(params=params, distributions=dists, value=prob.fn(params)))
        study.add_trials(trials)

        def suggest_and_report(i: int) -> None:
            trial = study.ask()
            study.tell(trial, prob.fn(optuna_params(trial, prob.space)))

        return time_suggestions(suggest_and_report, k)
    from hyperopt import STATUS_OK, Trials, fmin, rand, tpe
    space = hyperopt_space(prob.space)
    trials = Trials()
    fn = lambda p: {"loss": prob.fn(_py(p)), "status": STATUS_OK}  # noqa: E731
    fmin(fn, space, algo=rand.suggest, max_evals=n, trials=trials, rstate=np.random.default_rng(seed),
         show_progressbar=False)
    t0 = time.perf_counter()
    fmin(fn, space, algo=tpe.suggest, max_evals=n + k, trials=trials, rstate=np.random.default_rng(seed + 1),
         show_progressbar=False)
    return {"ms": 1000 * (time.perf_counter() - t0) / k, "k": k}


def main() -> None:
    job = json.loads(sys.argv[1])
    if job["kind"] == "latency":
        out = latency(job["tuner"], job["problem"], job["n"], job["k"])
    elif job["tuner"] == "hyperopt_tpe":
        out = run_hyperopt(job["problem"], job["seed"], job["budget"])
    else:
        out = run_optuna(job["tuner"], job["problem"], job["seed"], job["budget"], job["parallel"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
