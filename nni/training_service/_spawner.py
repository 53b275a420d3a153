"""The training services' handle on a spawner: one long-lived process that forks each trial's
launcher (``_subreaper.py --serve``), so a trial costs a fork, not an interpreter start.

The local service runs one on this machine (its stdin and stdout pipes); the remote service
one per machine, over one SSH channel (:class:`SpawnerPipe` is either), whose trials' stdout
and stderr come back relayed over that channel into the local trial files.

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
from typing import BinaryIO, Protocol

from ..runtime.process import start_ticks
from ._common import LAUNCHER_PATH
from ._subreaper import descendants

_logger = logging.getLogger("nni.training_service.spawner")
# How long a closing spawner gets to end its launchers (they are told SIGUSR1 when its stdin closes).
_CLOSE_SECONDS = 10.0


class SpawnerPipe(Protocol):
    """The spawner's stdin and stdout, and its process, wherever it runs."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def readline(self) -> bytes: ...

    def close_input(self) -> None: ...

    def input_closed(self) -> bool: ...

    async def wait(self) -> None: ...

    def kill(self) -> None: ...


class _LocalPipe:
    """A spawner that is a child process of this one."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process, self._stdin, self._stdout = process, process.stdin, process.stdout

    def write(self, data: bytes) -> None:
        self._stdin.write(data)

    async def drain(self) -> None:
        await self._stdin.drain()

    async def readline(self) -> bytes:
        return await self._stdout.readline()

    def close_input(self) -> None:
        self._stdin.close()

    def input_closed(self) -> bool:
        return self._stdin.is_closing()

    async def wait(self) -> None:
        await self._process.wait()

    def kill(self) -> None:
        self._process.kill()


class LaunchedTrial:
    """A trial's launcher: what a service waits for and signals."""

    def __init__(self, pid: int, start: str | None, outputs: tuple[BinaryIO, BinaryIO] | None = None) -> None:
        self.pid = pid
        self.start = start   # tells it from a later process with the same pid
        self.returncode: int | None = None
        self._ended = asyncio.Event()
        self._outputs = outputs   # relayed: the local stdout and stderr files

    async def wait(self) -> int | None:
        """The launcher's exit code (``-N``: killed by signal N); None when the spawner died first."""
        await self._ended.wait()
        return self.returncode

    def _write(self, fd: int, data: bytes) -> None:
        if self._outputs is not None:
            f = self._outputs[fd - 1]
            f.write(data)
            f.flush()   # `nnictl log trial` and the web UI read the file while the trial runs

    def _end(self, returncode: int | None) -> None:
        if self._outputs is not None:
            for f in self._outputs:
                f.close()
            self._outputs = None
        self.returncode = returncode
        self._ended.set()


