"""The assessor SDK: decide from intermediate results whether a trial should stop early."""

from __future__ import annotations

from enum import Enum
from typing import Any

from .recoverable import Recoverable

__all__ = ["AssessResult", "Assessor"]


class AssessResult(Enum):
    """An assessor's verdict on a running trial."""

    Good = True
    Bad = False


class Assessor(Recoverable):
    """Watches intermediate results and early-stops trials that will not pay off."""

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Judge a trial from all its intermediate results so far (oldest first)."""
        raise NotImplementedError("Assessor: assess_trial not implemented")

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Called when a trial ends; ``success`` is False for failed or stopped trials."""

    def _on_exit(self) -> None:
        pass

    def _on_error(self) -> None:
        pass
