"""Batch tuner (NNI's ``BatchTuner``): run a fixed list of parameter sets, each once.

The search space has exactly one parameter, of any name, a ``choice`` whose options are
what the trials receive, in list order (NNI's semantics)::

    {"combine_params": {"_type": "choice", "_value": [{"lr": 0.1, "bs": 32}, {"lr": 0.01, "bs": 64}]}}

A dict option is given to a trial as its parameters (not wrapped in the parameter's
name); a scalar option is given as it is (``nni.get_next_parameter()`` returns ``0.1``),
as NNI does.  After the last option :class:`nni.NoMoreTrialError` ends the experiment.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from nni.errors import NoMoreTrialError
from nni.tuner import Tuner

__all__ = ["BatchTuner"]

_logger = logging.getLogger(__name__)

_EXAMPLE = '{"combine_params": {"_type": "choice", "_value": [{"lr": 0.1}, {"lr": 0.01}]}}'


def _key(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


class BatchTuner(Tuner):
    """Yields every option of the space's single ``choice`` exactly once, in order."""

    def __init__(self) -> None:
        self._values: list[Any] = []
        self._next = 0
        self._done: set[str] = set()   # sets already run (imported), skipped when met

    def update_search_space(self, search_space: dict) -> None:
        """Take the list of parameter sets; refuse any other space shape."""
        if not isinstance(search_space, dict) or len(search_space) != 1:
            keys = sorted(map(str, search_space)) if isinstance(search_space, dict) else type(search_space).__name__
            raise ValueError(f"BatchTuner: the search space must have exactly one parameter (any name), "
                             f"a choice of parameter sets such as {_EXAMPLE}; got {keys}")
        (name, spec), = search_space.items()
        if not isinstance(spec, dict) or spec.get("_type") != "choice" or not isinstance(spec.get("_value"), list):
            raise ValueError(f"BatchTuner: {name!r} must be {{\"_type\": \"choice\", \"_value\": [...]}}, "
                             f"got {spec!r}")
        values = spec["_value"]
        if not values:
            raise ValueError(f"BatchTuner: {name!r} lists no parameter sets (its '_value' is empty)")
        new = copy.deepcopy(values)
        if [_key(v) for v in new] != [_key(v) for v in self._values]:
            self._values = new
            self._next = 0

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> Any:
        """The next listed option; :class:`NoMoreTrialError` after the last."""
        while self._next < len(self._values):
            params = self._values[self._next]
            self._next += 1
            if _key(params) not in self._done:
                return copy.deepcopy(params)
        raise NoMoreTrialError(f"BatchTuner: all {len(self._values)} parameter sets were given out")

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """Results do not change a fixed batch."""

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Parameter sets already run (present in ``data``) are not run again."""
        for entry in data or []:
            if isinstance(entry, dict) and "parameter" in entry:
                self._done.add(_key(entry["parameter"]))
        _logger.info("BatchTuner: %d parameter sets marked as already run", len(self._done))
