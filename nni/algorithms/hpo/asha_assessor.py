"""Asynchronous successive halving as an assessor (``ASHA``; not in NNI, an nni-ng addition).

Li et al. 2020 ("A System for Massively Parallel Hyperparameter Tuning").  Each
intermediate result counts as one unit of resource.  Rungs sit at
``min_resource * reduction_factor**k`` results (k = 0, 1, ...; up to ``max_resource`` when
given).  When a trial reaches a rung its result there (the intermediate result at that
step) is recorded, and the trial continues only if it ranks in the top
``ceil(n / reduction_factor)`` of the ``n`` trials recorded at that rung so far (itself
included); otherwise it is stopped.  Decisions are made as results arrive, never waiting
for a rung to fill, so early trials are judged leniently and later ones against a growing
field, which is what makes the scheme asynchronous.  Use it with any tuner (Random, TPE,
...) when trials report one intermediate result per epoch; trials that report fewer
results than ``min_resource`` are never stopped.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from nni.assessor import AssessResult, Assessor
from nni.utils import OptimizeMode, extract_scalar_history

from ._base import parse_optimize_mode
from ._population import check_int

__all__ = ["AshaAssessor"]

_logger = logging.getLogger(__name__)


class AshaAssessor(Assessor):
    """Asynchronous successive halving on intermediate results.

    Parameters
    ----------
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'``.
    min_resource
        Number of results at the first rung.
    reduction_factor
        Only the top ``1/reduction_factor`` of a rung continue; rungs are this factor apart.
    max_resource
        Last step with a rung (None: rungs continue as long as trials report).
    """

    def __init__(self, optimize_mode: Any = "maximize", min_resource: int = 1, reduction_factor: int = 3,
                 max_resource: int | None = None) -> None:
        self.optimize_mode = parse_optimize_mode(optimize_mode, "maximize")
        self.min_resource = check_int("min_resource", min_resource, 1)
        self.reduction_factor = check_int("reduction_factor", reduction_factor, 2)
        self.max_resource = None if max_resource is None else check_int("max_resource", max_resource, 1)
        if self.max_resource is not None and self.max_resource < self.min_resource:
            raise ValueError(f"max_resource ({max_resource}) must be >= min_resource ({min_resource})")
        self._rungs: dict[int, dict[str, float]] = {}   # rung step -> trial id -> signed value there

    def rung_steps(self, up_to: int) -> list[int]:
        """The rung steps not larger than ``up_to`` (and ``max_resource``)."""
        steps = []
        step = self.min_resource
        limit = up_to if self.max_resource is None else min(up_to, self.max_resource)
        while step <= limit:
            steps.append(step)
            step *= self.reduction_factor
        return steps

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Bad when the trial is not in the top 1/reduction_factor at a rung it just reached."""
        try:
            values = extract_scalar_history(trial_history)
        except RuntimeError as exc:
            _logger.warning("ASHA: cannot read intermediate results of %s: %s", trial_job_id, exc)
            return AssessResult.Good
        sign = 1.0 if self.optimize_mode is OptimizeMode.Maximize else -1.0
        verdict = AssessResult.Good
        for step in self.rung_steps(len(values)):
            rung = self._rungs.setdefault(step, {})
            if trial_job_id in rung:
                continue   # judged at this rung already
            v = sign * values[step - 1]
            if not math.isfinite(v):
                v = -math.inf   # NaN/inf intermediate results rank last
            rung[trial_job_id] = v
            better = sum(1 for other, w in rung.items() if other != trial_job_id and w > v)
            keep = math.ceil(len(rung) / self.reduction_factor)
            if better + 1 > keep:
                _logger.debug("ASHA: trial %s ranks %d of %d at step %d (keeps %d): stop", trial_job_id,
                              better + 1, len(rung), step, keep)
                verdict = AssessResult.Bad
        return verdict
