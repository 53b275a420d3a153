"""The interface between the manager and the machines that run trials."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable


@dataclass(frozen=True)
class GpuNeeds:
    """What each trial asks of GPUs (``trialGpuNumber``) and the rules for sharing them.

    ``trial_gpu_number`` None: no GPU scheduling, ``CUDA_VISIBLE_DEVICES`` left as the manager
    has it; 0: trials see no GPU (NNI's meaning); n > 0: n GPUs each. The sharing rules
    (``gpuIndices``, ``maxTrialNumberPerGpu``, ``useActiveGpu``) are the local service's
    section's, or on ``remote`` each machine's (:meth:`of` with that machine's config).
    """

    trial_gpu_number: int | None = None
    gpu_indices: tuple[int, ...] | None = None
    max_trial_number_per_gpu: int = 1
    use_active_gpu: bool = False

    @classmethod
    def of(cls, trial_gpu_number: int | None, section: Any) -> GpuNeeds:
        """The needs with the sharing rules of a config section (LocalConfig, RemoteMachineConfig, ...)."""
        indices = getattr(section, "gpu_indices", None)
        return cls(trial_gpu_number=trial_gpu_number,
                   gpu_indices=None if indices is None else tuple(indices),
                   max_trial_number_per_gpu=getattr(section, "max_trial_number_per_gpu", None) or 1,
                   use_active_gpu=bool(getattr(section, "use_active_gpu", False)))

    def cuda_env(self, indices: Iterable[int] | None = None) -> dict[str, str]:
        """The ``CUDA_VISIBLE_DEVICES`` a trial gets: the GPUs it holds, ``""`` with
        ``trialGpuNumber: 0`` (no GPU for trials), nothing (inherited) when it is unset."""
        if indices is not None:
            return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, indices))}
        if self.trial_gpu_number == 0:
            return {"CUDA_VISIBLE_DEVICES": ""}
        return {}


def trial_channel_url(nni_manager_ip: str | None, port: int) -> str:
    """The ``NNI_TRIAL_CHANNEL`` trials get: the manager's REST address as a trial reaches it."""
    return f"http://{nni_manager_ip or '127.0.0.1'}:{port}"


@dataclass(frozen=True)
class ServiceContext:
    """What the manager hands a training service: the part of the experiment it needs, typed.

    ``service`` is the service's own ``trainingService`` section (``LocalConfig``,
    ``RemoteConfig``, ``RayConfig``); ``trial_channel`` is the ``NNI_TRIAL_CHANNEL`` trials
    get, ``manager_port`` the REST port on this machine (``remote`` forwards it to each machine).
    """

    experiment_id: str
    experiment_dir: Path
    manager_port: int
    trial_channel: str
    nni_manager_ip: str | None
    trial_code_directory: str
    gpu: GpuNeeds
    service: Any

    @classmethod
    def from_config(cls, config: Any, *, experiment_id: str, experiment_dir: str | Path,
                    port: int) -> ServiceContext:
        """The context for a canonical ``ExperimentConfig`` of experiment ``experiment_id``."""
        service = config.training_service
        return cls(experiment_id=experiment_id, experiment_dir=Path(experiment_dir), manager_port=port,
                   trial_channel=trial_channel_url(config.nni_manager_ip, port),
                   nni_manager_ip=config.nni_manager_ip,
                   trial_code_directory=str(config.trial_code_directory),
                   gpu=GpuNeeds.of(config.trial_gpu_number, service), service=service)


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


@dataclass(frozen=True)
class InterruptedTrial:
    """A trial a previous manager left running, for :meth:`TrainingService.cleanup_interrupted`.

    ``process``: what the service reported as the trial's process when it started
    (``on_trial_start(process=...)``, kept in the store with the attempt); None in a store
    written before nni-ng recorded it there (the service then looks in ``trial_dir``).
    """

    trial_id: str
    trial_dir: str
    process: str | None = None


TrialEndHandler = Callable[[TrialEnded], Awaitable[None]]
TrialStartHandler = Callable[..., Awaitable[None]]   # (trial_id, *, machine=None, process=None)
TrialWaitingHandler = Callable[[str, str], Awaitable[None]]


class TrainingService(ABC):
    """Starts, watches and kills trials.

    It reports through three callbacks set by the manager: ``on_trial_start`` once a
    trial's process runs (with ``machine=`` where, when known, and ``process=`` what
    :meth:`cleanup_interrupted` needs to find that process again after a crash: the manager
    stores it with the attempt), ``on_trial_waiting`` with the reason a submitted trial cannot
    start yet (no free GPU, ...), and ``on_trial_end`` exactly once per trial.
    """

    def __init__(self) -> None:
        self.on_trial_start: TrialStartHandler | None = None
        self.on_trial_waiting: TrialWaitingHandler | None = None
        self.on_trial_end: TrialEndHandler | None = None

    async def start(self) -> None:
        """Prepare machines (called once before the first trial)."""

    async def cleanup_interrupted(self, trials: list[InterruptedTrial]) -> None:
        """End what is left of trials a previous manager started and lost.

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
