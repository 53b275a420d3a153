"""Policy the training services share, written once: how a trial's end is told, the
watchdog that ends a trial's process group, and the queue of trials waiting to start."""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import Awaitable, Callable

from .base import TrainingService, TrialEnded, TrialSpec

# A failed trial's message ends with this much of its stderr (NNI shows the same amount).
STDERR_TAIL_BYTES = 2000
# How often queued trials look again at GPUs that *other* programs hold: nothing signals us
# when a foreign process frees a GPU (our own trials' ends do wake the queue).
FOREIGN_GPU_RECHECK_SECONDS = 5.0

def leads_its_group(pid: str) -> str:
    """Shell test: ``pid`` is not known to lead another group than its own number.

    False only when ``ps`` shows that the pid now belongs to another group (the system gave
    the number to another process); without ``ps`` (a minimal container) it passes.
    """
    return f'pg=$(ps -o pgid= -p {pid} 2>/dev/null | tr -d " "); [ -z "$pg" ] || [ "$pg" = "{pid}" ]'


# The watchdog, for a trial started through a pipe or channel on fd 0 (the SSH channel, a
# pipe from the Ray worker), in a /bin/sh that leads the trial's new process group: a copy of
# fd 0 (fd 3: an asynchronous list gets /dev/null as stdin unless redirected explicitly) is
# read in the background; when it closes (trial ended, kill, the manager or the worker died,
# connection lost) the trial's whole tree is SIGKILLed: SIGUSR1 asks the launcher (the group
# leader, below) to do it, which also reaches daemons the trial double-forked out of its group;
# then the group, for a trial that runs without the launcher. (Never a pid the system has
# given to another process since: see leads_its_group.)
_WATCHDOG = ('exec 3<&0; (cat <&3 >/dev/null 2>&1; '
             f'{{ {leads_its_group("$$")}; }} && kill -USR1 $$ && sleep 1; '
             'kill -KILL -$$) >/dev/null 2>&1 & ')
# Then the shell becomes the trial's launcher (_subreaper.py, a child subreaper, run from its
# source in the environment by a Python known to work there; same pid: still the group
# leader), or the trial's shell where there is none. The command is in the environment, so it
# needs no second quoting.
_EXEC_TRIAL = ('if [ -n "$NNI_NG_LAUNCHER" ]; then exec "$NNI_NG_LAUNCHER_PYTHON" -I -S -c "$NNI_NG_LAUNCHER" '
               '"$NNI_NG_TRIAL_COMMAND" </dev/null 3<&-; fi; '
               'exec /bin/sh -c "$NNI_NG_TRIAL_COMMAND" </dev/null 3<&-')
LAUNCHER_PATH = Path(__file__).with_name("_subreaper.py")


def watched_trial_script(*, before: str = "", after_watchdog: str = "") -> str:
    """The ``/bin/sh -c`` script that starts the watchdog, then runs ``$NNI_NG_TRIAL_COMMAND``.

    ``before`` runs first (with the channel still on stdin), ``after_watchdog`` once the
    watchdog is started; both are shell text ending in ``; `` or ``& ``.
    """
    return before + _WATCHDOG + after_watchdog + _EXEC_TRIAL


@functools.cache
def _launcher_source() -> str:
    return LAUNCHER_PATH.read_text()


def launcher_env(python: str) -> dict[str, str]:
    """What :func:`watched_trial_script` needs to run the trial under the launcher, with ``python``."""
    return {"NNI_NG_LAUNCHER": _launcher_source(), "NNI_NG_LAUNCHER_PYTHON": python}


# Run on a machine (with the trial's PATH) before it gets trials: prints this line where its
# python3 can run the launcher (3.6 or later; a broken pyenv shim, say, cannot).
LAUNCHER_PROBE = ('python3 -I -S -c "import sys; sys.version_info >= (3, 6) and print(\'launcher-ok\')" '
                  '2>/dev/null')


