"""The loop-lag monitor: how late the manager's event loop wakes up, and what kept it busy.

Everything the manager does for trials (metrics, leases, parameters) and for clients runs on
one asyncio loop, so a callback that computes for a second delays every trial's report and
every lease renewal by that second (remote and Ray attempts can then be declared LOST).  The
rule is that nothing slower than a few milliseconds runs on the loop (docs/architecture.md);
this module is how a breach shows up in ``log/nnimanager.log`` instead of as a lost trial.

An asyncio task sleeps ``interval`` seconds at a time and measures how late it wakes up: the
lag is the time the loop spent on something else.  A stall longer than ``threshold`` is logged
as a warning with what ran.  To know what ran, a small daemon thread looks at the loop
thread's Python stack (``sys._current_frames``) while a wake-up is overdue; the stack seen
most often during the stall is logged with the warning.  The thread samples only while the
loop is late, so a healthy loop costs one wake-up per ``interval`` and nothing more.
When stopped, the monitor logs its maximum lag (the line tests read).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
import threading
import time
import traceback
from typing import Any

__all__ = ["LoopLagMonitor", "STALL_THRESHOLD"]

_logger = logging.getLogger("nni.manager.loop_lag")

#: A wake-up later than this (seconds) is logged as a stall.
STALL_THRESHOLD = 0.1
#: How often the monitor task wakes up (seconds).
INTERVAL = 0.05
#: How often the sampler thread looks at the loop thread's stack while a wake-up is overdue.
SAMPLE_EVERY = 0.02
#: Innermost frames of the stack given in a stall's warning (plus the manager's own frame).
STACK_FRAMES = 4


class LoopLagMonitor:
    """Measures the event loop's wake-up delay; logs stalls over ``threshold`` with what ran.

    Start it from a coroutine on the loop it watches (``start``); ``stop`` logs the summary.
    """

    def __init__(self, *, interval: float = INTERVAL, threshold: float = STALL_THRESHOLD,
                 logger: logging.Logger | None = None) -> None:
        self.interval = interval
        self.threshold = threshold
        self.max_lag = 0.0
        self.stalls = 0
        self.wakeups = 0
        self._logger = logger or _logger
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._due = float("inf")          # monotonic time the task should wake up by
        self._samples: collections.Counter[str] = collections.Counter()
        self._loop_thread = 0
        self._started = 0.0

    def start(self) -> None:
        """Begin watching the running loop (call from a coroutine on it)."""
        self._loop_thread = threading.get_ident()
        self._started = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="nni-loop-lag")
        self._thread = threading.Thread(target=self._sample, name="nni-loop-lag-sampler", daemon=True)
        self._thread.start()
        self._logger.info("loop-lag monitor on: a wake-up more than %d ms late is logged with what ran",
                          round(self.threshold * 1000))

    async def stop(self) -> None:
        """Stop watching and log the maximum lag seen."""
        self._done.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._thread is not None:
            # The sampler sleeps SAMPLE_EVERY at a time; it is a daemon, so never wait long.
            await asyncio.to_thread(self._thread.join, 1.0)
        self._logger.info("event loop lag: max %d ms, %d stalls over %d ms, %d wake-ups in %.0f s",
                          round(self.max_lag * 1000), self.stalls, round(self.threshold * 1000),
                          self.wakeups, time.monotonic() - self._started)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            self._due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - expected)
            self._due = float("inf")
            self.wakeups += 1
            self.max_lag = max(self.max_lag, lag)
            with self._lock:
                samples, self._samples = self._samples, collections.Counter()
            if lag > self.threshold:
                self.stalls += 1
                self._logger.warning("event loop stalled %d ms; running: %s", round(lag * 1000),
                                     _what_ran(samples))

    def _sample(self) -> None:
        """Sampler thread: while the task's wake-up is overdue, note the loop thread's stack."""
        late_after = self.threshold / 2
        while not self._done.wait(SAMPLE_EVERY):
            if time.monotonic() - self._due < late_after:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            where = _format_stack(frame)
            with self._lock:
                self._samples[where] += 1


def _what_ran(samples: collections.Counter[str]) -> str:
    if not samples:
        # The sampler never got the GIL during the stall: one C call held it (or the whole
        # process was not scheduled).
        return "unknown (no sample: a C call held the GIL, or the process was not scheduled)"
    where, seen = samples.most_common(1)[0]
    total = sum(samples.values())
    return f"{where} (in {seen} of {total} samples)"


def _format_stack(frame: Any) -> str:
    """The innermost frames of a stack, innermost first, as ``file:line function < ...``.

    The innermost frames are often a library's (numpy, json, sqlite3); the innermost frame of
    the manager's own code (a route handler, a manager method) is added, as that is what to fix.
    """
    stack = traceback.extract_stack(frame)
    shown = stack[-STACK_FRAMES:]
    ours = [e for e in stack[:-STACK_FRAMES] if "/nni/manager/" in e.filename]
    parts = [f"{_short(e.filename)}:{e.lineno} {e.name}" for e in reversed(shown)]
    if ours:
        parts.append("... " + f"{_short(ours[-1].filename)}:{ours[-1].lineno} {ours[-1].name}")
    return " < ".join(parts)


def _short(path: str) -> str:
    """A source path from the package or library root (``nni/manager/rest.py``)."""
    for marker in ("/site-packages/", "/nni/"):
        if marker in path:
            head = "nni/" if marker == "/nni/" else ""
            return head + path.rsplit(marker, 1)[1]
    return path
