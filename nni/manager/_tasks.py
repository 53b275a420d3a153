"""The manager's background work, owned in one place (private).

``asyncio`` keeps only a weak reference to a task: one nobody holds may be garbage-collected
mid-flight, and its exception is reported (if ever) as "Task exception was never retrieved"
long after the fact. Every task and timer the manager starts goes through
:class:`BackgroundTasks` instead: the task is held until it ends, an exception it raises is
logged with its traceback (and handed to ``on_error``), and :meth:`BackgroundTasks.close`
cancels what is left and waits for it, so a stopped manager leaves nothing running behind.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

_logger = logging.getLogger("nni.manager")


class BackgroundTasks:
    """Tasks and timers of one manager: held while they run, errors logged, all ended on close."""

    def __init__(self, on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._timers: set[Timer] = set()
        self._on_error = on_error
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> asyncio.Task | None:
        """Run ``coroutine`` as a held task named ``what``; None (and it is closed) after :meth:`close`."""
        if self._closed:
            coroutine.close()
            return None
        task = asyncio.get_running_loop().create_task(coroutine, name=f"nni-manager: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def later(self, delay: float, factory: Callable[[], Coroutine[Any, Any, Any]], what: str) -> Timer:
        """After ``delay`` seconds spawn ``factory()``; cancel the returned timer to call it off."""
        loop = asyncio.get_running_loop()
        return self.at(loop.time() + delay, lambda: self.spawn(factory(), what))

    def at(self, when: float, callback: Callable[[], Any]) -> Timer:
        """Call ``callback()`` at loop time ``when`` (unless canceled or closed before)."""
        timer = Timer(self)
        timer._handle = asyncio.get_running_loop().call_at(when, timer._fire, callback)
        if self._closed:
            timer.cancel()
        else:
            self._timers.add(timer)
        return timer

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            _logger.error("%s failed", task.get_name(), exc_info=exc)
            if self._on_error is not None:
                self._on_error(task.get_name(), exc)

    async def close(self) -> None:
        """Take no more work, cancel every timer and task still running and wait until they ended.

        A task that calls ``close`` (a stop requested from within) is left to finish by itself.
        """
        self._closed = True
        for timer in list(self._timers):
            timer.cancel()
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class Timer:
    """A pending call of :meth:`BackgroundTasks.at`; :meth:`cancel` calls it off and forgets it."""

    __slots__ = ("_owner", "_handle")

    def __init__(self, owner: BackgroundTasks) -> None:
        self._owner = owner
        self._handle: asyncio.TimerHandle | None = None

    def _fire(self, callback: Callable[[], Any]) -> None:
        self._owner._timers.discard(self)
        callback()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._owner._timers.discard(self)
