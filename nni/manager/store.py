"""SQLite storage for one experiment: every fact is committed before it is acknowledged.

The database lives at ``<experiment dir>/db/nni.sqlite`` in WAL mode. WAL with
``synchronous=NORMAL`` survives a killed manager (only a power loss can drop the last
commits), which is the failure this store is designed for.

The connection is opened with ``isolation_level=None``, so the ``sqlite3`` module never
begins or commits a transaction behind our back: a lone statement commits by itself, and
every write of more than one statement goes through :meth:`Store.transaction`, an explicit
``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error). A crash half-way through
such a write therefore leaves nothing of it behind (for example a trial without its
parameters, or a trial ended without its attempt). The manager records each trial event
(submitted, started, ended) in one such transaction: one commit instead of one per row.

Group commit: the trial channel's writes (a metric and what it implies) go through
:meth:`Store.group_commit`. Every write queued while the event loop was busy runs in one
``BEGIN IMMEDIATE`` ... ``COMMIT``, each inside its own ``SAVEPOINT`` (a write that fails
is rolled back alone), and each request is answered only after that ``COMMIT`` returned:
many requests share one commit, none is acknowledged before it is in the database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    sequence_id INTEGER NOT NULL UNIQUE,
    status TEXT NOT NULL,
    trial_dir TEXT NOT NULL,
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    exit_code INTEGER,
    message TEXT
);
CREATE TABLE IF NOT EXISTS parameters (
    parameter_id INTEGER PRIMARY KEY,
    trial_id TEXT NOT NULL REFERENCES trials(trial_id),
    parameter_index INTEGER NOT NULL,
    source TEXT NOT NULL,
    parameters TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'RUNNING',
    UNIQUE (trial_id, parameter_index)
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL REFERENCES trials(trial_id),
    parameter_id INTEGER,
    type TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    value TEXT NOT NULL,
    timestamp REAL NOT NULL,
    UNIQUE (trial_id, parameter_id, type, sequence)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp REAL NOT NULL,
    kind TEXT NOT NULL,
    trial_id TEXT,
    message TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    trial_id TEXT NOT NULL REFERENCES trials(trial_id),
    attempt INTEGER NOT NULL,
    machine TEXT,
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    status TEXT NOT NULL,
    cause TEXT,                 -- why this attempt ran (NULL: the first run)
    reason TEXT,                -- why it ended (NULL: it succeeded)
    stdout_offset INTEGER,      -- the sizes of the trial's stdout and stderr files when this
    stderr_offset INTEGER,      -- attempt was queued: every attempt appends to the same files
    process TEXT,               -- the training service's record of its process (pid and start
                                -- time, ...): what a resume ends if the manager died meanwhile
    PRIMARY KEY (trial_id, attempt)
);
CREATE TABLE IF NOT EXISTS imported (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parameter TEXT NOT NULL,
    value TEXT NOT NULL,
    timestamp REAL NOT NULL,
    source TEXT                 -- the experiment a warm start took it from (NULL: nnictl import)
);
CREATE INDEX IF NOT EXISTS parameters_by_trial ON parameters(trial_id);
CREATE INDEX IF NOT EXISTS metrics_final ON metrics(id) WHERE type = 'FINAL';
CREATE INDEX IF NOT EXISTS trials_by_status ON trials(status, sequence_id);
"""
# Metrics by trial are found through the UNIQUE (trial_id, ...) index; this older index was
# its duplicate and only slowed every insert down. Final results (one in ten or fewer rows:
# trial lists, export, resume) are found through the partial index metrics_final, which a
# query uses when it says ``type = 'FINAL'`` literally; a plain index on ``type`` would lure
# SQLite (no ANALYZE statistics) away from the per-trial index in the web UI's queries.
_DROPPED_INDEXES = ("metrics_by_trial",)


TRIAL_COLUMNS = ("trial_id", "sequence_id", "status", "trial_dir", "submit_time", "start_time",
                 "end_time", "exit_code", "message")


def _now() -> float:
    return time.time()


