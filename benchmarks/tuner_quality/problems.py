"""Benchmark problems: an NNI search space and a loss to minimize for each.

This module must import without ``nni`` (the peer worker runs it in a venv with Optuna and
hyperopt only); it needs numpy, and scikit-learn for the two model-tuning problems.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A search space (NNI format), the loss it is scored with and the best loss known."""

    name: str
    space: dict
    fn: Callable[[dict], float]
    optimum: float | None
    numeric: bool        # only numbers (GP and Metis can run it)
    description: str


def _u(lo: float, hi: float) -> dict:
    return {"_type": "uniform", "_value": [lo, hi]}


def branin(p: dict) -> float:
    x1, x2 = p["x1"], p["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())


def rosenbrock5(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(5)])
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def ackley5(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(5)])
    d = len(x)
    return float(-20 * math.exp(-0.2 * math.sqrt((x * x).sum() / d))
                 - math.exp(np.cos(2 * math.pi * x).sum() / d) + 20 + math.e)


_ACT = {"relu": (0.0, 0.0), "tanh": (0.6, 0.15), "sigmoid": (-0.8, 0.4), "linear": (1.5, 0.8)}


def mixed(p: dict) -> float:
    """A synthetic 'training run': the best learning rate depends on the activation."""
    shift, penalty = _ACT[p["activation"]]
    lr_term = (math.log10(p["lr"]) + 2.7 + shift) ** 2
    layers = 0.08 * (p["layers"] - 4) ** 2
    batch = ((p["batch"] - 96) / 128) ** 2
    drop = 3.0 * (p["dropout"] - 0.25) ** 2
    return lr_term + layers + batch + drop + penalty + 0.3 * lr_term * drop


def conditional(p: dict) -> float:
    """Three model families; the best lies in a narrow region of family 'b'."""
    m = p["model"]
    if m["_name"] == "a":   # wide, easy basin with floor 1.0
        return 1.0 + 0.05 * ((m["x"] - 1) ** 2 + (m["y"] + 2) ** 2)
    if m["_name"] == "b":   # the best: n = 7 and lr ~ 3e-3
        return 0.1 * abs(m["n"] - 7) + 2.0 * (math.log10(m["lr"]) + 2.5) ** 2 + 0.5 * (m["mom"] - 0.9) ** 2
    return 1.5 + 0.01 * (m["z"] - 3) ** 2   # 'c'


@lru_cache(maxsize=None)
def _digits() -> tuple:
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[:600]
    return X[idx] / 16.0, y[idx]


@lru_cache(maxsize=None)
def _cancer() -> tuple:
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer(return_X_y=True)


def svc_digits(p: dict) -> float:
    """1 - 3-fold CV accuracy of an SVC on 600 digits."""
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC
    X, y = _digits()
    clf = SVC(C=p["C"], gamma=p["gamma"], kernel=p["kernel"])
    return float(1.0 - cross_val_score(clf, X, y, cv=3).mean())


