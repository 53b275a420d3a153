"""The local training service's handle on its spawner: one long-lived process that forks each
trial's launcher (``_subreaper.py --serve``), so a trial costs a fork, not an interpreter start.

A trial started here looks to the service like the process ``asyncio`` would have given it
(``pid``, ``returncode``, ``wait()``): the launcher, leader of the trial's new session and
process group, a child subreaper (see ``_subreaper.py``). Only its parent is the spawner, not
the manager, so its exit status comes back over the spawner's stdout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import sys
from pathlib import Path

from ..runtime.process import start_ticks
from ._common import LAUNCHER_PATH
from ._subreaper import descendants

_logger = logging.getLogger("nni.training_service.local")
# How long a closing spawner gets to end its launchers (they are told SIGUSR1 when its stdin closes).
_CLOSE_SECONDS = 10.0


class LaunchedTrial:
    """A trial's launcher: what the local service waits for and signals."""

    def __init__(self, pid: int, start: str | None) -> None:
        self.pid = pid
        self.start = start   # tells it from a later process with the same pid
        self.returncode: int | None = None
        self._ended = asyncio.Event()

    async def wait(self) -> int | None:
        """The launcher's exit code (``-N``: killed by signal N); None when the spawner died first."""
        await self._ended.wait()
        return self.returncode

    def _end(self, returncode: int | None) -> None:
        self.returncode = returncode
        self._ended.set()


class Spawner:
    """Starts trials through one ``_subreaper.py --serve`` process; :meth:`close` ends it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._ids = itertools.count()
        self._requests: dict[int, asyncio.Future] = {}
        self._running: dict[int, LaunchedTrial] = {}
        self._reader = asyncio.ensure_future(self._read_answers())

    @classmethod
    async def start(cls) -> Spawner:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(LAUNCHER_PATH), "--serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C or hang-up meant for the manager's terminal is not its end.
            start_new_session=True)
        return cls(process)

    async def spawn(self, command: str, *, cwd: str, env: dict[str, str], stdout: Path,
                    stderr: Path) -> LaunchedTrial:
        """Start ``/bin/sh -c command`` under a launcher; raises OSError when it could not start
        (the working directory is missing, say), and then nothing runs.

        ``env``: the trial's own variables; they are added to the spawner's environment (this
        process's when the spawner started) to make the trial's.
        """
        request_id = next(self._ids)
        answer = self._requests[request_id] = asyncio.get_running_loop().create_future()
        line = json.dumps({"id": request_id, "command": command, "cwd": cwd, "env": env,
                           "stdout": str(stdout), "stderr": str(stderr)})
        try:
            if self._process.stdin is None or self._reader.done():
                raise OSError("the trial spawner has ended")
            self._process.stdin.write(line.encode() + b"\n")
            await self._process.stdin.drain()
            message = await answer
        finally:
            self._requests.pop(request_id, None)
        if "pid" not in message:
            raise OSError(message.get("errno") or 0, message["error"], message.get("filename"))
        return message["trial"]

    async def _read_answers(self) -> None:
        assert self._process.stdout is not None
        try:
            while line := await self._process.stdout.readline():
                message = json.loads(line)
                if "exit" in message:
                    trial = self._running.pop(message["exit"], None)
                    if trial is not None:
                        trial._end(message["returncode"])
                    continue
                if "pid" in message:   # known before its exit can be read: one pipe, in order
                    message["trial"] = self._running[message["pid"]] = LaunchedTrial(message["pid"], message.get("start"))
                answer = self._requests.get(message["id"])
                if answer is not None and not answer.done():
                    answer.set_result(message)
        finally:
            self._spawner_gone()

    def _spawner_gone(self) -> None:
        """The spawner ended: requests fail, and launchers it left running are killed (with
        their trees) and end without a status, so no trial runs on unseen."""
        for answer in self._requests.values():
            if not answer.done():
                answer.set_result({"error": "the trial spawner has ended"})
        if self._running and self._process.stdin is not None and not self._process.stdin.is_closing():
            _logger.error("the trial spawner ended unexpectedly; killing the %d trial(s) it ran", len(self._running))
        for trial in self._running.values():
            if trial.start is not None and start_ticks(trial.pid) == trial.start:
                for pid in (trial.pid, *descendants(trial.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            trial._end(None)
        self._running.clear()

    async def close(self) -> None:
        """End the spawner: closing its stdin tells it to end (SIGUSR1) what still runs."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), _CLOSE_SECONDS)
        except asyncio.TimeoutError:
            self._process.kill()
            await self._process.wait()
        await self._reader
