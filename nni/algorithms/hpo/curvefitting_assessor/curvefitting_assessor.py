"""Learning-curve extrapolation (NNI's ``CurvefittingAssessor``).

Each intermediate result is one epoch.  Once a trial has ``start_step`` results, and then
whenever ``gap`` more came in, its curve is extrapolated to ``epoch_num`` with NNI's
model (:class:`~.model_factory.CurveModel`: 12 curve families fitted by least squares,
combined with MCMC-sampled weights).  The trial is stopped when the prediction is below
``threshold`` x the best final value so far; nothing is stopped while no trial has
completed, nor while the model says the curve tells too little (fewer than 4 families
agree).  As in NNI, the curves are taken as "larger is better", a trial is judged at any
step from ``start_step`` on (also at or after ``epoch_num``), and the classArgs take
NNI's ranges (``start_step`` from 0, ``threshold`` any number >= 0: above 1 a trial must
be predicted to beat the best).

Beyond NNI: ``optimize_mode='minimize'`` (for losses).  The results are negated, and a
curve with values <= 0 is mapped affinely onto [0.1, 0.9] for the fit (the families model
positive rising curves).  The model's extrapolation of such a curve is biased (it often
predicts a loss well above where the curve ends), so a trial is not compared with the
best trial's *final* value but with the prediction the same model makes from the best
completed trial's curve cut at the same step (same random draws): a curve identical to
the best one is never stopped, a curve that ends clearly better is never stopped, and
one clearly worse is (the rule then reads "worse than that reference by more than
``(1 - threshold) * |reference|``").  Past the best trial's length, the reference is the
prediction from its whole curve.  The best final value is the last intermediate result of each trial that
completed (NNI takes the last result of whichever trial was assessed last, a bug).
``seed`` makes the MCMC draws reproducible.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nni.assessor import AssessResult, Assessor
from nni.utils import ClassArgsValidator, OptimizeMode, extract_scalar_history

from .._base import parse_optimize_mode, parse_seed
from .._population import check_int, check_number
from .model_factory import CurveModel

__all__ = ["CurvefittingAssessor", "CurvefittingClassArgsValidator"]

logger = logging.getLogger(__name__)


class CurvefittingClassArgsValidator(ClassArgsValidator):
    """NNI's validator of the assessor's classArgs (the constructor checks the same)."""

    def validate_class_args(self, **kwargs: Any) -> None:
        CurvefittingAssessor(**kwargs)


class CurvefittingAssessor(Assessor):
    """Stops trials whose extrapolated learning curve ends clearly below the best result.

    Parameters
    ----------
    epoch_num
        Total number of intermediate results (epochs) a full trial reports (NNI's
        ``target_pos``).
    start_step
        Results needed before a trial is judged.
    threshold
        A trial is stopped when its predicted final value is below ``threshold`` x the
        best final value so far (any number >= 0, as NNI).
    gap
        Judge again after ``gap`` more results.
    optimize_mode
        ``'maximize'`` (default, NNI's only mode) or ``'minimize'``.
    seed
        Seed of the MCMC draws (default: not reproducible, as in NNI).
    """

    def __init__(self, epoch_num: int = 20, start_step: int = 6, threshold: float = 0.95, gap: int = 1,
                 optimize_mode: Any = "maximize", seed: Any = None) -> None:
        # NNI's validator ranges: epoch_num and start_step ints in [0, 9999] (an epoch_num of 0
        # predicts nothing useful: at least 1 here), threshold a number in [0, 9999].
        self.epoch_num = check_int("epoch_num", epoch_num, 1)
        self.start_step = check_int("start_step", start_step, 0)
        if isinstance(threshold, int) and not isinstance(threshold, bool):
            threshold = float(threshold)
        self.threshold = check_number("threshold", threshold, 0, 9999)
        self.gap = check_int("gap", gap, 1)
        self.optimize_mode = parse_optimize_mode(optimize_mode, "maximize")
        self.seed = parse_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self.target_pos = self.epoch_num          # NNI's attribute name
        self.last_judgment_num: dict[str, int] = {}
        self._last: dict[str, float] = {}         # running trial -> last intermediate result (signed)
        self._curves: dict[str, list[float]] = {} # running trial -> its results (signed; minimize only)
        self.completed_best: float | None = None
        self._best_curve: list[float] = []        # minimize: the best completed trial's results (signed)
        self._reference: dict[int, float | None] = {}   # minimize: step -> prediction from _best_curve
        self._draws = int(self._rng.integers(2**63))    # seeds each prediction's MCMC (same step, same draws)

    @property
    def set_best_performance(self) -> bool:
        """NNI's flag: whether a trial has completed."""
        return self.completed_best is not None

    @property
    def completed_best_performance(self) -> float | None:
        """NNI's name of the best final value (in the metric's own sign)."""
        return None if self.completed_best is None else self._sign() * self.completed_best

    def _sign(self) -> float:
        return 1.0 if self.optimize_mode is OptimizeMode.Maximize else -1.0

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """A completed trial's last intermediate result is its final value."""
        last = self._last.pop(trial_job_id, None)
        curve = self._curves.pop(trial_job_id, [])
        self.last_judgment_num.pop(trial_job_id, None)
        if success and last is not None and math.isfinite(last):
            if self.completed_best is None or last > self.completed_best:
                self.completed_best = last
                self._best_curve = curve
                self._reference = {}

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Good unless the extrapolated final value is clearly below the best so far."""
        try:
            values = [self._sign() * v for v in extract_scalar_history(trial_history)]
        except RuntimeError as exc:
            logger.warning("Curvefitting: cannot read intermediate results of %s: %s", trial_job_id, exc)
            return AssessResult.Good
        if values:
            self._last[trial_job_id] = values[-1]
            if self.optimize_mode is OptimizeMode.Minimize:
                self._curves[trial_job_id] = values
        step = len(values)
        if self.completed_best is None or step < self.start_step or step == 0:
            return AssessResult.Good
        last = self.last_judgment_num.get(trial_job_id)
        if last is not None and step - last < self.gap:
            return AssessResult.Good
        self.last_judgment_num[trial_job_id] = step
        if not all(math.isfinite(v) for v in values):
            return AssessResult.Good
        predicted = self._predict(values)
        if predicted is None:
            logger.info("Curvefitting: trial %s: too few curve families fit yet, continuing", trial_job_id)
            return AssessResult.Good
        if self.optimize_mode is OptimizeMode.Maximize:
            # NNI's rule, as NNI writes it: ``predict_y > completed_best_performance * threshold``
            cutoff = self.completed_best * self.threshold
        else:
            reference = self._reference_at(step)
            cutoff = reference - (1.0 - self.threshold) * abs(reference)
        logger.info("Curvefitting: trial %s predicted %.6g at epoch %d, cutoff %.6g", trial_job_id,
                    self._sign() * predicted, self.target_pos, self._sign() * cutoff)
        return AssessResult.Good if predicted > cutoff else AssessResult.Bad

    def _reference_at(self, step: int) -> float:
        """Minimize: what the model predicts from the best trial's first ``step`` results."""
        assert self.completed_best is not None
        step = min(step, len(self._best_curve))   # past its end: its whole curve
        if step == 0:
            return self.completed_best
        if step not in self._reference:
            self._reference[step] = self._predict(self._best_curve[:step])
        reference = self._reference[step]
        return self.completed_best if reference is None else reference

    def _predict(self, values: list[float]) -> float | None:
        """Extrapolation of ``values`` (signed) to ``epoch_num``; None when the model cannot tell."""
        # NNI's curve families describe positive curves (accuracies); those go in as they are,
        # so the numbers are NNI's. A curve with values <= 0 (a negated loss) is mapped
        # affinely onto [0.1, 0.9] for the fit and the prediction mapped back.
        low, high = min(values), max(values)
        if low > 0:
            scale, offset = 1.0, 0.0
        elif high > low:
            scale, offset = 0.8 / (high - low), 0.1 - 0.8 * low / (high - low)
        else:
            return None   # a flat non-positive curve: nothing to extrapolate
        # The same draws for the same step: a trial and the reference it is compared with
        # (minimize) see the same MCMC noise.
        rng = np.random.default_rng([self._draws, len(values)])
        predicted = CurveModel(self.target_pos, rng=rng).predict([v * scale + offset for v in values])
        if predicted is None or not math.isfinite(predicted):
            return None
        return (predicted - offset) / scale
