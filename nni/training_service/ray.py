"""Runs each trial as a Ray task (``platform: ray``).

The task (:func:`_run_trial`, on whichever node Ray picks with the requested resources)
starts the trial command with ``/bin/sh`` in its own session and process group, waits
for it and returns its exit status. The trial reports to the manager over the usual HTTP
channel. Where the experiment's trial directory is visible on the node (this machine, a
shared file system) stdout/stderr are written there live; elsewhere they go to a
node-local directory and come back with the task's result.

No orphans: the trial's group holds a watchdog that reads a pipe from the Ray worker; when
the worker dies (``ray.cancel(force=True)``, node lost, cluster shut down) the pipe closes
and the watchdog SIGKILLs the group. A normal cancel (``ray.cancel``) interrupts the task,
which sends SIGTERM, then SIGKILL, to the group itself.

``import ray`` and ``ray.init`` take seconds, so both run on a worker thread, never on the
manager's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from ..runtime.process import group_is_ours, process_start
from ._common import STDERR_TAIL_BYTES, end_message, launcher_env, tail_bytes, watched_trial_script
from .base import ServiceContext, TrainingService, TrialEnded, TrialSpec

_log = logging.getLogger("nni.training_service.ray")

KILL_GRACE_SECONDS = 1.0
RETURNED_LOG_BYTES = 8 * 1024 * 1024   # logs a node cannot write to the trial dir come back, capped

# Same watchdog as the SSH service: fd 0 is a pipe from the Ray worker.
_INNER_SCRIPT = watched_trial_script()


def _node_name() -> str:
    """``ray node <node id>`` of the node this task runs on (what an attempt's record shows)."""
    try:
        import ray
        return f"ray node {ray.get_runtime_context().get_node_id()}"
    except Exception:  # noqa: BLE001 - outside a Ray worker
        import socket
        return socket.gethostname()


def _start_lease_keeper(env: dict[str, str], machine: str, process: Any) -> None:
    """Renew the attempt's lease from this node while the trial runs (a daemon thread of the task).

    If the node (or its network) goes silent the renewals stop and the manager declares the
    attempt lost; the thread ends with the task or when the manager says it was superseded.
    """
    interval = float(env.get("NNI_TRIAL_LEASE_INTERVAL") or 0)
    url, token, trial_id = env.get("NNI_TRIAL_CHANNEL"), env.get("NNI_TRIAL_TOKEN"), env.get("NNI_TRIAL_JOB_ID")
    if not (interval > 0 and url and token and trial_id):
        return
    import threading

    from ..runtime.channel import TrialChannel
    from ..runtime.lease import keep_lease
    channel = TrialChannel(url, trial_id, token)
    threading.Thread(target=keep_lease, args=(channel, interval, machine, lambda: process.poll() is None),
                     name="nni-lease", daemon=True).start()


def _node_output_root() -> str:
    """Where trials write on a node that cannot see the experiment's directory:
    ``$TMPDIR/nni-ng-ray-<uid>``, this user's only (0700).

    On a node shared by several users nobody else reads the trials' logs there, and a directory
    or link someone else planted under that name is never written into (a fresh private
    directory is used instead).
    """
    import stat
    import tempfile
    root = os.path.join(tempfile.gettempdir(), f"nni-ng-ray-{os.getuid()}")
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(root)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        return root
    return tempfile.mkdtemp(prefix="nni-ng-ray-")


def _cancel_flag() -> Any:
    """A callable telling whether Ray cancelled the task this runs in (always False outside one)."""
    try:
        import ray
        context = ray.get_runtime_context()
        context.is_canceled()
    except Exception:  # noqa: BLE001 - not in a Ray worker (the task body run directly)
        return lambda: False
    return context.is_canceled


def _end_group(process: Any, leader_start: str | None) -> None:
    """End the trial's group after a cancel: SIGTERM, then SIGUSR1 to the launcher (it SIGKILLs
    its tree, double-forked daemons too), then SIGKILL to the group.

    Ray may deliver the cancel again while this runs; a second KeyboardInterrupt must not cut
    the sequence short, so SIGINT's handler does nothing until it is done.
    """
    import signal
    import time

    try:
        saved = signal.signal(signal.SIGINT, lambda signum, frame: None)
    except ValueError:   # not the main thread: nothing delivers KeyboardInterrupt here
        saved = None
    try:
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGUSR1, 2.0), (signal.SIGKILL, 5.0)):
            try:
                if sig == signal.SIGUSR1:
                    if process.poll() is None:
                        os.kill(process.pid, sig)
                elif group_is_ours(process.pid, leader_start):
                    # Once poll() has reaped the leader its number is free again: the group is
                    # signalled only while no other process has it.
                    os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + grace
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        if saved is not None:
            signal.signal(signal.SIGINT, saved)


