"""NNI's ``nni.runtime.msg_dispatcher`` (importable names only; see :mod:`.msg_dispatcher_base`)."""

from __future__ import annotations

from typing import Any

from .msg_dispatcher_base import CommandType, MsgDispatcherBase

__all__ = ["MsgDispatcher", "CommandType"]


class MsgDispatcher(MsgDispatcherBase):
    """NNI's dispatcher of one tuner and one assessor; nni-ng's manager does this in-process."""

    def __init__(self, command_channel_url: Any = None, tuner: Any = None, assessor: Any = None) -> None:
        super().__init__(command_channel_url)
        self.tuner = tuner
        self.assessor = assessor
