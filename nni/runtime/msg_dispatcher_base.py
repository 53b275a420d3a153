"""NNI's ``nni.runtime.msg_dispatcher_base`` (importable names only).

NNI ran tuners in a separate dispatcher process that talked to the Node.js manager over
a command pipe; ``MsgDispatcherBase`` was the base of that loop and of NNI's old
advisors.  nni-ng's manager calls the tuner's methods directly on a thread of its own
(see docs/architecture.md), so there is no pipe to dispatch: the class exists so code
that imports or subclasses it still loads, and :meth:`run` says what to do instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MsgDispatcherBase", "CommandType"]


class CommandType:
    """NNI's dispatcher command codes (for code that compares against them)."""

    Initialize = "IN"
    RequestTrialJobs = "GE"
    ReportMetricData = "ME"
    UpdateSearchSpace = "SS"
    ImportData = "FD"
    AddCustomizedTrialJob = "AD"
    TrialEnd = "EN"
    Terminate = "TE"
    Ping = "PI"
    Initialized = "ID"
    NewTrialJob = "TR"
    SendTrialJobParameter = "SP"
    NoMoreTrialJobs = "NO"
    KillTrialJob = "KI"


class MsgDispatcherBase:
    """Base of NNI's dispatcher loop; not used by nni-ng's in-process manager."""

    def __init__(self, command_channel_url: Any = None) -> None:
        self.command_channel_url = command_channel_url
        self.stopping = False

    def run(self) -> None:
        raise NotImplementedError(
            "nni-ng has no dispatcher process: the manager calls the tuner and assessor directly. "
            "Give your tuner in the config (tuner: className/codeDirectory) or to Experiment(tuner, 'local').")

    def handle_initialize(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_request_trial_jobs(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_update_search_space(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_import_data(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_add_customized_trial(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_report_metric_data(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""

    def handle_trial_end(self, data: Any) -> None:
        """Called by NNI's dispatcher loop; nni-ng never calls it."""
