"""Batch tuner (NNI's ``BatchTuner``): run a fixed list of parameter sets, each once.

The search space has exactly one parameter, ``combine_params``, a ``choice`` whose
options are the parameter sets (dicts)::

    {"combine_params": {"_type": "choice", "_value": [{"lr": 0.1, "bs": 32}, {"lr": 0.01, "bs": 64}]}}

Each dict is given to a trial as its parameters (not wrapped in ``combine_params``), in
list order; then :class:`nni.NoMoreTrialError` ends the experiment.
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

_KEY = "combine_params"
_EXAMPLE = '{"combine_params": {"_type": "choice", "_value": [{"lr": 0.1}, {"lr": 0.01}]}}'


def _key(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


class BatchTuner(Tuner):
    """Yields every parameter set listed in ``combine_params`` exactly once, in order."""

    def __init__(self) -> None:
        self._values: list[dict] = []
        self._next = 0
        self._done: set[str] = set()   # sets already run (imported), skipped when met

    def update_search_space(self, search_space: dict) -> None:
        """Take the list of parameter sets; refuse any other space shape."""
        if not isinstance(search_space, dict) or set(search_space) != {_KEY}:
            keys = sorted(map(str, search_space)) if isinstance(search_space, dict) else type(search_space).__name__
            raise ValueError(f"BatchTuner: the search space must have exactly one parameter, {_KEY!r}, "
                             f"a choice of parameter dicts such as {_EXAMPLE}; got {keys}")
        spec = search_space[_KEY]
        if not isinstance(spec, dict) or spec.get("_type") != "choice" or not isinstance(spec.get("_value"), list):
            raise ValueError(f"BatchTuner: {_KEY!r} must be {{\"_type\": \"choice\", \"_value\": [dict, ...]}}, "
                             f"got {spec!r}")
        values = spec["_value"]
        if not values:
            raise ValueError(f"BatchTuner: {_KEY!r} lists no parameter sets (its '_value' is empty)")
        for i, v in enumerate(values):
            if not isinstance(v, dict):
                raise ValueError(f"BatchTuner: {_KEY!r} option #{i} must be a dict of parameters "
                                 f"(name -> value), got {v!r}")
        new = copy.deepcopy(values)
        if [_key(v) for v in new] != [_key(v) for v in self._values]:
            self._values = new
            self._next = 0

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next listed parameter set; :class:`NoMoreTrialError` after the last."""
        while self._next < len(self._values):
            params = self._values[self._next]
            self._next += 1
            if _key(params) not in self._done:
                return copy.deepcopy(params)
        raise NoMoreTrialError(f"BatchTuner: all {len(self._values)} parameter sets were given out")

    def receive_trial_result(self, parameter_id: Any, parameters: dict, value: Any, **kwargs: Any) -> None:
        """Results do not change a fixed batch."""

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Parameter sets already run (present in ``data``) are not run again."""
        for entry in data or []:
            if isinstance(entry, dict) and "parameter" in entry:
                self._done.add(_key(entry["parameter"]))
        _logger.info("BatchTuner: %d parameter sets marked as already run", len(self._done))
