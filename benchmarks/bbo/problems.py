"""Bayesmark's scikit-learn tuning problems, rebuilt on a current scikit-learn.

The grid of the NeurIPS 2020 black-box optimization challenge: a model's cross-validated loss
on one of scikit-learn's bundled data sets, as a function of the model's hyperparameters.
The search spaces, the fixed settings, the 80/20 split (shuffle seed 0) and the 5-fold
cross-validation are Bayesmark's (``bayesmark/sklearn_funcs.py``, v0.0.8), written anew
here because that package no longer imports on current scikit-learn/NumPy. Differences,
forced by scikit-learn's API changes:

- the logistic regression ("linear") is one-vs-rest liblinear as in Bayesmark, built with
  ``OneVsRestClassifier`` because ``multi_class`` is gone;
- Ridge ("linear" on regression) has no ``normalize`` any more: that parameter is dropped;
- Bayesmark's "logit" warping of real parameters (not a type NNI, Optuna or SMAC have) is a
  plain ``uniform`` over the same range, for every optimizer alike.

Each data set is scored with one metric: negative log-likelihood for classification (finer
than accuracy, which is flat over wide regions) and mean squared error for regression, the
two metrics of the challenge's visible leaderboard. Losses: lower is better.

This module does not import ``nni``: the peers' virtualenv imports it too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

CV_SPLITS = 5
SHUFFLE_SEED = 0

#: model -> {parameter: (kind, scale, low, high)}; kind int/real/bool, scale linear/log/logit
_KNN = {"n_neighbors": ("int", "linear", 1, 25), "p": ("int", "linear", 1, 4)}
_SVM = {"C": ("real", "log", 1.0, 1e3), "gamma": ("real", "log", 1e-4, 1e-3), "tol": ("real", "log", 1e-5, 1e-1)}
_TREE = {
    "max_depth": ("int", "linear", 1, 15),
    "min_samples_split": ("real", "logit", 0.01, 0.99),
    "min_samples_leaf": ("real", "logit", 0.01, 0.49),
    "min_weight_fraction_leaf": ("real", "logit", 0.01, 0.49),
    "max_features": ("real", "logit", 0.01, 0.99),
    "min_impurity_decrease": ("real", "linear", 0.0, 0.5),
}
_MLP_SGD = {
    "hidden_layer_sizes": ("int", "linear", 50, 200),
    "alpha": ("real", "log", 1e-5, 1e1),
    "batch_size": ("int", "linear", 10, 250),
    "learning_rate_init": ("real", "log", 1e-5, 1e-1),
    "power_t": ("real", "logit", 0.1, 0.9),
    "tol": ("real", "log", 1e-5, 1e-1),
    "momentum": ("real", "logit", 0.001, 0.999),
    "validation_fraction": ("real", "logit", 0.1, 0.9),
}
_ADA = {"n_estimators": ("int", "linear", 10, 100), "learning_rate": ("real", "log", 1e-4, 1e1)}
_LINEAR_CLF = {"C": ("real", "log", 1e-2, 1e2), "intercept_scaling": ("real", "log", 1e-2, 1e2)}
_LINEAR_REG = {
    "alpha": ("real", "log", 1e-2, 1e2),
    "fit_intercept": ("bool", "", 0, 1),
    "max_iter": ("int", "log", 10, 5000),
    "tol": ("real", "log", 1e-4, 1e-1),
}

MODELS = ("kNN", "SVM", "DT", "RF", "MLP-sgd", "ada", "linear")
DATASETS = {"breast": "clf", "digits": "clf", "iris": "clf", "wine": "clf", "diabetes": "reg"}
METRIC = {"clf": "nll", "reg": "mse"}


def _space_of(model: str, task: str) -> dict[str, tuple]:
    return {"kNN": _KNN, "SVM": _SVM, "DT": _TREE, "RF": _TREE, "MLP-sgd": _MLP_SGD, "ada": _ADA,
            "linear": _LINEAR_CLF if task == "clf" else _LINEAR_REG}[model]


def _estimator(model: str, task: str, params: dict[str, Any]) -> Any:
    from sklearn import ensemble, linear_model, multiclass, neighbors, neural_network, svm, tree
    clf = task == "clf"
    if model == "kNN":
        return (neighbors.KNeighborsClassifier if clf else neighbors.KNeighborsRegressor)(**params)
    if model == "SVM":
        return svm.SVC(kernel="rbf", probability=True, **params) if clf else svm.SVR(kernel="rbf", **params)
    if model == "DT":
        return (tree.DecisionTreeClassifier if clf else tree.DecisionTreeRegressor)(max_leaf_nodes=None, **params)
    if model == "RF":
        cls = ensemble.RandomForestClassifier if clf else ensemble.RandomForestRegressor
        return cls(n_estimators=10, max_leaf_nodes=None, **params)
    if model == "MLP-sgd":
        fixed: dict[str, Any] = {"solver": "sgd", "early_stopping": True, "learning_rate": "invscaling",
                                 "nesterovs_momentum": True}
        if clf:
            return neural_network.MLPClassifier(**fixed, **params)
        return neural_network.MLPRegressor(activation="tanh", **fixed, **params)
    if model == "ada":
        return (ensemble.AdaBoostClassifier if clf else ensemble.AdaBoostRegressor)(**params)
    if model == "linear":
        if clf:
            return multiclass.OneVsRestClassifier(
                linear_model.LogisticRegression(penalty="l2", fit_intercept=True, solver="liblinear", **params))
        return linear_model.Ridge(solver="auto", **params)
    raise ValueError(f"unknown model {model!r}")


@lru_cache(maxsize=None)
def _data(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    loader: Callable[..., Any] = getattr(datasets, {"breast": "load_breast_cancer"}.get(dataset, f"load_{dataset}"))
    x, y = loader(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.2, random_state=SHUFFLE_SEED, shuffle=True)
    return x_train, y_train


@dataclass(frozen=True)
class Problem:
    """One cell of the grid: a model, a data set and its metric."""

    model: str
    dataset: str

    @property
    def name(self) -> str:
        return f"{self.model}-{self.dataset}"

    @property
    def task(self) -> str:
        return DATASETS[self.dataset]

    @property
    def metric(self) -> str:
        return METRIC[self.task]

    @property
    def spec(self) -> dict[str, tuple]:
        return _space_of(self.model, self.task)

    def nni_space(self) -> dict[str, dict]:
        """The search space in NNI's JSON format (what our tuners are given)."""
        out: dict[str, dict] = {}
        for key, (kind, scale, lo, hi) in self.spec.items():
            if kind == "bool":
                out[key] = {"_type": "choice", "_value": [False, True]}
            elif kind == "int" and scale == "log":
                out[key] = {"_type": "qloguniform", "_value": [lo, hi, 1]}
            elif kind == "int":
                out[key] = {"_type": "randint", "_value": [lo, hi + 1]}
            else:
                out[key] = {"_type": "loguniform" if scale == "log" else "uniform", "_value": [lo, hi]}
        return out

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters as the model takes them (ints as int, bools as bool), clipped to the range."""
        out: dict[str, Any] = {}
        for key, (kind, _, lo, hi) in self.spec.items():
            value = params[key]
            if kind == "bool":
                out[key] = bool(value)
            elif kind == "int":
                out[key] = int(min(max(round(float(value)), lo), hi))
            else:
                out[key] = float(min(max(float(value), lo), hi))
        return out

    def evaluate(self, params: dict[str, Any]) -> float:
        """Mean 5-fold cross-validated loss; a fit that fails or diverges counts as the worst."""
        from sklearn.model_selection import cross_val_score
        x, y = _data(self.dataset)
        scoring = "neg_log_loss" if self.metric == "nll" else "neg_mean_squared_error"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # optimizers try odd settings; sklearn warns of them
            try:
                scores = cross_val_score(_estimator(self.model, self.task, self.clean(params)), x, y,
                                         scoring=scoring, cv=CV_SPLITS)
                loss = -float(np.mean(scores))
            except (ValueError, FloatingPointError, OverflowError):
                loss = float("inf")
        return loss if np.isfinite(loss) else _WORST[self.metric]


#: what a failed or diverged fit scores (far worse than any model that learned something)
_WORST = {"nll": 1e3, "mse": 1e6}

PROBLEMS: dict[str, Problem] = {p.name: p for p in (Problem(m, d) for m in MODELS for d in DATASETS)}

#: the quick mode's problems: cheap to evaluate (well under 0.1 s here)
QUICK_PROBLEMS = ("kNN-iris", "DT-wine")


def random_params(problem: Problem, rng: np.random.Generator) -> dict[str, Any]:
    """One draw of random search, uniform in each parameter's own scale."""
    out: dict[str, Any] = {}
    for key, (kind, scale, lo, hi) in problem.spec.items():
        if kind == "bool":
            out[key] = bool(rng.integers(2))
        elif kind == "int" and scale == "linear":
            out[key] = int(rng.integers(lo, hi + 1))
        elif scale == "log":
            v = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            out[key] = int(round(v)) if kind == "int" else v
        else:
            out[key] = float(rng.uniform(lo, hi))
    return out
