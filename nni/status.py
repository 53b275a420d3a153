"""The states of trials and experiments: one vocabulary for the manager, the REST API, the
web UI, the CLI and the Python API.

Importable anywhere (no aiohttp, no numpy). The members are ``str`` enums equal to NNI's
status strings, so they compare equal to what the store and the REST API hold; the groups
below are plain tuples of those strings, usable in SQL too.
"""

from __future__ import annotations

from enum import Enum


class TrialStatus(str, Enum):
    """A trial job's status, as NNI names them."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    USER_CANCELED = "USER_CANCELED"
    EARLY_STOPPED = "EARLY_STOPPED"
    #: Ended by the system, not by itself or the user (its manager died, so it is re-run on resume).
    SYS_CANCELED = "SYS_CANCELED"

    def __str__(self) -> str:
        return self.value


class ExperimentStatus(str, Enum):
    """An experiment's status, as NNI names them, plus ``VIEWED`` (served by ``nnictl view``)."""

    INITIALIZED = "INITIALIZED"
    RUNNING = "RUNNING"
    NO_MORE_TRIAL = "NO_MORE_TRIAL"
    TUNER_NO_MORE_TRIAL = "TUNER_NO_MORE_TRIAL"
    DONE = "DONE"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    VIEWED = "VIEWED"

    def __str__(self) -> str:
        return self.value


#: Trials that hold (or wait for) a slot.
TRIAL_ACTIVE: tuple[str, ...] = (TrialStatus.WAITING.value, TrialStatus.RUNNING.value)
#: Trials that have ended, for whatever reason.
TRIAL_ENDED: tuple[str, ...] = tuple(s.value for s in TrialStatus if s.value not in TRIAL_ACTIVE)
TRIAL_ALL: tuple[str, ...] = TRIAL_ACTIVE + TRIAL_ENDED
#: Experiments that are over: nothing runs and nothing will unless the user acts.
EXPERIMENT_ENDED: tuple[str, ...] = (ExperimentStatus.DONE.value, ExperimentStatus.STOPPED.value,
                                     ExperimentStatus.ERROR.value)

__all__ = ["EXPERIMENT_ENDED", "ExperimentStatus", "TRIAL_ACTIVE", "TRIAL_ALL", "TRIAL_ENDED", "TrialStatus"]
