"""Runs trials as shell commands on this machine, each in its own process group."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from ..runtime.process import pid_alive, start_ticks
from ._common import TrialQueue, end_message
from ._spawner import LaunchedTrial, Spawner
from ._subreaper import descendants
from .base import InterruptedTrial, ServiceContext, TrainingService, TrialEnded, TrialSpec
from .gpu import GpuError, GpuScheduler

# A trial gets this long to exit after SIGTERM before the whole tree is SIGKILLed.
KILL_GRACE_SECONDS = 0.5
_logger = logging.getLogger("nni.training_service.local")
# "<pid> <start ticks>" of the process group leader, in each trial's directory before the
# store kept it (a resume of an experiment from an earlier version reads it there).
_PID_FILE = "trial.pid"


def signal_tree(root: int, sig: int) -> None:
    """Send ``sig`` to ``root``'s process group, to ``root`` and to every descendant found."""
    pids = [root, *descendants(root)]
    try:
        os.killpg(root, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _pid_file(trial_dir: str) -> str:
    return (Path(trial_dir) / _PID_FILE).read_text()


async def _reap_escaped(tree: list[tuple[int, str | None]]) -> None:
    """Wait until the descendants seen at kill time are gone; SIGKILL those that linger.

    Children that left the trial's process group got SIGTERM, but nobody here waits for
    them, and a kill must not return while they still run.
    """
    def alive() -> list[int]:
        return [pid for pid, ticks in tree if ticks is not None and start_ticks(pid) == ticks and pid_alive(pid)]

    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for pid in alive():
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 1.0
    while alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


class LocalTrainingService(TrainingService):
    """Trials on this machine; with ``trialGpuNumber > 0`` they queue for GPUs (:class:`GpuScheduler`)."""

    def __init__(self, context: ServiceContext) -> None:
        super().__init__()
        self._context = context
        self._processes: dict[str, LaunchedTrial] = {}
        # trials whose process is being created: a kill waits for it rather than missing it
        self._starting: dict[str, asyncio.Event] = {}
        self._watchers: set[asyncio.Task] = set()
        self._gpus: GpuScheduler | None = None
        self._gpu_queue = TrialQueue(self, self._dispatch_gpu_queue)
        self._gpu_held: dict[str, list[int]] = {}
        self._spawner: Spawner | None = None

    async def start(self) -> None:
        # The one process that starts the trials is also what ends them when the manager dies
        # (its stdin closes: every launcher is told SIGUSR1) or when it is killed itself (each
        # launcher has PR_SET_PDEATHSIG): see _subreaper.py.
        self._spawner = await Spawner.start()
        gpu_number = self._context.gpu.trial_gpu_number or 0
        if gpu_number > 0:
            try:
                self._gpus = await GpuScheduler.create(self._context.gpu)
                self._gpus.check_request(gpu_number)
            except GpuError as exc:
                raise GpuError(f"trialGpuNumber is {gpu_number} but {exc}") from None

    async def submit(self, spec: TrialSpec) -> None:
        if spec.gpu_number > 0 and self._gpus is not None:
            self._gpu_queue.append(spec)
            await self._gpu_queue.dispatch()
            return
        # A start that raises reaches the manager, which records the trial FAILED.
        await self._started(spec, await self._start_process(spec, {**spec.env, **self._context.gpu.cuda_env()}))

    async def _dispatch_gpu_queue(self) -> None:
        """Start queued trials while GPUs are free (run by the queue, one at a time).

        Nothing here may raise: this also runs from another trial's end (its watcher) or a
        recheck timer, where no caller would hear it, and the queue would stall for good.
        """
        assert self._gpus is not None
        while self._gpu_queue:
            spec = self._gpu_queue.specs[0]
            roots = [p.pid for p in self._processes.values()]
            own_pids = {*roots, *descendants(*roots)}
            try:
                indices, reason = await self._gpus.allocate(spec.gpu_number, own_pids)
                recheck = "busy with other processes" in reason
            except GpuError as exc:   # nvidia-smi failed or hung this time: ask it again later
                _logger.warning("GPU query failed: %s", exc)
                indices, reason, recheck = None, f"waiting for {spec.gpu_number} GPU(s): {exc}", True
            if indices is None:
                await self._gpu_queue.wait(spec, reason)
                if recheck:
                    self._gpu_queue.recheck_later()
                return
            if not self._gpu_queue.take(spec):   # killed while nvidia-smi ran
                self._gpus.release(indices)
                continue
            self._gpu_held[spec.trial_id] = indices
            try:
                process = await self._start_process(spec, {**spec.env, **self._context.gpu.cuda_env(indices)})
            except Exception as exc:
                # Nothing started, so nothing would ever end it: give the GPUs back and report
                # the end here (code directory gone, EMFILE, disk full), then go on with the queue.
                _logger.warning("trial %s could not start: %s", spec.trial_id, exc)
                self._gpu_held.pop(spec.trial_id, None)
                self._gpus.release(indices)
                if self.on_trial_end is not None:
                    await self.on_trial_end(TrialEnded(spec.trial_id, None, f"could not start the trial: {exc}",
                                                       attempt=spec.attempt))
                continue
            await self._started(spec, process)

    async def _start_process(self, spec: TrialSpec, env: dict[str, str]) -> LaunchedTrial:
        """Create the trial's process; when this raises, nothing was started and nothing is held."""
        trial_dir = Path(spec.trial_dir)
        started = self._starting[spec.trial_id] = asyncio.Event()
        try:
            if self._spawner is None:
                raise OSError("the local training service is not started")
            # The launcher runs /bin/sh -c COMMAND as a child subreaper in a new session: daemons
            # the trial double-forks stay in its tree and end with it (see _subreaper.py). It
            # creates the trial's directory (a file system's inode allocation is among the
            # dearest steps of a trial, and not the event loop's to wait for); the trial's stdout
            # and stderr are appended to: a re-run (a new attempt of the same trial) keeps the
            # earlier attempts' output.
            # Only the trial's own variables travel: the spawner adds them to its environment, the
            # manager's as the service started (copying and encoding ~50 variables a trial was
            # ~0.3 ms of CPU on the two sides).
            process = await self._spawner.spawn(spec.command, cwd=spec.code_dir, env=env, mkdir=(spec.trial_dir,),
                                                stdout=trial_dir / "stdout", stderr=trial_dir / "stderr")
            self._processes[spec.trial_id] = process
        finally:
            del self._starting[spec.trial_id]
            started.set()
        return process

    async def _started(self, spec: TrialSpec, process: LaunchedTrial) -> None:
        """Watch a trial's new process: from here on its end is reported by the watcher, whatever fails."""
        # The watcher first: it is what reports the end (and gives back the GPUs), so a later
        # step that raises cannot leave a running trial nobody waits for.
        watcher = asyncio.create_task(self._watch(spec, process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        if self.on_trial_start is not None:
            # The launcher's pid and start: stored with the attempt, they let a resumed manager
            # end this trial if the current one dies while it runs.
            await self.on_trial_start(spec.trial_id, machine="local",
                                      process=f"{process.pid} {process.start or start_ticks(process.pid)}")

    async def _watch(self, spec: TrialSpec, process: LaunchedTrial) -> None:
        exit_code = await process.wait()
        # The shell is gone but children it started may still run in its group: end them too.
        # (A group id is never reused while the group has members, so this cannot hit a stranger.)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._processes.pop(spec.trial_id, None)
        message = end_message(exit_code, Path(spec.trial_dir) / "stderr")
        await self._ended(TrialEnded(spec.trial_id, exit_code, message, attempt=spec.attempt))

    async def _ended(self, ended: TrialEnded) -> None:
        held = self._gpu_held.pop(ended.trial_id, None)
        if held is not None and self._gpus is not None:
            self._gpus.release(held)
        if self.on_trial_end is not None:
            await self.on_trial_end(ended)
        if held is not None:
            await self._gpu_queue.dispatch()

    async def kill(self, trial_id: str) -> None:
        if await self._gpu_queue.cancel(trial_id):
            return
        starting = self._starting.get(trial_id)
        if starting is not None:
            await starting.wait()
        process = self._processes.get(trial_id)
        if process is None or process.returncode is not None:
            return
        tree = [(pid, start_ticks(pid)) for pid in (process.pid, *descendants(process.pid))]
        signal_tree(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE_SECONDS)
        except asyncio.TimeoutError:
            signal_tree(process.pid, signal.SIGKILL)
            await process.wait()
        await _reap_escaped(tree)

    async def cleanup_interrupted(self, trials: list[InterruptedTrial]) -> None:
        for trial in trials:
            try:
                pid_text, ticks = (trial.process or _pid_file(trial.trial_dir)).split()
                pid = int(pid_text)
            except (OSError, ValueError):
                continue
            # The launcher that led the trial's process group may be gone while its children
            # live on; a pid is not reused while a group of that id exists, so killing the
            # group is safe unless a new process has taken the pid (then its start differs).
            current = start_ticks(pid)
            if current is not None and current != ticks:
                continue
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    async def stop(self) -> None:
        await self._gpu_queue.close()
        trial_ids = list(self._processes)
        results = await asyncio.gather(*(self.kill(t) for t in trial_ids), return_exceptions=True)
        failed = [(t, r) for t, r in zip(trial_ids, results) if isinstance(r, Exception)]
        for trial_id, exc in failed:
            _logger.error("stopping: killing trial %s failed", trial_id, exc_info=exc)
        if failed:
            # What a failed kill left running ends with the spawner (its stdin closes: every
            # launcher still running ends its tree); the watchers then see their trials exit.
            await self._close_spawner()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)
        await self._close_spawner()

    async def _close_spawner(self) -> None:
        spawner, self._spawner = self._spawner, None
        if spawner is not None:
            await spawner.close()