def _run_trial(command: str, code_dir: str | None, trial_dir: str, env: dict[str, str]) -> dict[str, Any]:
    """The body of the Ray task: run one trial on this node and return how it ended.

    ``code_dir`` None: the task's working directory (Ray's ``runtime_env`` ``working_dir``).
    """
    import socket
    import subprocess
    import sys
    import time

    shared = os.path.isdir(os.path.dirname(trial_dir.rstrip("/")))
    out_dir = trial_dir if shared else os.path.join(
        _node_output_root(), env.get("NNI_EXP_ID", "exp"), env.get("NNI_TRIAL_JOB_ID", "trial"))
    os.makedirs(out_dir, exist_ok=True)
    full_env = {**os.environ, **env, "NNI_SYS_DIR": out_dir, "NNI_OUTPUT_DIR": out_dir,
                "NNI_NG_TRIAL_COMMAND": command, **launcher_env(sys.executable)}
    stdout_path, stderr_path = os.path.join(out_dir, "stdout"), os.path.join(out_dir, "stderr")
    # Appended: a re-run (a new attempt of the same trial) keeps the earlier attempts' output.
    with open(stdout_path, "ab") as stdout, open(stderr_path, "ab") as stderr:
        process = subprocess.Popen(["/bin/sh", "-c", _INNER_SCRIPT], cwd=code_dir or os.getcwd(), env=full_env,
                                   stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, start_new_session=True)
    leader_start = None
    try:
        leader_start = process_start(process.pid)   # the group is (pid, start): see _end_group
        with open(os.path.join(out_dir, "trial.pid"), "w") as f:
            f.write(f"{socket.gethostname()} {process.pid}\n")
        machine = _node_name()
        _start_lease_keeper(env, machine, process)
        cancelled = _cancel_flag()
        # Polling, not wait(): Ray's cancel raises KeyboardInterrupt between bytecodes, which a
        # blocking waitpid() would not see until the trial ended by itself. The flag is the
        # same cancel seen another way: it is set even where the interrupt never arrives.
        while process.poll() is None:
            if cancelled():
                raise KeyboardInterrupt("the task was cancelled")
            time.sleep(0.05)
        exit_code = process.returncode
    except BaseException:
        _end_group(process, leader_start)
        raise
    finally:
        try:
            process.stdin.close()   # the watchdog then SIGKILLs whatever is left in the group
        except OSError:
            pass
    result: dict[str, Any] = {"exit_code": exit_code, "node": socket.gethostname(), "shared": shared,
                              "machine": machine}
    if not shared:
        result["stdout"] = tail_bytes(stdout_path, RETURNED_LOG_BYTES)
        result["stderr"] = tail_bytes(stderr_path, RETURNED_LOG_BYTES)
    return result


def _is_lost(ray: Any, exc: BaseException) -> bool:
    """Whether a task error means the trial's node, worker or task was lost (not the trial's own fault).

    The task body itself never raises (the trial's exit code is its result), so anything but a
    failed runtime_env setup (which would fail again everywhere) is the cluster losing it.
    """
    not_lost = tuple(getattr(ray.exceptions, name) for name in ("RuntimeEnvSetupError", "TaskUnschedulableError",
                                                               "ActorUnschedulableError")
                     if hasattr(ray.exceptions, name))
    return not isinstance(exc, not_lost)


