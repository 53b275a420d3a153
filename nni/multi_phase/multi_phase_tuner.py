"""The tuner SDK for multi-phase experiments (NNI's ``nni.multi_phase.multi_phase_tuner``)."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import NoMoreTrialError
from ..recoverable import Recoverable

__all__ = ["MultiPhaseTuner"]

_logger = logging.getLogger(__name__)


class MultiPhaseTuner(Recoverable):
    """A tuner that knows which trial job each parameter set is for.

    In a multi-phase experiment (``multiPhase: true``) a trial may call
    ``nni.get_next_parameter()`` many times; each call reaches
    :meth:`generate_parameters` with the trial's ``trial_job_id``, so a tuner can give a
    job a sequence of related parameter sets (warm starts, growing budgets, ...).
    """

    def generate_parameters(self, parameter_id: int, trial_job_id: str | None = None) -> dict[str, Any]:
        """Return one parameter set for ``trial_job_id``; raise :class:`nni.NoMoreTrialError` when done."""
        raise NotImplementedError("MultiPhaseTuner: generate_parameters not implemented")

    def generate_multiple_parameters(self, parameter_id_list: list[int],
                                     trial_job_id: str | None = None) -> list[dict[str, Any]]:
        """Parameter sets for several ids of one trial job; fewer than asked means the search is over."""
        result = []
        for parameter_id in parameter_id_list:
            try:
                result.append(self.generate_parameters(parameter_id, trial_job_id=trial_job_id))
            except NoMoreTrialError:
                break
        return result

    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any,
                             trial_job_id: str | None = None) -> None:
        """The final result a trial job reported for ``parameter_id``."""
        raise NotImplementedError("MultiPhaseTuner: receive_trial_result not implemented")

    def receive_customized_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any,
                                        trial_job_id: str | None = None) -> None:
        """Result of a parameter set the user added by hand; ignored unless overridden."""

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Called once when the trial job ends (after all its phases)."""

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        raise NotImplementedError("MultiPhaseTuner: update_search_space not implemented")

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Learn from earlier results: a list of ``{"parameter": {...}, "value": metric}``."""

    def _on_exit(self) -> None:
        pass

    def _on_error(self) -> None:
        pass
