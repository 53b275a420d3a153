"""Runs tuner and assessor calls off the event loop.

A tuner may take seconds per call (GP, SMAC), so it gets a thread of its own; a single
worker keeps NNI's guarantee that calls reach the tuner in the order events happened.
With ``multiThread: true`` (NNI's option) :meth:`SerialRunner.call_concurrent` runs a
call on a thread of its own instead, so one slow ``generate_parameters`` does not hold
back the others.

Every thread here is a daemon thread: a tuner stuck in user code must not keep the
manager process alive after the experiment is stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from typing import Any, Callable

from ..errors import AlgorithmError, NoMoreTrialError   # raised here when a method raises

__all__ = ["AlgorithmError", "SerialRunner"]


_STOP = object()


class SerialRunner:
    """Calls one algorithm's methods on its own thread, in order.

    ``context`` (a :mod:`contextvars` context) is where every call runs: it carries what the
    experiment gives its algorithms (the checkpoint directory, ``nni.recoverable``) without
    touching the process environment.
    """

    def __init__(self, algorithm: Any, role: str, context: contextvars.Context | None = None) -> None:
        self.algorithm = algorithm
        self.role = role
        self._context = context if context is not None else contextvars.copy_context()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"nni-{role}", daemon=True)
        self._thread.start()

    def call(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future:
        """Queue ``algorithm.method(*args, **kwargs)`` now (in order); await the result later."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._closed:
            future.cancel()
            return future
        self._queue.put((loop, future, method, args, kwargs))
        return future

    def post(self, on_error: Callable[[BaseException], None], method: str, *args: Any, **kwargs: Any) -> None:
        """Queue ``algorithm.method(...)`` (in order with :meth:`call`) where nobody awaits the result.

        Only a failure comes back: ``on_error(exc)`` on the loop. A success wakes nothing: a
        trial's result and end are two such calls, and waking the loop for each was a thread
        handoff and a pass of the loop per call on the trial's path for nothing.
        """
        if self._closed:
            return
        self._queue.put((asyncio.get_running_loop(), None, method, args, kwargs, None, on_error))

    def call_concurrent(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future:
        """Run ``algorithm.method(...)`` on a new daemon thread, beside the queued calls."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._closed:
            future.cancel()
            return future
        # A context can be entered by one thread at a time: a concurrent call gets a copy.
        threading.Thread(target=self._run_one, args=(loop, future, method, args, kwargs, self._context.copy()),
                         name=f"nni-{self.role}-call", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._run_one(*item)
            # not held until the next call arrives: the arguments may be large (a resume's
            # import_data gets every stored result)
            del item

    def _run_one(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future | None, method: str,
                 args: tuple, kwargs: dict, context: contextvars.Context | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run one call; settle its ``future`` on the loop, or for a posted call (no future)
        hand a failure to ``on_error``."""
        if future is not None and future.cancelled():
            return
        try:
            result: Any = (context or self._context).run(self._invoke, method, *args, **kwargs)
            error: BaseException | None = None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        if future is None:
            if error is not None and on_error is not None:
                try:
                    loop.call_soon_threadsafe(on_error, error)
                except RuntimeError:
                    pass   # the loop is closed
            return

        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:
            pass   # the loop is closed: nobody waits for this result any more

    def _invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.algorithm, method)(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, NoMoreTrialError):
                raise
            import traceback
            raise AlgorithmError(f"{self.role} {type(self.algorithm).__name__}.{method} raised "
                                 f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc

    def shutdown(self) -> None:
        """Take no more calls; a call running now is left to finish (or hang) on its daemon thread."""
        self._closed = True
        while True:   # calls still queued are canceled (called on the loop's thread)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP and item[1] is not None:
                item[1].cancel()
        self._queue.put(_STOP)
