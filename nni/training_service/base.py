"""The interface between the manager and the machines that run trials."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Awaitable, Callable


@dataclass(frozen=True)
class TrialSpec:
    """Everything a training service needs to start one trial."""

    trial_id: str
    sequence_id: int
    command: str
    code_dir: str
    trial_dir: str
    env: dict[str, str] = field(default_factory=dict)
    gpu_number: int = 0
    attempt: int = 1            # 1 for the first run; a re-run of the same trial (same id and dir) counts up


@dataclass(frozen=True)
class TrialEnded:
    """How a trial's process ended: an exit code (negative: killed by that signal) and why.

    ``lost`` says the trial did not end by itself: its machine, node or connection was lost
    (the manager may run it again). ``attempt`` is the :attr:`TrialSpec.attempt` that ended
    (None: the current one), ``machine`` where it ran when the service knows.
    """

    trial_id: str
    exit_code: int | None
    message: str = ""
    lost: bool = False
    attempt: int | None = None
    machine: str | None = None


TrialEndHandler = Callable[[TrialEnded], Awaitable[None]]
TrialStartHandler = Callable[..., Awaitable[None]]   # (trial_id, *, machine=None)
TrialWaitingHandler = Callable[[str, str], Awaitable[None]]


class TrainingService(ABC):
    """Starts, watches and kills trials.

    It reports through three callbacks set by the manager: ``on_trial_start`` once a
    trial's process runs (with ``machine=`` where, when known), ``on_trial_waiting`` with the reason a submitted trial cannot
    start yet (no free GPU, ...), and ``on_trial_end`` exactly once per trial.
    """

    def __init__(self) -> None:
        self.on_trial_start: TrialStartHandler | None = None
        self.on_trial_waiting: TrialWaitingHandler | None = None
        self.on_trial_end: TrialEndHandler | None = None

    async def start(self) -> None:
        """Prepare machines (called once before the first trial)."""

    async def cleanup_interrupted(self, trials: list[tuple[str, str]]) -> None:
        """End what is left of trials a previous manager started and lost: (trial id, trial dir).

        Called on resume, before any new trial starts; the default has nothing to clean.
        """

    @abstractmethod
    async def submit(self, spec: TrialSpec) -> None:
        """Accept the trial: start it now or queue it until resources are free."""

    @abstractmethod
    async def kill(self, trial_id: str) -> None:
        """End the trial's whole process tree; its end is still reported through ``on_trial_end``."""

    @abstractmethod
    async def stop(self) -> None:
        """Kill every trial still running and release the machines."""