def tail_bytes(path: str | Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a file (empty when it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read()
    except OSError:
        return b""


def read_tail(path: str | Path, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a text file, stripped ('' when missing)."""
    return tail_bytes(path, limit).decode(errors="replace").strip()


def exit_reason(exit_code: int) -> str:
    """``exit code N``, or ``killed by signal N`` for a negative code (asyncio's and subprocess's way)."""
    return f"killed by signal {-exit_code}" if exit_code < 0 else f"exit code {exit_code}"


def end_message(exit_code: int | None, stderr_path: str | Path, *, where: str | None = None,
                reason: str | None = None) -> str:
    """A trial's end for its record: '' after exit code 0, else why it ended (``reason``,
    default :func:`exit_reason`), ``on <where>`` and the tail of its stderr file."""
    if exit_code == 0:
        return ""
    if reason is None:
        reason = exit_reason(exit_code) if exit_code is not None else "ended without an exit status"
    if where:
        reason += f" on {where}"
    tail = read_tail(stderr_path)
    if "No module named 'nni'" in tail:
        # The commonest first failure: `python3` on the trial's PATH is not the environment
        # nni is installed in (the experiment was started without activating it).
        reason += (" (the trial's Python cannot import nni: start the experiment with that"
                   " environment activated, or name its interpreter in trialCommand)")
    return reason + (f"; stderr tail:\n{tail}" if tail else "; stderr was empty")


class TrialQueue:
    """Trials a service accepted but cannot start yet (no free GPU, no machine), first come first served.

    ``dispatch`` is the service's routine that starts what it can from :attr:`specs`; it is run
    one at a time (it awaits ``nvidia-smi`` between picking a trial and its GPUs, and two
    interleaved runs could start a trial twice). The reason a trial waits is reported through
    ``on_trial_waiting`` once per change; a queued trial that is killed ends without having run.
    """

    def __init__(self, service: TrainingService, dispatch: Callable[[], Awaitable[None]]) -> None:
        self.specs: list[TrialSpec] = []
        self._service = service
        self._dispatch = dispatch
        self._reasons: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._recheck: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()   # referenced until done

    def __bool__(self) -> bool:
        return bool(self.specs)

    def append(self, spec: TrialSpec) -> None:
        self.specs.append(spec)

    def take(self, spec: TrialSpec) -> bool:
        """``spec`` leaves the queue to start; False when it already left (canceled while the
        dispatcher awaited, so it must not start)."""
        if spec not in self.specs:
            return False
        self.specs.remove(spec)
        self._reasons.pop(spec.trial_id, None)
        return True

    async def dispatch(self) -> None:
        """Start what can start now (waits for a dispatch already running)."""
        async with self._lock:
            await self._dispatch()

    def dispatch_soon(self) -> None:
        """:meth:`dispatch` in the background (from code that may run inside a dispatch)."""
        task = asyncio.ensure_future(self.dispatch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def recheck_later(self, seconds: float = FOREIGN_GPU_RECHECK_SECONDS) -> None:
        """Dispatch again after ``seconds`` (once, however often asked before then)."""
        if self._recheck is None:
            self._recheck = asyncio.get_running_loop().call_later(seconds, self._on_recheck)

    def _on_recheck(self) -> None:
        self._recheck = None
        self.dispatch_soon()

    async def wait(self, spec: TrialSpec, reason: str) -> None:
        """``spec`` stays queued because of ``reason``; the manager hears of each new reason."""
        if spec in self.specs and self._reasons.get(spec.trial_id) != reason:
            self._reasons[spec.trial_id] = reason
            if self._service.on_trial_waiting is not None:
                await self._service.on_trial_waiting(spec.trial_id, reason)

    async def cancel(self, trial_id: str) -> bool:
        """End a queued trial before it started (reported as ended); False when it is not queued."""
        spec = next((s for s in self.specs if s.trial_id == trial_id), None)
        if spec is None:
            return False
        self.take(spec)
        if self._service.on_trial_end is not None:
            await self._service.on_trial_end(TrialEnded(trial_id, None, "canceled before it started"))
        return True

    async def close(self) -> None:
        """Stop rechecking and cancel every queued trial (the service is stopping)."""
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        for spec in list(self.specs):
            await self.cancel(spec.trial_id)
