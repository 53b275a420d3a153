"""NNI's ``nni.runtime.msg_dispatcher`` (importable names only; see :mod:`.msg_dispatcher_base`)."""

from __future__ import annotations

from typing import Any

from .msg_dispatcher_base import CommandType, MsgDispatcherBase

__all__ = ["MsgDispatcher", "CommandType"]


def _pack_parameter(parameter_id: Any, params: Any, customized: bool = False, trial_job_id: Any = None,
                    parameter_index: Any = None) -> str:
    """A parameter record as the JSON text NNI's dispatcher sent its trials (NNI's helper, which
    its tuner tests import): the same fields nni-ng's manager gives a trial."""
    import json
    record = {"parameter_id": parameter_id, "parameter_source": "customized" if customized else "algorithm",
              "parameters": params, "parameter_index": parameter_index if parameter_index is not None else 0}
    if trial_job_id is not None:
        record["trial_job_id"] = trial_job_id
    return json.dumps(record)


class MsgDispatcher(MsgDispatcherBase):
    """NNI's dispatcher of one tuner and one assessor; nni-ng's manager does this in-process."""

    def __init__(self, command_channel_url: Any = None, tuner: Any = None, assessor: Any = None) -> None:
        super().__init__(command_channel_url)
        self.tuner = tuner
        self.assessor = assessor
