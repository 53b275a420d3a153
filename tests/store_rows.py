"""Filling a real store fast, for tests and benchmarks of large experiments."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def insert_rows(path: Path, trials: list[tuple], params: list[tuple], metrics: list[tuple]) -> None:
    """Insert rows into the store at ``path`` (created by ``Store`` first) in one transaction.

    ``trials`` are whole ``trials`` rows; ``params`` are (parameter_id, trial_id,
    parameter_index, source, parameters JSON, created); ``metrics`` are (trial_id,
    parameter_id, type, sequence, value JSON, timestamp).  The manager commits row by row;
    that is not what such a test or benchmark measures.
    """
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany("INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?)", trials)
            db.executemany("INSERT INTO parameters(parameter_id, trial_id, parameter_index, source, parameters,"
                           " created) VALUES (?,?,?,?,?,?)", params)
            db.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp)"
                           " VALUES (?,?,?,?,?,?)", metrics)
    finally:
        db.close()
