"""DNGO: Bayesian optimization with a neural-network basis (NNI's ``DNGOTuner``), on numpy.

NNI's DNGO trains ``pybnn``'s network (three tanh layers of 50 units) on the results and
puts Bayesian linear regression on its last hidden layer; the next point is the best of
``sample_size`` random candidates by expected improvement.  This module does the same
math without torch:

* the network (``d -> 50 -> 50 -> 50 -> 1``, tanh) is trained full-batch with Adam for
  ``num_epochs_per_training`` epochs on standardized losses, inputs in the unit cube;
* Bayesian linear regression on the 50 last-layer features (plus a bias) gives a mean and
  a variance per candidate; its prior precision ``alpha`` and noise precision ``beta`` are
  chosen by maximizing the marginal likelihood over a log grid (pybnn optimizes the same
  evidence with a local search);
* expected improvement over the best loss so far ranks the candidates.

The model is retrained every ``trials_per_update`` results and after ``import_data``;
before the first training the proposals are random (as in NNI).  Search space: numeric
``choice``, ``randint``, ``uniform``, ``quniform``, ``loguniform``, ``qloguniform``
(like NNI's DNGO); nested spaces, normal types and non-numeric choices are refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import BaseTuner, random_vector
from ._gp import UnitSpace, check_numeric_space, utility

__all__ = ["DNGOTuner"]

_HIDDEN = 50


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class _Network:
    """A small tanh MLP whose last hidden layer is the basis of a Bayesian linear model."""

    def __init__(self, d: int, rng: np.random.Generator) -> None:
        sizes = [d, _HIDDEN, _HIDDEN, _HIDDEN, 1]
        self.W = [rng.normal(0, 1 / math.sqrt(a), size=(a, b)) for a, b in zip(sizes, sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]

    def features(self, X: np.ndarray) -> list[np.ndarray]:
        acts = [X]
        for W, b in zip(self.W[:-1], self.b[:-1]):
            acts.append(np.tanh(acts[-1] @ W + b))
        return acts

    def train(self, X: np.ndarray, y: np.ndarray, epochs: int, lr: float = 0.01) -> None:
        params = self.W + self.b
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        n = len(X)
        for t in range(1, epochs + 1):
            acts = self.features(X)
            out = acts[-1] @ self.W[-1] + self.b[-1]
            delta = 2.0 * (out[:, 0] - y)[:, None] / n
            gW: list[np.ndarray] = [np.empty(0)] * len(self.W)
            gb: list[np.ndarray] = [np.empty(0)] * len(self.b)
            for i in range(len(self.W) - 1, -1, -1):
                gW[i] = acts[i].T @ delta
                gb[i] = delta.sum(axis=0)
                if i:
                    delta = (delta @ self.W[i].T) * (1.0 - acts[i] ** 2)
            grads = gW + gb
            for k, (p, g) in enumerate(zip(params, grads)):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)

    def basis(self, X: np.ndarray) -> np.ndarray:
        phi = self.features(X)[-1]
        return np.hstack([phi, np.ones((len(phi), 1))])


class _BayesianLinear:
    """Bayesian linear regression with evidence-maximizing precisions (a grid search)."""

    def fit(self, Phi: np.ndarray, y: np.ndarray) -> "_BayesianLinear":
        n, k = Phi.shape
        best = None
        for log_alpha in np.linspace(-3, 3, 13):
            for log_beta in np.linspace(-1, 5, 13):
                alpha, beta = 10.0 ** log_alpha, 10.0 ** log_beta
                A = beta * Phi.T @ Phi + alpha * np.eye(k)
                try:
                    L = np.linalg.cholesky(A)
                except np.linalg.LinAlgError:
                    continue
                m = beta * np.linalg.solve(A, Phi.T @ y)
                resid = y - Phi @ m
                evidence = (k / 2 * math.log(alpha) + n / 2 * math.log(beta)
                            - beta / 2 * float(resid @ resid) - alpha / 2 * float(m @ m)
                            - float(np.log(np.diag(L)).sum()) - n / 2 * math.log(2 * math.pi))
                if best is None or evidence > best[0]:
                    best = (evidence, alpha, beta, A, m)
        if best is None:
            raise np.linalg.LinAlgError("no precision gave a positive definite posterior")
        _, self.alpha, self.beta, A, self.m = best
        self.A_inv = np.linalg.inv(A)
        return self

    def predict(self, Phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = Phi @ self.m
        var = np.einsum("ij,jk,ik->i", Phi, self.A_inv, Phi) + 1.0 / self.beta
        return mu, np.sqrt(np.maximum(var, 1e-12))


class DNGOTuner(BaseTuner):
    """Bayesian optimization with a neural-network basis and Bayesian linear regression.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    sample_size
        Random candidates scored by expected improvement per proposal (default 1000).
    trials_per_update
        Results between two trainings of the model (default 20).
    num_epochs_per_training
        Adam epochs per training (default 500).
    seed
        Random seed; the same seed gives the same proposals.
    """

    _exhaustive = False   # as NNI: a used-up finite space gets repeats, not an end

    _default_mode = "maximize"

    def __init__(self, optimize_mode: Any = "maximize", sample_size: int = 1000, trials_per_update: int = 20,
                 num_epochs_per_training: int = 500, seed: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self.sample_size = _count("sample_size", sample_size, 1)
        self.trials_per_update = _count("trials_per_update", trials_per_update, 1)
        self.num_epochs_per_training = _count("num_epochs_per_training", num_epochs_per_training, 1)
        self._space: UnitSpace | None = None
        self._model: tuple[_Network, _BayesianLinear, float, float] | None = None
        self._trained_on = 0

    def update_search_space(self, search_space: dict) -> None:
        """Accept a flat numeric space; raise ValueError naming the parameter otherwise."""
        from nni.search_space import validate_search_space
        from nni.search_space._flat import flatten
        validate_search_space(search_space)
        check_numeric_space(flatten(search_space), "DNGOTuner")
        super().update_search_space(search_space)

    def _on_space_updated(self) -> None:
        self._space = UnitSpace(self._dims)
        self._model = None
        self._trained_on = 0

    def _train(self) -> None:
        assert self._space is not None
        X, y = self._X.reshape(len(self._y), len(self._dims)), self._y
        ok = np.isfinite(y)
        if ok.sum() < 2:
            return
        X, y = X[ok], y[ok]
        mean, std = float(y.mean()), float(y.std()) or 1.0
        ys = (y - mean) / std
        U = self._space.to_unit(X)
        net = _Network(U.shape[1], self._rng)
        net.train(U, ys, self.num_epochs_per_training)
        try:
            blr = _BayesianLinear().fit(net.basis(U), ys)
        except np.linalg.LinAlgError:
            return
        self._model = (net, blr, mean, std)
        self._trained_on = len(self._y)

    def _after_new_results(self) -> None:
        if len(self._y) - self._trained_on >= self.trials_per_update:
            self._train()

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        """Record the result; retrain every ``trials_per_update`` results."""
        super().receive_trial_result(parameter_id, parameters, value, **kwargs)
        self._after_new_results()

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Take prior results and train the model on everything known (as NNI does)."""
        super().import_data(data)
        if len(self._y) > self._trained_on:
            self._train()

    def _propose(self) -> np.ndarray:
        if self._model is None or self._space is None:
            return random_vector(self._dims, self._rng)
        net, blr, mean, std = self._model
        U = self._space.sample(self._rng, self.sample_size)
        mu, sd = blr.predict(net.basis(U))
        finite = self._y[np.isfinite(self._y)]
        best = (float(finite.min()) - mean) / std if finite.size else float(mu.min())
        ei = utility("ei", mu, sd, best, 0.0, 0.0)
        return self._space.from_unit(U[int(np.argmax(ei))])
