"""nni-ng: a drop-in, maintained successor to NNI's hyperparameter optimization.

``import nni`` is what every trial pays, so this module only pulls in the light
trial-side API; tuners, the manager and numpy load on demand elsewhere.
"""

from __future__ import annotations

from . import trial as _trial
from .errors import NniError, NoMoreTrialError
from .trial import *  # noqa: F401,F403  (the trial API: get_next_parameter, report_final_result, ...)

__version__ = "0.1.0"

__all__ = ["NniError", "NoMoreTrialError", "ClassArgsValidator", *_trial.__all__]


def __getattr__(name: str):
    # NNI exports these at the top level; loaded on first use so trials do not pay for them.
    if name == "ClassArgsValidator":
        from .utils import ClassArgsValidator
        return ClassArgsValidator
    raise AttributeError(f"module 'nni' has no attribute {name!r}")