def _compact_json(value: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it (no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store:
    """All reads and writes of one experiment's database (used from the manager's loop thread)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if not readonly:
            # Owner-only: the stored config can hold SSH passwords (SQLite gives the -wal and
            # -shm files the database file's mode).
            from .secret import private_dir, private_file
            private_dir(self.path.parent)
            private_file(self.path)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            for index in _DROPPED_INDEXES:
                self._db.execute(f"DROP INDEX IF EXISTS {index}")
            _add_missing_columns(self._db)
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future]] = []
        self._flush_scheduled = False

    def close(self) -> None:
        self._db.close()

    def reader(self) -> sqlite3.Connection:
        """A second, read-only connection to the same file, for long reads (streamed exports).

        In WAL mode it reads one consistent snapshot while the manager keeps writing on
        its own connection; the caller closes it.
        """
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    # -- group commit ------------------------------------------------------------------------
    async def group_commit(self, write: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``write(connection)`` in the next group transaction; return once it is committed.

        Writes queued in the same turn of the event loop share one transaction (one WAL
        append instead of one per request). Each runs in its own savepoint, so a write that
        raises is undone alone and its caller gets the exception; the others commit.
        """
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # call_soon: every request already readable in this loop turn queues its write first.
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.transaction() as db:
                for write, _future in batch:
                    db.execute("SAVEPOINT one_write")
                    try:
                        outcomes.append((True, write(db)))
                    except Exception as exc:  # noqa: BLE001 - handed to that request's caller
                        db.execute("ROLLBACK TO one_write")
                        outcomes.append((False, exc))
                    db.execute("RELEASE one_write")
        except Exception as exc:  # noqa: BLE001 - the commit itself failed: nobody is acknowledged
            outcomes = [(False, exc)] * len(batch)
        for (_write, future), (ok, value) in zip(batch, outcomes):
            if future.done():       # its request was cancelled (client gone); the write stands
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One real transaction: all statements inside commit together or not at all.

        Inside another one it is part of that one (the outer one commits or rolls back the
        whole), so a write made of other writes is one transaction too. Nothing may await
        inside: another coroutine's writes would join the open transaction.

        ``with connection:`` would not do: in autocommit mode (``isolation_level=None``)
        no transaction is open, so each statement would already have committed on its own.
        IMMEDIATE takes the write lock up front, so a reader cannot make it fail half-way.
        """
        if self._db.in_transaction:
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- experiment metadata -------------------------------------------------------------
    def set_meta(self, **items: Any) -> None:
        self.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                         [(k, json.dumps(v)) for k, v in items.items()])

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def all_meta(self) -> dict[str, Any]:
        return {r[0]: json.loads(r[1]) for r in self._db.execute("SELECT key, value FROM meta")}

    # -- trials ----------------------------------------------------------------------------
    def add_trial(self, trial_id: str, sequence_id: int, trial_dir: str, parameter_id: int | None,
                  parameters: dict[str, Any] | None, source: str = "algorithm") -> None:
        """Record a new WAITING trial together with the parameter set it was given."""
        now = _now()
        with self.transaction():
            self._db.execute(
                "INSERT INTO trials(trial_id, sequence_id, status, trial_dir, submit_time) VALUES (?,?,?,?,?)",
                (trial_id, sequence_id, "WAITING", trial_dir, now))
            if parameter_id is not None:
                self._insert_parameter(trial_id, parameter_id, 0, source, parameters or {}, now)

    def add_parameter(self, trial_id: str, parameter_id: int, index: int, parameters: dict[str, Any],
                      source: str = "algorithm") -> None:
        self._insert_parameter(trial_id, parameter_id, index, source, parameters, _now())

    def _insert_parameter(self, trial_id: str, parameter_id: int, index: int, source: str,
                          parameters: dict[str, Any], now: float) -> None:
        self._db.execute(
            "INSERT INTO parameters(parameter_id, trial_id, parameter_index, source, parameters, created)"
            " VALUES (?,?,?,?,?,?)", (parameter_id, trial_id, index, source, json.dumps(parameters), now))

    def set_parameter_status(self, parameter_id: int, status: str) -> None:
        """The outcome of one parameter set (a phase): SUCCEEDED once its final result is in."""
        self._db.execute("UPDATE parameters SET status = ? WHERE parameter_id = ?", (status, parameter_id))

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(TRIAL_COLUMNS)
        if unknown:
            raise KeyError(f"unknown trial columns: {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE trials SET {assignments} WHERE trial_id = ?", (*fields.values(), trial_id))

    def trials(self, status: str | None = None, *, offset: int = 0, limit: int | None = None,
               after: int | None = None) -> list[dict[str, Any]]:
        """Trials in sequence order; ``offset``/``limit`` select one page of them, ``after`` (a
        sequence id) starts past that trial (a keyset page: its cost does not grow with it)."""
        query = "SELECT * FROM trials"
        clauses: list[str] = []
        args: list[Any] = []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if after is not None:
            clauses.append("sequence_id > ?")
            args.append(after)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY sequence_id"
        if limit is not None or offset:
            query += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return [dict(r) for r in self._db.execute(query, args)]

    def trial(self, trial_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return dict(row) if row else None

    def parameters(self, trial_id: str | None = None, *,
                   trial_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Parameter sets of one trial, of the trials in ``trial_ids``, or of all."""
        query = "SELECT * FROM parameters"
        args: list[Any] = []
        if trial_id is not None:
            query += " WHERE trial_id = ?"
            args = [trial_id]
        elif trial_ids is not None:
            args = list(trial_ids)
            query += f" WHERE trial_id IN ({','.join('?' * len(args))})"
        rows = self._db.execute(query + " ORDER BY trial_id, parameter_index", args)
        return [{**dict(r), "parameters": json.loads(r["parameters"])} for r in rows]

    def parameter_rows(self) -> Iterator[tuple[str, int, str, str, int]]:
        """(trial id, parameter id, source, parameters JSON, index) of every parameter set, by
        trial and index, read lazily as tuples (resume: no row objects for 100,000 trials)."""
        cursor = self._db.execute("SELECT trial_id, parameter_id, source, parameters, parameter_index"
                                  " FROM parameters ORDER BY trial_id, parameter_index")
        cursor.row_factory = None
        yield from cursor

    def trial_rows(self) -> Iterator[tuple[str, int, str, str, str | None]]:
        """(trial id, sequence id, status, directory, message) of every trial in sequence order,
        read lazily as tuples (resume)."""
        cursor = self._db.execute("SELECT trial_id, sequence_id, status, trial_dir, message FROM trials"
                                  " ORDER BY sequence_id")
        cursor.row_factory = None
        yield from cursor

    def last_attempts(self) -> dict[str, int]:
        """The latest attempt number of every trial that has run more than once (resume)."""
        try:
            return dict(self._db.execute("SELECT trial_id, MAX(attempt) FROM attempts GROUP BY trial_id"
                                         " HAVING MAX(attempt) > 1"))
        except sqlite3.OperationalError:   # opened read-only before this table existed
            return {}

    def attempt_processes(self, trial_ids: Iterable[str]) -> dict[str, str | None]:
        """The ``process`` of each trial's latest attempt (None: not recorded), for a resume's clean-up."""
        ids = list(trial_ids)
        processes: dict[str, str | None] = {}
        for start in range(0, len(ids), 500):   # SQLite caps a statement's parameters
            chunk = ids[start:start + 500]
            rows = self._db.execute(f"SELECT trial_id, process FROM attempts WHERE trial_id IN "
                                    f"({','.join('?' * len(chunk))}) ORDER BY trial_id, attempt", chunk)
            processes.update(rows)   # in attempt order: the latest attempt's stays
        return processes

    def max_parameter_id(self) -> int:
        row = self._db.execute("SELECT MAX(parameter_id) FROM parameters").fetchone()
        return -1 if row[0] is None else int(row[0])

    def status_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status")}

    # -- attempts (each run of a trial: the first, retries after a lost machine, user re-runs) --
    def add_attempt(self, trial_id: str, attempt: int, cause: str | None = None,
                    log_offsets: tuple[int, int] | None = None) -> None:
        """A new attempt; ``log_offsets``: where its output starts in the trial's stdout and
        stderr files (their sizes now; the first attempt starts at 0)."""
        stdout_offset, stderr_offset = log_offsets or (None, None)
        self._db.execute("INSERT OR REPLACE INTO attempts(trial_id, attempt, submit_time, status, cause,"
                         " stdout_offset, stderr_offset) VALUES (?,?,?,?,?,?,?)",
                         (trial_id, attempt, _now(), "WAITING", cause, stdout_offset, stderr_offset))

    def update_attempt(self, trial_id: str, attempt: int, **fields: Any) -> None:
        unknown = set(fields) - {"machine", "start_time", "end_time", "status", "reason", "process"}
        if unknown:
            raise KeyError(f"unknown attempt columns: {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE attempts SET {assignments} WHERE trial_id = ? AND attempt = ?",
                         (*fields.values(), trial_id, attempt))

    def attempts(self, trial_id: str | None = None, *,
                 trial_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Attempt rows of one trial, of the trials in ``trial_ids``, or of all, by trial and
        attempt number ([] for a database older than the table)."""
        query, args = "SELECT * FROM attempts", []
        if trial_id is not None:
            query, args = query + " WHERE trial_id = ?", [trial_id]
        elif trial_ids is not None:
            args = list(trial_ids)
            query += f" WHERE trial_id IN ({','.join('?' * len(args))})"
        try:
            return [dict(r) for r in self._db.execute(query + " ORDER BY trial_id, attempt", args)]
        except sqlite3.OperationalError:   # opened read-only before this table existed
            return []

    # -- metrics ---------------------------------------------------------------------------
    def add_metric(self, trial_id: str, parameter_id: int | None, metric_type: str, sequence: int,
                   value: str) -> bool:
        """Store a metric; False when the same metric was stored before (a retried request)."""
        with self.transaction() as db:
            return insert_metric(db, trial_id, parameter_id, metric_type, sequence, value)

    def max_sequence(self, trial_id: str) -> int:
        """The highest metric sequence number stored for a trial (-1: none)."""
        row = self._db.execute("SELECT MAX(sequence) FROM metrics WHERE trial_id = ?", (trial_id,)).fetchone()
        return -1 if row[0] is None else int(row[0])

    def metrics(self, trial_id: str | None = None, metric_type: str | None = None, *,
                trial_ids: Iterable[str] | None = None, offset: int = 0,
                limit: int | None = None, after: int | None = None) -> list[dict[str, Any]]:
        """Metrics in arrival (id) order, of one trial or of ``trial_ids`` or of all; optionally a
        page: ``offset``/``limit``, or ``after`` (a metric id) and ``limit``, a keyset page that
        starts with a seek in the id order instead of walking the rows before it."""
        clauses: list[str] = []
        args: list[Any] = []
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        if trial_id is not None:
            clauses.append("trial_id = ?")
            args.append(trial_id)
        elif trial_ids is not None:
            ids = list(trial_ids)
            clauses.append(f"trial_id IN ({','.join('?' * len(ids))})")
            args += ids
        if metric_type is not None:
            if metric_type not in ("FINAL", "PERIODICAL"):
                raise ValueError(f"metric type must be FINAL or PERIODICAL, got {metric_type!r}")
            clauses.append(f"type = '{metric_type}'")    # literal: lets SQLite use metrics_final
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        page = ""
        if limit is not None or offset:
            page = " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return [dict(r) for r in self._db.execute(f"SELECT * FROM metrics{where} ORDER BY id{page}", args)]

    def final_values(self) -> Iterator[tuple[str, int | None, str]]:
        """(trial id, parameter id, value) of every final result, read lazily (resume)."""
        cursor = self._db.execute("SELECT trial_id, parameter_id, value FROM metrics WHERE type = 'FINAL'")
        cursor.row_factory = None
        yield from cursor

    def final_metric(self, trial_id: str, parameter_id: int | None) -> dict[str, Any] | None:
        """The final result stored for one parameter set of a trial (None if there is none)."""
        row = self._db.execute("SELECT * FROM metrics WHERE trial_id = ? AND parameter_id IS ? AND type = 'FINAL'"
                               " ORDER BY id LIMIT 1", (trial_id, parameter_id)).fetchone()
        return dict(row) if row else None

    # -- imported results ------------------------------------------------------------------
    def add_imported(self, rows: list[dict[str, Any]], source: str | None = None) -> None:
        """Append imported results ({"parameter", "value"}) in one transaction, as one batch;
        ``source``: the experiment a warm start took them from (None: the user imported them)."""
        now = _now()
        self.executemany("INSERT INTO imported(parameter, value, timestamp, source) VALUES (?, ?, ?, ?)",
                         [(_compact_json(r["parameter"]), _compact_json(r["value"]), now, source) for r in rows])

    def imported_batches(self) -> list[str]:
        """Every import as NNI's ``imported-data`` route answers it: one JSON list per import,
        written compactly as NNI's manager writes it (``JSON.stringify``: NNI's integration test
        looks for the import file's JSON with its spaces removed).

        Rows of one import share their timestamp (``add_imported`` writes them together);
        rows kept in ``meta`` by older versions come first, as one batch.
        """
        batches: list[str] = []
        legacy = self.get_meta("imported_data", []) or []
        if legacy:
            batches.append(_compact_json(legacy))
        current: list[str] = []
        last: tuple[float, str | None] | None = None
        has_source = any(r[1] == "source" for r in self._db.execute("PRAGMA table_info(imported)"))
        for parameter, value, timestamp, source in self._db.execute(
                f"SELECT parameter, value, timestamp, {'source' if has_source else 'NULL'} FROM imported ORDER BY id"):
            if last is not None and (timestamp, source) != last:
                batches.append("[" + ",".join(current) + "]")
                current = []
            current.append(f'{{"parameter":{parameter},"value":{value}}}')
            last = (timestamp, source)
        if current:
            batches.append("[" + ",".join(current) + "]")
        return batches

    def imported(self) -> list[dict[str, Any]]:
        """Every imported result, oldest first (also those kept in ``meta`` by older versions)."""
        rows = list(self.get_meta("imported_data", []) or [])
        rows += [{"parameter": json.loads(r[0]), "value": json.loads(r[1])}
                 for r in self._db.execute("SELECT parameter, value FROM imported ORDER BY id")]
        return rows

    def imported_rows(self) -> list[dict[str, Any]]:
        """Every imported result with its row id, time and ``source`` (None: imported by the user)."""
        # a read-only store written before the column existed has no source: NULL for all
        has_source = any(r[1] == "source" for r in self._db.execute("PRAGMA table_info(imported)"))
        cursor = self._db.execute(f"SELECT id, parameter, value, timestamp, {'source' if has_source else 'NULL'}"
                                  " FROM imported ORDER BY id")
        return [{"id": i, "parameter": json.loads(p), "value": json.loads(v), "timestamp": t, "source": s}
                for i, p, v, t, s in cursor]

    def imported_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM imported").fetchone()[0]

    # -- events ----------------------------------------------------------------------------
    def add_event(self, kind: str, message: str = "", trial_id: str | None = None) -> None:
        self._db.execute("INSERT INTO events(timestamp, kind, trial_id, message) VALUES (?,?,?,?)",
                         (_now(), kind, trial_id, message))

    def events(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows][::-1]

    def first_event_time(self, kind: str) -> float | None:
        """When the first event of ``kind`` was recorded (EXPERIMENT_CREATED: when the experiment began)."""
        row = self._db.execute("SELECT MIN(timestamp) FROM events WHERE kind = ?", (kind,)).fetchone()
        return row[0]

    def executemany(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Run ``sql`` for every row, in one transaction."""
        with self.transaction():
            self._db.executemany(sql, rows)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns later versions added to existing tables (a store written before them gets them)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(imported)")}
    if "source" not in columns:
        db.execute("ALTER TABLE imported ADD COLUMN source TEXT")
    columns = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
    for column, kind in (("stdout_offset", "INTEGER"), ("stderr_offset", "INTEGER"), ("process", "TEXT")):
        if column not in columns:
            db.execute(f"ALTER TABLE attempts ADD COLUMN {column} {kind}")


def insert_metric(db: sqlite3.Connection, trial_id: str, parameter_id: int | None, metric_type: str,
                  sequence: int, value: str) -> bool:
    """Insert one metric on ``db`` (also inside a group commit); False if it was stored before.

    A parameter set has one final result: a second one is not stored (False). A FINAL
    result also marks its parameter set SUCCEEDED in the same transaction.
    """
    if metric_type == "FINAL" and db.execute(
            "SELECT 1 FROM metrics WHERE trial_id = ? AND parameter_id IS ? AND type = 'FINAL'",
            (trial_id, parameter_id)).fetchone():
        return False
    cursor = db.execute(
        "INSERT OR IGNORE INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp)"
        " VALUES (?,?,?,?,?,?)", (trial_id, parameter_id, metric_type, sequence, value, _now()))
    if cursor.rowcount != 1:
        return False
    if metric_type == "FINAL" and parameter_id is not None:
        db.execute("UPDATE parameters SET status = 'SUCCEEDED' WHERE parameter_id = ?", (parameter_id,))
    return True
