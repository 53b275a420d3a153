"""Checkpoint hooks shared by tuners and assessors (NNI's ``nni.recoverable``)."""

from __future__ import annotations

import os


class Recoverable:
    """Base for algorithms that may save and restore their state."""

    def load_checkpoint(self) -> None:
        """Restore state from :meth:`get_checkpoint_path`; a no-op by default."""

    def save_checkpoint(self) -> None:
        """Save state under :meth:`get_checkpoint_path`; a no-op by default."""

    def get_checkpoint_path(self) -> str | None:
        """Directory the manager gives this algorithm for checkpoints (``NNI_CHECKPOINT_DIRECTORY``)."""
        return os.environ.get("NNI_CHECKPOINT_DIRECTORY")
