"""NNI's ``nni.runtime.trial_command_channel``: swap the trial's channel to the manager.

NNI's own unit tests (and some users') replace the channel so that
``nni.get_next_parameter()`` / ``nni.report_final_result()`` talk to an object of theirs::

    class Fake(TrialCommandChannel):
        def receive_parameter(self): return {"parameter_id": 0, "parameters": {"x": 1}}
        def send_metric(self, type, parameter_id, trial_job_id, sequence, value): ...

    set_default_trial_command_channel(Fake())

Once a channel is set, the trial API uses it (also outside an experiment).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["ParameterRecord", "TrialCommandChannel", "get_default_trial_command_channel",
           "set_default_trial_command_channel"]

from ...typehint import ParameterRecord  # noqa: E402  (re-exported, as NNI does)

_channel: Optional["TrialCommandChannel"] = None


class TrialCommandChannel:
    """What the trial API needs from a channel (NNI's interface)."""

    def receive_parameter(self) -> Optional[ParameterRecord]:
        """The next parameter record, or None when there is no more."""
        raise NotImplementedError()

    def send_metric(self, type: str, parameter_id: Optional[int], trial_job_id: str,  # noqa: A002
                    sequence: int, value: Any) -> None:
        """Send one metric (``type`` is ``'PERIODICAL'`` or ``'FINAL'``; ``value`` a JSON string)."""
        raise NotImplementedError()


class _ManagerChannel(TrialCommandChannel):
    """nni-ng's HTTP channel to the manager, behind NNI's interface."""

    def __init__(self) -> None:
        from ... import trial
        self._channel = trial._get_channel()
        self._index = 0

    def receive_parameter(self) -> Optional[ParameterRecord]:
        record = self._channel.request_parameter(self._index)
        self._index += 1
        return record

    def send_metric(self, type: str, parameter_id: Optional[int], trial_job_id: str,  # noqa: A002
                    sequence: int, value: Any) -> None:
        self._channel.send_metric(parameter_id, type, sequence, value)


class _StandaloneChannel(TrialCommandChannel):
    """Outside an experiment (no channel to a manager, as with ``NNI_PLATFORM=unittest``): the
    trial API's own standalone behaviour (empty parameters, metrics printed)."""

    def receive_parameter(self) -> Optional[ParameterRecord]:
        return {"parameter_id": None, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0}

    def send_metric(self, type: str, parameter_id: Optional[int], trial_job_id: str,  # noqa: A002
                    sequence: int, value: Any) -> None:
        print(f"[nni standalone] {type.lower()} result: {value}", flush=True)


def set_default_trial_command_channel(channel: Optional[TrialCommandChannel] = None) -> TrialCommandChannel:
    """Make ``channel`` the trial's channel. With None, as NNI: the manager's channel when this
    process is a trial of an experiment, else a standalone one."""
    global _channel
    from ... import trial
    if channel is None:
        channel = _ManagerChannel() if trial._env.channel_url else _StandaloneChannel()
    if channel is not _channel:
        # Parameter sets and their "final result sent" marks belong to the channel that gave
        # them: a new channel starts with none (NNI's tests swap one in for each case).
        trial._reset_records()
    _channel = channel
    return _channel


def get_default_trial_command_channel() -> TrialCommandChannel:
    """The channel set with :func:`set_default_trial_command_channel` (the manager's by default)."""
    return _channel if _channel is not None else set_default_trial_command_channel()


def _user_channel() -> Optional[TrialCommandChannel]:
    """A channel a user set (None while the built-in one is used)."""
    return None if _channel is None or isinstance(_channel, (_ManagerChannel, _StandaloneChannel)) else _channel
