"""What the Python API returns (NNI's ``nni.experiment`` data classes, same fields)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..records import ParameterRecord


def _decode(value: Any) -> Any:
    """Undo the JSON string encoding NNI uses for metric values (once or twice)."""
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


@dataclass(init=False)
class TrialResult:
    """One final result: the exact parameters of that parameter set, and its value.

    ``parameterIndex`` is the phase within its trial job (always 0 unless multi-phase).
    """

    parameter: dict
    value: Any
    trialJobId: str
    parameterId: int | None = None
    parameterIndex: int = 0

    def __init__(self, parameter: dict, value: Any, trialJobId: str, parameterId: int | None = None,
                 parameterIndex: int = 0, **_: Any) -> None:
        self.parameter = parameter
        self.value = _decode(value)
        self.trialJobId = trialJobId
        self.parameterId = parameterId
        self.parameterIndex = parameterIndex


@dataclass(init=False)
class TrialMetricData:
    """A reported metric: ``type`` is 'PERIODICAL' (intermediate) or 'FINAL'."""

    timestamp: int
    trialJobId: str
    parameterId: int | None
    type: str
    sequence: int
    data: Any

    def __init__(self, timestamp: int, trialJobId: str, parameterId: Any, type: str, sequence: int,
                 data: Any, **_: Any) -> None:
        self.timestamp = timestamp
        self.trialJobId = trialJobId
        self.parameterId = None if parameterId is None else int(parameterId)
        self.type = type
        self.sequence = sequence
        self.data = _decode(data)


@dataclass(init=False)
class TrialHyperParameters(ParameterRecord):
    """A parameter set given to a trial (``parameter_index`` is its phase): the
    :class:`~nni.records.ParameterRecord` of NNI's wire record, extra keys ignored."""

    def __init__(self, parameter_id: int, parameter_source: str, parameters: dict, parameter_index: int = 0,
                 **_: Any) -> None:
        super().__init__(parameter_id, parameter_source, parameters, parameter_index)


@dataclass(init=False)
class TrialJob:
    """A trial: its state, parameter sets, final metrics, log paths and why it ended."""

    trialJobId: str
    status: str
    hyperParameters: list[TrialHyperParameters]
    logPath: str | None
    startTime: int | None
    endTime: int | None
    finalMetricData: list[TrialMetricData]
    stderrPath: str | None
    stdoutPath: str | None = None
    trialDir: str | None = None
    sequenceId: int | None = None
    exitCode: int | None = None
    message: str | None = None
    attempts: list[dict] = field(default_factory=list)
    """nni-ng: every run of the trial (``attempt``, ``machine``, ``status``, times, ``cause``, ``reason``)."""
    extra: dict = field(default_factory=dict)

    def __init__(self, trialJobId: str, status: str, hyperParameters: list[Any] | None = None,
                 logPath: str | None = None, startTime: int | None = None, endTime: int | None = None,
                 finalMetricData: list[Any] | None = None, stderrPath: str | None = None,
                 sequenceId: int | None = None, exitCode: int | None = None, message: str | None = None,
                 stdoutPath: str | None = None, trialDir: str | None = None, attempts: list[dict] | None = None,
                 **extra: Any) -> None:
        self.trialJobId = trialJobId
        self.status = status
        self.hyperParameters = [TrialHyperParameters.from_wire(json.loads(h) if isinstance(h, str) else h)
                                for h in hyperParameters or []]
        self.logPath = logPath
        self.startTime = startTime
        self.endTime = endTime
        self.finalMetricData = [TrialMetricData(**m) for m in finalMetricData or []]
        self.stderrPath = stderrPath
        self.stdoutPath = stdoutPath
        self.trialDir = trialDir
        self.sequenceId = sequenceId
        self.exitCode = exitCode
        self.message = message
        self.attempts = list(attempts or [])
        self.extra = extra
