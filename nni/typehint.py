"""NNI's ``nni.typehint``: type names for static checking of trial and tuner code."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

if sys.version_info >= (3, 10):
    from typing import Literal, TypeAlias, TypedDict
else:  # pragma: no cover - the project needs 3.9+
    from typing import Literal, TypedDict
    TypeAlias = Any

__all__ = ["Literal", "ParameterRecord", "Parameters", "SearchSpace", "TrialMetric", "TrialRecord",
           "TypeAlias", "TypedDict"]

Parameters = Dict[str, Any]
"""What :func:`nni.get_next_parameter` returns (a dict for built-in tuners; anything JSON for custom ones)."""


class _ParameterSearchSpace(TypedDict):
    _type: Literal["choice", "randint", "uniform", "loguniform", "quniform", "qloguniform",
                   "normal", "lognormal", "qnormal", "qlognormal"]
    _value: List[Any]


SearchSpace = Dict[str, _ParameterSearchSpace]
"""The type of ``experiment.config.search_space`` (NNI's format for built-in tuners)."""

TrialMetric = float
"""What trials report (a number for built-in tuners; any JSON value for custom ones)."""


class TrialRecord(TypedDict):
    """One entry of ``import_data``."""

    parameter: Parameters
    value: TrialMetric


class ParameterRecord(TypedDict):
    """A parameter set as the manager sends it to a trial."""

    parameter_id: Optional[int]
    parameters: Parameters
