"""An experiment's directory, ``<experimentWorkingDirectory>/<id>/``: where each file lives.

Every part of nni-ng that opens an experiment's files (the manager, resume and view, the
CLI reading a stopped experiment, the Python API, the web UI's experiments page) goes
through :class:`ExperimentDir`, so the layout is written down once. No aiohttp, no numpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NniError


class MissingStoreError(NniError, ValueError):
    """The experiment's directory holds no database (deleted, never created, or another machine's)."""


@dataclass(frozen=True)
class ExperimentDir:
    """The files of one experiment (``path`` is ``<experimentWorkingDirectory>/<id>``)."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def of_database(cls, database: str | os.PathLike) -> "ExperimentDir":
        """The directory whose store is ``database`` (``<dir>/db/nni.sqlite``)."""
        return cls(Path(database).parent.parent)

    @property
    def database(self) -> Path:
        """The SQLite store: config, trials, parameter sets, metrics, events."""
        return self.path / "db" / "nni.sqlite"

    @property
    def trials(self) -> Path:
        """``trials/<trial id>/``: each trial's ``NNI_OUTPUT_DIR``, with its stdout and stderr."""
        return self.path / "trials"

    @property
    def log(self) -> Path:
        """The manager's log, ``log/nnimanager.log``."""
        return self.path / "log" / "nnimanager.log"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    def has_store(self) -> bool:
        return self.database.is_file()

    def open_store(self, *, readonly: bool = False) -> Any:
        """The :class:`~nni.manager.store.Store`; read-only ones need the database to exist
        (``MissingStoreError`` otherwise), a writable one is created when missing."""
        from .store import Store
        if readonly and not self.has_store():
            raise MissingStoreError(f"no database at {self.database}")
        return Store(self.database, readonly=readonly)

    def stored_config(self) -> dict[str, Any]:
        """The config the experiment ran with, as stored (camelCase, canonical); resume and
        ``Experiment.resume``/``view`` start from it. ``MissingStoreError`` when there is none."""
        store = self.open_store(readonly=True)
        try:
            config = store.get_meta("config")
        finally:
            store.close()
        if not config:
            raise MissingStoreError(f"the database at {self.database} holds no config")
        return config


__all__ = ["ExperimentDir", "MissingStoreError"]