class RayTrainingService(TrainingService):
    """Trials as Ray tasks on the cluster at ``trainingService.address`` (or a private local one)."""

    def __init__(self, context: ServiceContext) -> None:
        super().__init__()
        self._context = context
        service = context.service
        self._address: str | None = service.address
        self._runtime_env: dict[str, Any] = dict(service.runtime_env or {})
        resources = dict(service.trial_resources or {})
        resources.setdefault("num_cpus", 1)
        if context.gpu.trial_gpu_number:
            resources.setdefault("num_gpus", context.gpu.trial_gpu_number)
        self._resources = resources
        self._ray: Any = None
        self._task: Any = None
        self._refs: dict[str, Any] = {}
        self._watchers: dict[str, asyncio.Task] = {}
        self._ended: set[str] = set()
        self._killed: set[str] = set()
        self._private = self._address is None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._init_ray)
        if self._address is not None and not self._context.nni_manager_ip:
            _log.warning("Ray cluster %s: nniManagerIp is not set, so trials report to 127.0.0.1; "
                         "trials on other nodes need nniManagerIp set to an address they can reach",
                         self._address)

    def _init_ray(self) -> None:
        import ray

        self._ray = ray
        options: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": False,
                                   "configure_logging": False}
        if self._private:
            # "local": always a new instance, never a cluster that `ray start` left on this host.
            options.update(address="local", include_dashboard=False, num_cpus=os.cpu_count() or 1)
        else:
            options["address"] = self._address
        runtime_env = self._job_runtime_env()
        if runtime_env:
            options["runtime_env"] = runtime_env
        if ray.is_initialized():
            raise RuntimeError("Ray is already initialized in this process; platform ray needs its own "
                               "connection (call ray.shutdown() first)")
        try:
            ray.init(**options)
        except Exception as exc:  # noqa: BLE001 - reported with the address tried
            where = "a private local Ray" if self._private else f"the Ray cluster at {self._address!r}"
            raise RuntimeError(f"trainingService: cannot start/connect to {where}: {exc}") from None
        self._task = ray.remote(_run_trial)

    def _job_runtime_env(self) -> dict[str, Any] | None:
        """Ray's job-level runtime_env: for a cluster given by address, the code directory is
        shipped as ``working_dir`` (Ray uploads it once; ``.nniignore`` patterns become its
        ``excludes``) unless the user's runtime_env names one."""
        runtime_env = dict(self._runtime_env)
        if not self._private and "working_dir" not in runtime_env:
            code_dir = self._context.trial_code_directory
            runtime_env["working_dir"] = code_dir
            ignore = Path(code_dir) / ".nniignore"
            if ignore.is_file():
                excludes = [line.strip() for line in ignore.read_text().splitlines()
                            if line.strip() and not line.lstrip().startswith("#")]
                runtime_env["excludes"] = list(runtime_env.get("excludes", [])) + excludes
        return runtime_env or None

    async def submit(self, spec: TrialSpec) -> None:
        env = dict(spec.env)
        env["NNI_PLATFORM"] = "ray"
        env.update(self._context.gpu.cuda_env())   # with GPUs, Ray sets it for the task's own
        Path(spec.trial_dir).mkdir(parents=True, exist_ok=True)
        self._ended.discard(spec.trial_id)    # a new attempt of a trial that ran before
        self._killed.discard(spec.trial_id)
        # A private local Ray runs the code in place; a cluster runs it from its working_dir copy.
        code_dir = spec.code_dir if self._private else None
        # No retries: a trial whose node died is FAILED (the tuner decides what runs next).
        options: dict[str, Any] = {**self._resources, "max_retries": 0}
        ref = self._task.options(**options).remote(spec.command, code_dir, spec.trial_dir, env)
        self._refs[spec.trial_id] = ref
        self._watchers[spec.trial_id] = asyncio.ensure_future(self._watch(spec, ref))
        # Ray queues the task until a node has the resources; from here on it is Ray's to run.
        if self.on_trial_start is not None:
            await self.on_trial_start(spec.trial_id)

    async def _watch(self, spec: TrialSpec, ref: Any) -> None:
        ray = self._ray
        try:
            result = await asyncio.wrap_future(ref.future())
        except BaseException as exc:  # noqa: BLE001 - cancelled, worker or node died, runtime_env failed
            if isinstance(exc, asyncio.CancelledError) and spec.trial_id not in self._killed:
                raise
            if spec.trial_id in self._killed:
                await self._report(spec, None, "killed")
            else:
                text = str(exc).strip().splitlines()
                kind = type(exc).__name__
                lost = _is_lost(ray, exc)
                if isinstance(exc, getattr(ray.exceptions, "NodeDiedError", ())) or "node" in kind.lower():
                    reason = "its Ray node died"
                elif lost:
                    reason = f"its Ray worker or task was lost ({kind})"
                else:
                    reason = f"Ray task failed ({kind})"
                await self._report(spec, None, f"{reason}: {' '.join(text[:3])[:STDERR_TAIL_BYTES]}", lost=lost)
            return
        trial_dir = Path(spec.trial_dir)
        if not result.get("shared"):
            (trial_dir / "stdout").write_bytes(result.get("stdout", b""))
            (trial_dir / "stderr").write_bytes(result.get("stderr", b""))
        exit_code = result["exit_code"]
        message = end_message(exit_code, trial_dir / "stderr", where=f"Ray node {result.get('node')}")
        await self._report(spec, exit_code, message, machine=result.get("machine"))

    async def _report(self, spec: TrialSpec, exit_code: int | None, message: str, lost: bool = False,
                      machine: str | None = None) -> None:
        if spec.trial_id in self._ended:
            return
        self._ended.add(spec.trial_id)
        self._refs.pop(spec.trial_id, None)
        self._watchers.pop(spec.trial_id, None)
        if self.on_trial_end is not None:
            await self.on_trial_end(TrialEnded(spec.trial_id, exit_code, message, lost=lost,
                                               attempt=spec.attempt, machine=machine))

    async def kill(self, trial_id: str) -> None:
        ref = self._refs.get(trial_id)
        watcher = self._watchers.get(trial_id)
        if ref is None or watcher is None or trial_id in self._killed:
            return
        self._killed.add(trial_id)
        loop = asyncio.get_running_loop()
        # A gentle cancel first: the task ends the trial's group (SIGTERM, then SIGKILL).
        await loop.run_in_executor(None, lambda: self._ray.cancel(ref, force=False))
        try:
            await asyncio.wait_for(asyncio.shield(watcher), KILL_GRACE_SECONDS + 5.0)
            return
        except asyncio.TimeoutError:
            pass
        # The worker did not react: kill it; the watchdog in the trial's group ends the trial.
        _log.warning("trial %s: its Ray task did not end %.0f s after the cancel; killing its worker",
                     trial_id, KILL_GRACE_SECONDS + 5.0)
        await loop.run_in_executor(None, lambda: self._ray.cancel(ref, force=True))
        try:
            await asyncio.wait_for(asyncio.shield(watcher), 10)
        except asyncio.TimeoutError:
            _log.warning("trial %s: Ray did not confirm that its worker was killed", trial_id)
            watcher.cancel()
            await self._report_by_id(trial_id, "killed; Ray did not confirm the cancel")

    async def _report_by_id(self, trial_id: str, message: str) -> None:
        if trial_id not in self._ended:
            self._ended.add(trial_id)
            self._refs.pop(trial_id, None)
            self._watchers.pop(trial_id, None)
            if self.on_trial_end is not None:
                await self.on_trial_end(TrialEnded(trial_id, None, message))

    async def stop(self) -> None:
        await asyncio.gather(*(self.kill(t) for t in list(self._refs)), return_exceptions=True)
        if self._ray is not None:
            # Disconnects from a cluster; for the private one started here it also shuts it down.
            await asyncio.get_running_loop().run_in_executor(None, self._ray.shutdown)