class Spawner:
    """Starts trials through one ``_subreaper.py --serve`` process; :meth:`close` ends it.

    ``remote``: the spawner runs on another machine: trials' output is relayed (see
    :meth:`spawn`), and its pids are not this machine's (a spawner that dies leaves its
    launchers to their own end: they are told SIGUSR1 when it dies).
    """

    def __init__(self, pipe: SpawnerPipe, *, remote: bool = False) -> None:
        self._pipe = pipe
        self._remote = remote
        self._ids = itertools.count()
        self._requests: dict[int, asyncio.Future] = {}
        self._outputs: dict[int, tuple[BinaryIO, BinaryIO]] = {}   # relayed requests' local files
        self._running: dict[int, LaunchedTrial] = {}
        self._reader = asyncio.ensure_future(self._read_answers())

    @classmethod
    async def start(cls) -> Spawner:
        """A spawner on this machine."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(LAUNCHER_PATH), "--serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C or hang-up meant for the manager's terminal is not its end.
            start_new_session=True)
        return cls(_LocalPipe(process))

    @property
    def running(self) -> bool:
        """False once the spawner has ended (it then starts nothing more)."""
        return not self._reader.done()

    async def spawn(self, command: str, *, cwd: str, env: dict[str, str], stdout: Path,
                    stderr: Path, mkdir: tuple[str, ...] = ()) -> LaunchedTrial:
        """Start ``/bin/sh -c command`` under a launcher; raises OSError when it could not start
        (the working directory is missing, say), and then nothing runs.

        ``env``: the trial's own variables; they are added to the spawner's environment (its
        own when it started: the manager's for a local spawner, the SSH session's for a remote
        one) to make the trial's. ``stdout``/``stderr``: local files, appended to (a remote
        spawner relays the output into them). ``mkdir``: directories the launcher creates
        first (on the spawner's machine).
        """
        request_id = next(self._ids)
        request: dict = {"id": request_id, "command": command, "cwd": cwd, "env": env}
        if mkdir:
            request["mkdir"] = list(mkdir)
        if self._remote:
            request["relay"] = True
            out = open(stdout, "ab")
            try:
                self._outputs[request_id] = (out, open(stderr, "ab"))
            except OSError:
                out.close()
                raise
        else:
            request.update(stdout=str(stdout), stderr=str(stderr))
        answer = self._requests[request_id] = asyncio.get_running_loop().create_future()
        try:
            if self._pipe.input_closed() or self._reader.done():
                raise OSError("the trial spawner has ended")
            self._pipe.write(json.dumps(request).encode() + b"\n")
            await self._pipe.drain()
            message = await answer
        finally:
            self._requests.pop(request_id, None)
            for f in self._outputs.pop(request_id, ()):   # not taken by the trial: it did not start
                f.close()
        if "pid" not in message:
            raise OSError(message.get("errno") or 0, message["error"], message.get("filename"))
        return message["trial"]

    async def _read_answers(self) -> None:
        try:
            while line := await self._pipe.readline():
                message = json.loads(line)
                if "out" in message:
                    trial = self._running.get(message["out"])
                    if trial is not None:
                        trial._write(message["fd"], message["data"].encode("latin-1"))
                    continue
                if "exit" in message:
                    trial = self._running.pop(message["exit"], None)
                    if trial is not None:
                        trial._end(message["returncode"])
                    continue
                if "pid" in message:   # known before its output or exit can be read: one pipe, in order
                    message["trial"] = self._running[message["pid"]] = LaunchedTrial(
                        message["pid"], message.get("start"), self._outputs.pop(message["id"], None))
                answer = self._requests.get(message["id"])
                if answer is not None and not answer.done():
                    answer.set_result(message)
        except Exception as exc:  # noqa: BLE001 - a lost SSH channel, a garbled line: the spawner is gone to us
            _logger.debug("trial spawner: reading its answers failed: %r", exc)
        finally:
            self._spawner_gone()

    def _spawner_gone(self) -> None:
        """The spawner ended: requests fail, and launchers it left running end without a status
        (a local one's are killed here, with their trees), so no trial runs on unseen."""
        for answer in self._requests.values():
            if not answer.done():
                answer.set_result({"error": "the trial spawner has ended"})
        if self._running and not self._pipe.input_closed():
            _logger.error("the trial spawner ended unexpectedly; %s the %d trial(s) it ran",
                          "its launchers end" if self._remote else "killing", len(self._running))
        for trial in self._running.values():
            if not self._remote and trial.start is not None and start_ticks(trial.pid) == trial.start:
                for pid in (trial.pid, *descendants(trial.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            trial._end(None)
        self._running.clear()

    async def close(self) -> None:
        """End the spawner: closing its stdin tells it to end (SIGUSR1) what still runs."""
        self._pipe.close_input()
        try:
            await asyncio.wait_for(self._pipe.wait(), _CLOSE_SECONDS)
        except asyncio.TimeoutError:
            self._pipe.kill()
            try:
                await asyncio.wait_for(self._pipe.wait(), _CLOSE_SECONDS)
            except asyncio.TimeoutError:
                pass
        await self._reader
