"""Checkpoint hooks shared by tuners and assessors (NNI's ``nni.recoverable``).

The manager gives each experiment's algorithms the directory ``<experiment dir>/checkpoint``.
NNI hands it over as the environment variable ``NNI_CHECKPOINT_DIRECTORY`` of its dispatcher
process. nni-ng's algorithms run on threads of the manager, which may be the user's own
process (``Experiment.start()``), where changing ``os.environ`` would leak one experiment's
directory into the whole program and into every other experiment it runs. So the manager
runs each tuner/assessor call in a :mod:`contextvars` context that holds the directory
(:func:`algorithm_context`), and :func:`checkpoint_directory` reads it there first, then
falls back to the environment variable (set in a ``nnictl``-started manager process, which
runs one experiment only, for NNI-written algorithms that read ``os.environ`` directly).
"""

from __future__ import annotations

import contextvars
import os

_CHECKPOINT_DIRECTORY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "nni_checkpoint_directory", default=None)


def checkpoint_directory() -> str | None:
    """The checkpoint directory of the experiment whose algorithm is running, if any.

    Inside a tuner or assessor call (or its constructor) made by the manager: that
    experiment's ``checkpoint/`` directory. Elsewhere: ``$NNI_CHECKPOINT_DIRECTORY`` or None.
    """
    return _CHECKPOINT_DIRECTORY.get() or os.environ.get("NNI_CHECKPOINT_DIRECTORY") or None


def algorithm_context(directory: str | os.PathLike[str]) -> contextvars.Context:
    """A copy of the current context in which :func:`checkpoint_directory` answers ``directory``."""
    context = contextvars.copy_context()
    context.run(_CHECKPOINT_DIRECTORY.set, os.fspath(directory))
    return context


class Recoverable:
    """Base for algorithms that may save and restore their state."""

    def load_checkpoint(self) -> None:
        """Restore state from :meth:`get_checkpoint_path`; a no-op by default."""

    def save_checkpoint(self) -> None:
        """Save state under :meth:`get_checkpoint_path`; a no-op by default."""

    def get_checkpoint_path(self) -> str | None:
        """Directory the manager gives this algorithm for checkpoints (see :func:`checkpoint_directory`)."""
        return checkpoint_directory()
