"""Runs tuner and assessor calls off the event loop, one at a time and in arrival order.

A tuner may take seconds per call (GP, SMAC), so it gets a thread of its own; a single
worker keeps NNI's guarantee that calls reach the tuner in the order events happened.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any


class AlgorithmError(RuntimeError):
    """A tuner or assessor method raised; the experiment goes to ERROR with this message."""


class SerialRunner:
    def __init__(self, algorithm: Any, role: str) -> None:
        self.algorithm = algorithm
        self.role = role
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nni-{role}")

    def call(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future:
        """Queue ``algorithm.method(*args, **kwargs)`` now; await the result later."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, partial(self._invoke, method, *args, **kwargs))
        return future

    def _invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.algorithm, method)(*args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ == "NoMoreTrialError":
                raise
            import traceback
            raise AlgorithmError(f"{self.role} {type(self.algorithm).__name__}.{method} raised "
                                 f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
