"""GPU discovery through ``nvidia-smi`` and the allocation of GPUs to trials.

``nvidia-smi`` can take seconds (up to its 30 s timeout here) on a loaded machine, so the
scheduler runs it on a worker thread: the manager's event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable

from ..errors import NniError
from .base import GpuNeeds


class GpuError(NniError, RuntimeError):
    """GPUs were requested but cannot be provided (none found, too few usable)."""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    busy_pids: tuple[int, ...] = ()   # processes computing on it right now


def _smi(*args: str) -> list[list[str]]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise GpuError("nvidia-smi was not found on PATH")
    try:
        out = subprocess.run([exe, *args, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuError(f"nvidia-smi failed: {exc}") from exc
    if out.returncode != 0:
        raise GpuError(f"nvidia-smi failed (exit code {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def detect_gpus() -> list[GpuInfo]:
    """The GPUs of this machine and the processes using each."""
    gpus = _smi("--query-gpu=index,uuid,name")
    apps = _smi("--query-compute-apps=gpu_uuid,pid")
    busy: dict[str, list[int]] = {}
    for row in apps:
        if len(row) >= 2 and row[1].isdigit():
            busy.setdefault(row[0], []).append(int(row[1]))
    return [GpuInfo(int(index), uuid, name, tuple(busy.get(uuid, ()))) for index, uuid, name in gpus]


class GpuScheduler:
    """Hands out GPU indices: at most ``max_trial_number_per_gpu`` trials on each, busy GPUs skipped.

    Build it with :meth:`create`; it and :meth:`allocate` run ``nvidia-smi`` off the event loop.
    """

    def __init__(self, needs: GpuNeeds, gpus: list[GpuInfo]) -> None:
        self._needs = needs
        self._load: dict[int, int] = {}
        allowed = None if needs.gpu_indices is None else set(needs.gpu_indices)
        self.gpus = [g for g in gpus if allowed is None or g.index in allowed]
        if not self.gpus:
            where = "" if allowed is None else f" among gpuIndices {sorted(allowed)}"
            raise GpuError(f"no GPU found{where}")
        if allowed is not None:
            missing = allowed - {g.index for g in self.gpus}
            if missing:
                raise GpuError(f"gpuIndices {sorted(missing)} do not exist on this machine "
                               f"(found {[g.index for g in gpus]})")

    @classmethod
    async def create(cls, needs: GpuNeeds) -> GpuScheduler:
        """The scheduler for this machine's GPUs (detected on a worker thread)."""
        return cls(needs, await asyncio.to_thread(detect_gpus))

    def check_request(self, gpu_number: int) -> None:
        if gpu_number > len(self.gpus):
            raise GpuError(f"trialGpuNumber is {gpu_number} but only {len(self.gpus)} GPU(s) can be used "
                           f"({', '.join(str(g.index) for g in self.gpus)})")

    async def allocate(self, gpu_number: int, own_pids: set[int]) -> tuple[list[int] | None, str]:
        """Indices for one trial, or None and the reason it has to wait.

        Only the ``nvidia-smi`` query runs on a worker thread; the choice and the load count
        happen on the loop, so :meth:`release` never races with them.
        """
        busy: list[int] = []
        if not self._needs.use_active_gpu:
            for gpu in await asyncio.to_thread(detect_gpus):
                if set(gpu.busy_pids) - own_pids:
                    busy.append(gpu.index)
        chosen, reason = choose_gpus([g.index for g in self.gpus], busy, self._load,
                                     self._needs.max_trial_number_per_gpu, gpu_number)
        return chosen, (f"waiting for {gpu_number} free GPU(s): {reason}" if chosen is None else "")

    def release(self, indices: Iterable[int]) -> None:
        for index in indices:
            self._load[index] = max(0, self._load.get(index, 0) - 1)


def choose_gpus(indices: list[int], busy: Iterable[int], load: dict[int, int], cap: int,
                number: int) -> tuple[list[int] | None, str]:
    """Pick ``number`` of ``indices`` for one trial and count them in ``load``; None and why if not enough.

    A GPU is free while fewer than ``cap`` (maxTrialNumberPerGpu) trials hold it and it is
    not ``busy`` with other programs; the least loaded free GPUs are chosen. Shared by the
    local and remote services so both follow the same rules.
    """
    busy = sorted(set(busy))
    free = sorted((i for i in indices if i not in busy and load.get(i, 0) < cap), key=lambda i: load.get(i, 0))
    if len(free) < number:
        reasons = []
        if busy:
            reasons.append(f"GPU {', '.join(map(str, busy))} busy with other processes "
                           "(set useActiveGpu: true to share them)")
        full = [i for i in indices if load.get(i, 0) >= cap]
        if full:
            reasons.append(f"GPU {', '.join(map(str, full))} already run maxTrialNumberPerGpu={cap} trial(s)")
        return None, "; ".join(reasons) or "not enough GPUs"
    chosen = sorted(free[:number])
    for index in chosen:
        load[index] = load.get(index, 0) + 1
    return chosen, ""
