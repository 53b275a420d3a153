"""The tuner SDK: subclass :class:`Tuner` to write a custom tuner (NNI's ``nni.tuner``)."""

from __future__ import annotations

import logging
from typing import Any

from .errors import NoMoreTrialError
from .recoverable import Recoverable

__all__ = ["Tuner"]

_logger = logging.getLogger(__name__)

Parameters = dict[str, Any]
SearchSpace = dict[str, Any]
TrialMetric = Any


class Tuner(Recoverable):
    """Proposes hyperparameter sets and learns from their results.

    The manager calls every method from one thread, in the order events happened:
    a result is always received before parameters are generated for a trial that
    started after it arrived.
    """

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> Parameters:
        """Return one parameter set for ``parameter_id``; raise :class:`nni.NoMoreTrialError` when done."""
        raise NotImplementedError("Tuner: generate_parameters not implemented")

    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[Parameters]:
        """Return parameter sets for several ids; fewer than asked means the search is over."""
        result = []
        for parameter_id in parameter_id_list:
            try:
                _logger.debug("generating param for %s", parameter_id)
                res = self.generate_parameters(parameter_id, **kwargs)
            except NoMoreTrialError:
                return result
            result.append(res)
        return result

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: TrialMetric, **kwargs: Any) -> None:
        """Called with the final result a trial reported for ``parameter_id``."""
        raise NotImplementedError("Tuner: receive_trial_result not implemented")

    def receive_customized_trial_result(self, parameter_id: int, parameters: Parameters, value: TrialMetric,
                                        **kwargs: Any) -> None:
        """Result of a parameter set the user added by hand; ignored unless overridden."""

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Called when the trial that ran ``parameter_id`` ends, successfully or not."""

    def update_search_space(self, search_space: SearchSpace) -> None:
        """Called before the first request and whenever the user changes the search space."""
        raise NotImplementedError("Tuner: update_search_space not implemented")

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Learn from earlier results: a list of ``{"parameter": {...}, "value": metric}``."""

    def _on_exit(self) -> None:
        pass

    def _on_error(self) -> None:
        pass
