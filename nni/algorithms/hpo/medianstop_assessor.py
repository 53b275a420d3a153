"""Median stopping rule (NNI's ``MedianstopAssessor``).

A running trial is stopped at step S when its best intermediate result so far is
strictly worse than the median of the running averages, at step S, of the completed
trials that reached step S.  Nothing is stopped before ``start_step`` results, nor
while no completed trial reached the step.  With an even number of completed trials the
median is a middle value, as in NNI: the lower one when maximizing, the upper one when
minimizing.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from nni.assessor import AssessResult, Assessor
from nni.utils import OptimizeMode, extract_scalar_history

from ._base import parse_optimize_mode

__all__ = ["MedianstopAssessor"]

_logger = logging.getLogger(__name__)


class MedianstopAssessor(Assessor):
    """Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    start_step
        Only assess a trial once it reported at least this many intermediate results.
    """

    def __init__(self, optimize_mode: Any = "maximize", start_step: int = 0) -> None:
        self.optimize_mode = parse_optimize_mode(optimize_mode, "maximize")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"start_step must be a non-negative int, got {start_step!r}")
        self.start_step = start_step
        self._running: dict[str, list[float]] = {}
        self._completed_avg: dict[str, list[float]] = {}

    def _sign(self) -> float:
        return 1.0 if self.optimize_mode is OptimizeMode.Maximize else -1.0

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        history = self._running.pop(trial_job_id, None)
        if success and history:
            avgs, total = [], 0.0
            for i, v in enumerate(history):
                total += v
                avgs.append(total / (i + 1))
            self._completed_avg[trial_job_id] = avgs

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        try:
            values = extract_scalar_history(trial_history)
        except RuntimeError as exc:
            _logger.warning("Medianstop: cannot read intermediate results of %s: %s", trial_job_id, exc)
            return AssessResult.Good
        self._running[trial_job_id] = values
        step = len(values)
        if step == 0 or step < self.start_step:
            return AssessResult.Good
        others = [avgs[step - 1] for tid, avgs in self._completed_avg.items()
                  if tid != trial_job_id and len(avgs) >= step and math.isfinite(avgs[step - 1])]
        if not others:
            return AssessResult.Good
        # NNI's median of an even count is one of the two middle values, not their mean: the
        # lower one when maximizing (``avg_array[(len(avg_array)-1) // 2]``), the upper one when
        # minimizing (``avg_array[len(avg_array) // 2]``) - the more lenient of the two.
        others.sort()
        median = others[(len(others) - 1) // 2] if self.optimize_mode is OptimizeMode.Maximize \
            else others[len(others) // 2]
        sign = self._sign()
        finite = [sign * v for v in values if math.isfinite(v)]
        if not finite:
            return AssessResult.Bad
        best = max(finite)
        return AssessResult.Bad if best < sign * median else AssessResult.Good
