"""Learning-curve extrapolation (NNI's ``CurvefittingAssessor``), on numpy least squares.

Each intermediate result is taken as one epoch.  From ``start_step`` results on, and
then every ``gap`` results, the curve so far is fitted with a few parametric families
of learning curves (in the direction where larger is better; minimized metrics are
negated first):

* ``pow3``:     ``c - a * x**(-alpha)``
* ``exp3``:     ``c - a * exp(-alpha * x)``
* ``loglinear``: ``a * log(x) + c``
* ``linear``:   ``a * x + c`` (only trusted while the curve is short, see below)

Each family has one non-linear parameter (``alpha``; searched on a grid) and is linear
in the others (solved by least squares), so fitting is fast and deterministic.  The
families are averaged, weighted by how well they fit (inverse mean squared residual),
and the average is evaluated at ``epoch_num``.  NNI's Bayesian MCMC over 12 families is
replaced by this; the decision rule is NNI's: when the predicted final value is worse
than ``threshold`` times the best final value seen so far (the last intermediate result
of each trial that completed), the trial is stopped.  For a metric that can be
negative or is minimized the rule reads "worse than the best by more than
``(1 - threshold) * |best|``", which equals ``threshold * best`` for a positive
maximized metric.  Nothing is stopped while no trial has completed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nni.assessor import AssessResult, Assessor
from nni.utils import OptimizeMode, extract_scalar_history

from ._base import parse_optimize_mode
from ._population import check_int, check_number

__all__ = ["CurvefittingAssessor", "predict_final"]

_logger = logging.getLogger(__name__)

_ALPHA_POW = np.geomspace(0.05, 5.0, 40)
_ALPHA_EXP = np.geomspace(0.005, 3.0, 40)


def _fit_linear(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares ``y ~ features @ w``; returns (w, mean squared residual)."""
    w, *_ = np.linalg.lstsq(features, y, rcond=None)
    resid = y - features @ w
    return w, float(np.mean(resid * resid))


def _fit_family(kind: str, x: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float] | None:
    """(prediction at ``target``, mean squared residual) of the best fit of one family."""
    best: tuple[float, float] | None = None
    if kind in ("pow3", "exp3"):
        grid = _ALPHA_POW if kind == "pow3" else _ALPHA_EXP
        for alpha in grid:
            basis = x ** -alpha if kind == "pow3" else np.exp(-alpha * x)
            t = target ** -alpha if kind == "pow3" else math.exp(-alpha * target)
            F = np.column_stack([np.ones_like(x), -basis])
            (c, a), mse = _fit_linear(F, y)
            if a < 0:
                continue   # a decreasing curve: not a learning curve of this family
            if best is None or mse < best[1]:
                best = (float(c - a * t), mse)
        return best
    if kind == "loglinear":
        F = np.column_stack([np.ones_like(x), np.log(x)])
        (c, a), mse = _fit_linear(F, y)
        return float(a * math.log(target) + c), mse
    F = np.column_stack([np.ones_like(x), x])
    (c, a), mse = _fit_linear(F, y)
    return float(a * target + c), mse


def predict_final(history: list[float], epoch_num: int) -> float | None:
    """Extrapolate a learning curve (larger is better) to epoch ``epoch_num``; None if it cannot."""
    y = np.asarray(history, dtype=float)
    if len(y) < 3 or not np.all(np.isfinite(y)):
        return None
    x = np.arange(1, len(y) + 1, dtype=float)
    target = float(max(epoch_num, len(y)))
    families = ["pow3", "exp3", "loglinear"]
    if len(y) * 2 >= target:
        families.append("linear")   # a straight line is a safe guess only over a short horizon
    fits = [f for f in (_fit_family(k, x, y, target) for k in families) if f is not None]
    if not fits:
        return None
    scale = max(float(np.var(y)), 1e-12)
    preds = np.array([p for p, _ in fits])
    weights = np.array([1.0 / (mse / scale + 1e-6) for _, mse in fits])
    pred = float(np.dot(preds, weights) / weights.sum())
    # A fitted curve is never trusted to fall below what the trial already reached, nor to
    # jump further above its last value than the whole curve has risen so far times the
    # remaining horizon (keeps a wild extrapolation from saving a bad trial).
    span = float(np.max(y) - np.min(y))
    ceiling = float(y[-1]) + span * target / len(y) + 1e-12
    return min(max(pred, float(np.min(y[-3:]))), ceiling)


class CurvefittingAssessor(Assessor):
    """Stops trials whose extrapolated learning curve ends clearly below the best result.

    Parameters
    ----------
    epoch_num
        Total number of intermediate results (epochs) a full trial reports.
    start_step
        Results needed before a trial is judged.
    threshold
        A trial is stopped when its predicted final value is below ``threshold`` x the
        best final value so far (see the module docs for negative/minimized metrics).
    gap
        Judge every ``gap`` results after ``start_step``.
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    """

    def __init__(self, epoch_num: int = 20, start_step: int = 6, threshold: float = 0.95, gap: int = 1,
                 optimize_mode: Any = "maximize") -> None:
        self.epoch_num = check_int("epoch_num", epoch_num, 1)
        self.start_step = check_int("start_step", start_step, 1)
        if self.start_step > self.epoch_num:
            raise ValueError(f"start_step ({start_step}) must not exceed epoch_num ({epoch_num})")
        self.threshold = check_number("threshold", threshold, 0, 1, low_open=True)
        self.gap = check_int("gap", gap, 1)
        self.optimize_mode = parse_optimize_mode(optimize_mode, "maximize")
        self._last: dict[str, float] = {}     # running trial -> last intermediate result (signed)
        self.completed_best: float | None = None

    def _sign(self) -> float:
        return 1.0 if self.optimize_mode is OptimizeMode.Maximize else -1.0

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """A completed trial's last intermediate result is its final value."""
        last = self._last.pop(trial_job_id, None)
        if success and last is not None and math.isfinite(last):
            if self.completed_best is None or last > self.completed_best:
                self.completed_best = last

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Good unless the extrapolated final value is clearly below the best so far."""
        try:
            values = [self._sign() * v for v in extract_scalar_history(trial_history)]
        except RuntimeError as exc:
            _logger.warning("Curvefitting: cannot read intermediate results of %s: %s", trial_job_id, exc)
            return AssessResult.Good
        if values:
            self._last[trial_job_id] = values[-1]
        step = len(values)
        if step < self.start_step or (step - self.start_step) % self.gap != 0:
            return AssessResult.Good
        if self.completed_best is None or step >= self.epoch_num:
            return AssessResult.Good
        predicted = predict_final(values, self.epoch_num)
        if predicted is None:
            return AssessResult.Good
        best = self.completed_best
        cutoff = best - (1.0 - self.threshold) * abs(best)
        _logger.debug("Curvefitting: trial %s predicted %.6g at epoch %d, cutoff %.6g", trial_job_id,
                      self._sign() * predicted, self.epoch_num, self._sign() * cutoff)
        return AssessResult.Bad if predicted < cutoff else AssessResult.Good