def gb_cancer(p: dict) -> float:
    """1 - 3-fold CV accuracy of gradient boosting on breast_cancer (deterministic)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import cross_val_score
    X, y = _cancer()
    clf = GradientBoostingClassifier(n_estimators=int(p["n_estimators"]), learning_rate=p["learning_rate"],
                                     max_depth=int(p["max_depth"]), subsample=p["subsample"],
                                     min_samples_leaf=int(p["min_samples_leaf"]), max_features="sqrt",
                                     random_state=0)
    return float(1.0 - cross_val_score(clf, X, y, cv=3).mean())


PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem("branin", {"x1": _u(-5, 10), "x2": _u(0, 15)}, branin, 0.397887, True, "Branin, 2-D"),
    Problem("hartmann6", {f"x{i}": _u(0, 1) for i in range(6)}, hartmann6, -3.32237, True, "Hartmann, 6-D"),
    Problem("rosenbrock5", {f"x{i}": _u(-2, 2) for i in range(5)}, rosenbrock5, 0.0, True,
            "Rosenbrock, 5-D on [-2, 2]"),
    Problem("ackley5", {f"x{i}": _u(-32.768, 32.768) for i in range(5)}, ackley5, 0.0, True,
            "Ackley, 5-D"),
    Problem("mixed", {
        "activation": {"_type": "choice", "_value": ["relu", "tanh", "sigmoid", "linear"]},
        "layers": {"_type": "randint", "_value": [1, 9]},
        "lr": {"_type": "loguniform", "_value": [1e-6, 1.0]},
        "batch": {"_type": "quniform", "_value": [16, 512, 16]},
        "dropout": _u(0.0, 0.9),
    }, mixed, 0.0, False, "choice + randint + loguniform + quniform + uniform"),
    Problem("conditional", {"model": {"_type": "choice", "_value": [
        {"_name": "a", "x": _u(-5, 5), "y": _u(-5, 5)},
        {"_name": "b", "n": {"_type": "randint", "_value": [1, 21]},
         "lr": {"_type": "loguniform", "_value": [1e-6, 1.0]}, "mom": _u(0.0, 1.0)},
        {"_name": "c", "z": {"_type": "quniform", "_value": [0, 10, 1]}},
    ]}}, conditional, 0.0, False, "nested choice with _name (3 branches)"),
    Problem("svc_digits", {
        "C": {"_type": "loguniform", "_value": [1e-3, 1e3]},
        "gamma": {"_type": "loguniform", "_value": [1e-5, 1.0]},
        "kernel": {"_type": "choice", "_value": ["rbf", "sigmoid"]},
    }, svc_digits, None, False, "SVC on 600 digits, 3-fold CV error"),
    Problem("gb_cancer", {
        "n_estimators": {"_type": "randint", "_value": [5, 41]},
        "learning_rate": {"_type": "loguniform", "_value": [0.01, 1.0]},
        "max_depth": {"_type": "randint", "_value": [1, 6]},
        "subsample": _u(0.5, 1.0),
        "min_samples_leaf": {"_type": "randint", "_value": [1, 21]},
    }, gb_cancer, None, True, "GradientBoosting on breast_cancer, 3-fold CV error"),
]}


def apply_q(spec: dict, v: float) -> Any:
    """NNI's rounding of q-types: clip(round(v / q) * q, low, high)."""
    lo, hi, q = spec["_value"]
    return min(max(round(v / q) * q, lo), hi)


# ---- the driving loops every tuner (ours and the peers) goes through ---------------------------
def drive(ask: Callable[[], tuple[Any, dict]], tell: Callable[[Any, dict, float], None],
          fn: Callable[[dict], float], budget: int, parallel: int) -> dict:
    """Run ``budget`` trials keeping ``parallel`` pending (results come back oldest first).

    ``ask()`` returns (handle, parameters); ``tell(handle, parameters, loss)`` reports. Only
    the time spent inside ask/tell counts as the tuner's.
    """
    losses: list[float] = []
    pending: deque = deque()
    spent = 0.0
    asked = 0
    while len(losses) < budget:
        while len(pending) < parallel and asked < budget:
            t0 = time.perf_counter()
            pending.append(ask())
            spent += time.perf_counter() - t0
            asked += 1
        handle, params = pending.popleft()
        loss = fn(params)
        t0 = time.perf_counter()
        tell(handle, params, loss)
        spent += time.perf_counter() - t0
        losses.append(loss)
    return {"losses": losses, "tuner_seconds": spent}


def time_suggestions(suggest_and_report: Callable[[int], None], k: int) -> dict:
    """Milliseconds per call of ``suggest_and_report(i)``: ``k`` calls, or fewer past 20 s (slow tuners)."""
    t0 = time.perf_counter()
    done = 0
    while done < k:
        suggest_and_report(done)
        done += 1
        if done >= 2 and time.perf_counter() - t0 > 20:
            break   # e.g. GP at 1,000 results: a few suggestions are enough to measure
    return {"ms": 1000 * (time.perf_counter() - t0) / done, "k": done}
