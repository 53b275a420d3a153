"""NNI's ``CurveModel``: predict a learning curve's value at a later epoch.

The method is NNI's (Domhan et al., 2015): each of the 12 families of
:mod:`.curvefunctions` is fitted to the curve by least squares (Levenberg-Marquardt from
all-ones start values, as ``scipy.optimize.curve_fit`` does); families that fit badly or
whose predictions stray from the others are dropped; the weights of the remaining ones
are sampled by Metropolis-Hastings (``NUM_OF_INSTANCE`` chains, ``NUM_OF_SIMULATION_TIME``
steps of ``STEP_SIZE``); the prediction is the mean weighted combination at
``target_pos``.  With fewer than ``LEAST_FITTED_FUNCTION`` usable families,
:meth:`CurveModel.predict` returns None (the curve says too little yet).

Differences from NNI, on purpose: the least-squares solver is our own numpy one (no
scipy); each model keeps its fitted parameters on the instance (NNI writes them into the
module-level ``model_para``, so one trial's fit leaks into the next trial's prediction
when a fit fails); the random draws come from ``rng`` (a ``numpy.random.Generator``,
default a fresh one) rather than numpy's global state.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from .curvefunctions import all_models, curve_combination_models, model_para, model_para_num

__all__ = ["CurveModel", "curve_fit", "NUM_OF_FUNCTIONS", "NUM_OF_SIMULATION_TIME", "NUM_OF_INSTANCE",
           "STEP_SIZE", "LEAST_FITTED_FUNCTION"]

# NNI's constants
NUM_OF_FUNCTIONS = 12
NUM_OF_SIMULATION_TIME = 20
NUM_OF_INSTANCE = 10
STEP_SIZE = 0.0005
LEAST_FITTED_FUNCTION = 4

logger = logging.getLogger(__name__)


def curve_fit(f: Any, x: np.ndarray, y: np.ndarray, p0: np.ndarray, max_evals: int | None = None) -> np.ndarray:
    """Least-squares parameters of ``f(x, *p)`` to ``y`` (Levenberg-Marquardt, forward-difference Jacobian).

    Raises RuntimeError when no finite fit is found or it does not converge, as
    ``scipy.optimize.curve_fit`` does.
    """
    p = np.asarray(p0, dtype=float).copy()
    n = len(p)
    max_iter = max_evals or 100 * (n + 1)

    def residuals(q: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(f(x, *q), dtype=float) - y

    r = residuals(p)
    if not np.all(np.isfinite(r)):
        raise RuntimeError("the start values give non-finite residuals")
    cost = float(r @ r)
    lam = 1e-3
    eps = np.sqrt(np.finfo(float).eps)
    for _ in range(max_iter):
        J = np.empty((len(x), n))
        for j in range(n):
            h = eps * max(abs(p[j]), 1.0)
            q = p.copy()
            q[j] += h
            J[:, j] = (residuals(q) - r) / h
        if not np.all(np.isfinite(J)):
            raise RuntimeError("non-finite Jacobian")
        A = J.T @ J
        g = J.T @ r
        if np.max(np.abs(g)) <= 1e-12 * max(1.0, cost):
            return p
        scale = np.maximum(np.diag(A), 1e-12)
        improved = False
        while lam < 1e12:
            try:
                step = np.linalg.solve(A + lam * np.diag(scale), -g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            r_new = residuals(p + step)
            with np.errstate(all="ignore"):
                new_cost = float(r_new @ r_new) if np.all(np.isfinite(r_new)) else np.inf
            new_cost = new_cost if np.isfinite(new_cost) else np.inf
            if new_cost < cost:
                converged = (cost - new_cost) <= 1.49012e-8 * cost or \
                    np.linalg.norm(step) <= 1.49012e-8 * (np.linalg.norm(p) + 1.49012e-8)
                p, r, cost = p + step, r_new, new_cost
                lam = max(lam / 10, 1e-12)
                improved = True
                if converged:
                    return p
                break
            lam *= 10
        if not improved:
            return p   # no step lowers the cost: a (local) minimum
    raise RuntimeError(f"no convergence in {max_iter} iterations")


class CurveModel:
    """Predicts the value of a learning curve at epoch ``target_pos`` (NNI's attributes and methods).

    Attributes: ``target_pos``, ``trial_history``, ``point_num``, ``effective_model``,
    ``effective_model_num``, ``weight_samples`` and ``model_para`` (this model's
    parameters per family; NNI's defaults until :meth:`fit_theta`).
    """

    def __init__(self, target_pos: int, rng: Any = None) -> None:
        self.target_pos = target_pos
        self.trial_history: list[float] = []
        self.point_num = 0
        self.effective_model: list[str] = []
        self.effective_model_num = 0
        self.weight_samples: Any = []
        self.model_para = copy.deepcopy(model_para)
        self._rng = rng if rng is not None else np.random.default_rng()

    def fit_theta(self) -> None:
        """Fit every family to the history (a family that cannot be fitted keeps its defaults)."""
        x = np.arange(1, self.point_num + 1, dtype=float)
        y = np.asarray(self.trial_history, dtype=float)
        for name in curve_combination_models[:NUM_OF_FUNCTIONS]:
            try:
                params = curve_fit(all_models[name], x, y, np.ones(model_para_num[name]))
            except (RuntimeError, FloatingPointError, OverflowError, ZeroDivisionError):
                continue   # as NNI: numerical failures leave the family as it was
            self.model_para[name] = [float(v) for v in params]

    def filter_curve(self) -> None:
        """Keep the families that fit the history and agree at ``target_pos`` (NNI's rule)."""
        history = np.asarray(self.trial_history, dtype=float)
        avg = float(np.sum(history)) / self.point_num
        standard = avg * avg * self.point_num
        predict_data, candidates = [], []
        for name in curve_combination_models[:NUM_OF_FUNCTIONS]:
            with np.errstate(all="ignore"):
                fitted = np.array([self.predict_y(name, j) for j in range(1, self.point_num + 1)], dtype=float)
                var = float(np.sum((fitted - history) ** 2))
            if var < standard:   # NaN (a failed family) compares False: dropped
                predict_data.append(float(fitted[-1]))
                candidates.append(name)
        self.effective_model = []
        if predict_data:
            median = float(np.median(predict_data))
            epsilon = self.point_num / 10 * float(np.std(predict_data))
            for name in candidates:
                with np.errstate(all="ignore"):
                    y = self.predict_y(name, self.target_pos)
                if median - epsilon < y < median + epsilon:
                    self.effective_model.append(name)
        self.effective_model_num = len(self.effective_model)
        logger.debug("effective curve models: %s", self.effective_model)

    def predict_y(self, model: str, pos: float) -> float:
        """Value of family ``model`` (with this model's parameters) at epoch ``pos``."""
        with np.errstate(all="ignore"):
            try:   # numpy scalars: overflow gives inf/NaN (a family that does not fit), not an exception
                return float(all_models[model](np.float64(pos), *self.model_para[model]))
            except (OverflowError, ZeroDivisionError, ValueError):
                return float("nan")

    def f_comb(self, pos: float, sample: Any) -> float:
        """The ``sample``-weighted combination of the effective families at epoch ``pos``."""
        return float(sum(sample[i] * self.predict_y(model, pos) for i, model in enumerate(self.effective_model)))

    def normalize_weight(self, samples: np.ndarray) -> np.ndarray:
        """Scale each row of ``samples`` to sum 1 (in place, as NNI does; also returned)."""
        for i in range(len(samples)):
            samples[i, :self.effective_model_num] /= np.sum(samples[i, :self.effective_model_num])
        return samples

    def sigma_sq(self, sample: Any) -> float:
        """Mean squared residual of the combination ``sample`` over the history."""
        resid = [self.trial_history[i - 1] - self.f_comb(i, sample) for i in range(1, self.point_num + 1)]
        return float(np.mean(np.square(resid)))

    def normal_distribution(self, pos: int, sample: Any) -> float:
        """NNI's likelihood term of epoch ``pos`` (its formula, including its normalisation)."""
        curr_sigma_sq = self.sigma_sq(sample)
        delta = self.trial_history[pos - 1] - self.f_comb(pos, sample)
        with np.errstate(all="ignore"):
            return float(np.exp(np.square(delta) / (-2.0 * curr_sigma_sq))
                         / np.sqrt(2 * np.pi * np.sqrt(curr_sigma_sq)))

    def _table(self) -> np.ndarray:
        """Predictions of the effective families at epochs 1..point_num and target_pos (rows: families)."""
        positions = list(range(1, self.point_num + 1)) + [self.target_pos]
        return np.array([[self.predict_y(m, p) for p in positions] for m in self.effective_model], dtype=float)

    def likelihood(self, samples: np.ndarray) -> np.ndarray:
        """Product of :meth:`normal_distribution` over the history, per sample (vectorised)."""
        table = self._table()[:, :self.point_num]
        with np.errstate(all="ignore"):
            comb = np.asarray(samples)[:, :self.effective_model_num] @ table      # (samples, epochs)
            delta = np.asarray(self.trial_history, dtype=float)[None, :] - comb
            sigma_sq = np.mean(delta ** 2, axis=1, keepdims=True)
            terms = np.exp(delta ** 2 / (-2.0 * sigma_sq)) / np.sqrt(2 * np.pi * np.sqrt(sigma_sq))
            return np.prod(terms, axis=1)

    def prior(self, samples: np.ndarray) -> np.ndarray:
        """1 for positive weights whose combination rises from epoch 1 to ``target_pos``, else 0."""
        table = self._table()
        w = np.asarray(samples)[:, :self.effective_model_num]
        with np.errstate(all="ignore"):
            rising = w @ table[:, 0] < w @ table[:, -1]
        return (np.all(w > 0, axis=1) & rising).astype(float)

    def target_distribution(self, samples: np.ndarray) -> np.ndarray:
        """Unnormalised posterior of each sample (likelihood x prior)."""
        return self.likelihood(samples) * self.prior(samples)

    def mcmc_sampling(self) -> None:
        """Metropolis-Hastings over the family weights, from equal weights."""
        k = self.effective_model_num
        self.weight_samples = np.full((NUM_OF_INSTANCE, k), 1.0 / k)
        current = self.target_distribution(self.weight_samples)
        for _ in range(NUM_OF_SIMULATION_TIME):
            proposal = self._rng.standard_normal((NUM_OF_INSTANCE, k)) * STEP_SIZE + self.weight_samples
            proposal = self.normalize_weight(proposal)
            target = self.target_distribution(proposal)
            with np.errstate(all="ignore"):
                alpha = np.minimum(1, target / current)
            accept = self._rng.random(NUM_OF_INSTANCE) < alpha   # NaN (0/0) rejects
            self.weight_samples = np.where(accept[:, None], proposal, self.weight_samples)
            current = np.where(accept, target, current)

    def predict(self, trial_history: list[float]) -> float | None:
        """Expected value at ``target_pos``; None when too few families describe the curve."""
        self.trial_history = list(trial_history)
        self.point_num = len(trial_history)
        self.fit_theta()
        self.filter_curve()
        if self.effective_model_num < LEAST_FITTED_FUNCTION:
            return None
        self.mcmc_sampling()
        return float(np.mean([self.f_comb(self.target_pos, w) for w in self.weight_samples]))
