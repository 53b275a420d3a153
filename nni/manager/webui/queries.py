"""The web UI's read side: SQL over the experiment's SQLite store, off the manager's loop.

The UI needs sorted, filtered pages of trials and whole-experiment chart data, also for
experiments with 100,000 trials. Joining trials, parameters and metrics (a million
intermediate results) on every request would take about a second, so :class:`UiData`
keeps a *snapshot* in TEMP tables of its own read-only connection to the database:

- ``rows``: one row per trial with its state, its latest final result (``final`` and the
  scalar ``metric``) and the parameter set that result belongs to (the trial's latest
  set while it has none);
- ``results``: one row per final result with the parameters of exactly its parameter
  set (multi-phase trials have several).

The first build reads every trial in one statement (0.4 s for 100,000 trials, the whole
snapshot 0.6 s on this project's 2-core machine). After it the snapshot is brought up to
date before each query, incrementally and in SQL: new trials (by ``sequence_id``), trials
still WAITING/RUNNING in the snapshot (the only ones whose row can change), new parameter
sets (by ``parameter_id``) and new final results (by metric ``id``). ``PRAGMA
data_version`` tells whether anything was committed at all. The rows' intermediate-result
columns are counted for every row only once a query sorts, filters or exports by them (a
million results take a third of a second); until then a page of the table reads its own
rows' from the store, so no first answer waits for them. Queries then run on the TEMP
tables (tens of milliseconds for 100,000 trials).

Every method runs in one worker thread (see :meth:`UiData.run`), so a slow query never
holds up the manager's event loop and the connection is never used by two threads.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from ...errors import NniError
from ...status import TRIAL_ACTIVE, TRIAL_ALL, TRIAL_ENDED
from .._objectives import experiment_objectives
from ..._constraints import SQL_MISSING
from ..read_model import ms

ACTIVE_STATES = TRIAL_ACTIVE
FINISHED_STATES = TRIAL_ENDED
ALL_STATES = TRIAL_ALL


def scalar_sql(column: str) -> str:
    """SQL for the number a tuner optimizes from a metric stored as JSON text (else NULL).

    The same rule as ``nni.utils.extract_scalar_reward``: a JSON number, or the numeric
    ``default`` key of an object. Values SQLite cannot parse (NaN, Infinity) give NULL.
    """
    return (f"(CASE WHEN {column} IS NULL OR NOT json_valid({column}) THEN NULL"
            f" WHEN json_type({column}) IN ('integer', 'real') THEN json_extract({column}, '$')"
            f" WHEN json_type({column}) = 'object' AND json_type({column}, '$.default') IN ('integer', 'real')"
            f" THEN json_extract({column}, '$.default') END)")


def json_path(key: str) -> str:
    """The JSON path of a top-level key (quoted, so dots and spaces in names are fine)."""
    return '$."' + key + '"'


_SNAPSHOT = """
CREATE TEMP TABLE rows (
    trial_id TEXT PRIMARY KEY,
    sequence_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    trial_dir TEXT,
    submit_time REAL,
    start_time REAL,
    end_time REAL,
    exit_code INTEGER,
    message TEXT,
    phases INTEGER NOT NULL DEFAULT 0,
    parameter_id INTEGER,
    parameter_index INTEGER,
    parameters TEXT,
    final TEXT,
    final_pid INTEGER,
    metric REAL,
    intermediates INTEGER NOT NULL DEFAULT 0,   -- PERIODICAL results reported so far
    latest TEXT,                                -- the last of them (JSON text)
    latest_metric REAL                          -- its scalar
);
CREATE INDEX temp.rows_by_sequence ON rows(sequence_id);
CREATE INDEX temp.rows_by_status ON rows(status);
-- Trials without a final result (few): the overview's "ended without report_final_result()"
-- count reads this index instead of every row.
CREATE INDEX temp.rows_without_final ON rows(status) WHERE final IS NULL;
CREATE TABLE temp.results (
    id INTEGER PRIMARY KEY,          -- the metric's id: arrival order
    trial_id TEXT NOT NULL,
    parameter_id INTEGER,
    parameter_index INTEGER,
    parameters TEXT,
    value TEXT NOT NULL,
    metric REAL,
    timestamp REAL
);
CREATE INDEX temp.results_by_trial ON results(trial_id, id);
CREATE TABLE temp.dirty (trial_id TEXT PRIMARY KEY);
CREATE TABLE temp.reruns (trial_id TEXT PRIMARY KEY);   -- trials with more than one attempt
"""

_TRIAL_FIELDS = "status, trial_dir, submit_time, start_time, end_time, exit_code, message"
# The rows' columns counted from the intermediate results (UiData._count_intermediates).
_INTERMEDIATE_COLUMNS = ("intermediates", "latest")
_NO_INTERMEDIATES = (0, None, None)

# Sort keys of the trials table besides ``param:NAME`` and ``metric:KEY``.
_SORTS = {
    "sequenceId": "sequence_id",
    "trialJobId": "trial_id",
    "status": "status",
    "startTime": "start_time",
    "endTime": "end_time",
    "submitTime": "submit_time",
    "duration": "(COALESCE(end_time, :now) - start_time)",
    "metric": "metric",
    "intermediates": "intermediates",
    "latest": "latest_metric",
}
# Fields a filter expression may name besides parameters and metric keys.
_FILTER_FIELDS = {
    "metric": "metric",
    "duration": "(COALESCE(end_time, :now) - start_time)",
    "sequence": "sequence_id",
    "seq": "sequence_id",
    "id": "trial_id",
    "status": "status",
    "intermediates": "intermediates",
    "latest": "latest_metric",
}
_NUMERIC_FIELDS = {"metric", "duration", "sequence", "seq", "intermediates", "latest", "feasible", "violation"}
_OPERATOR = re.compile(r"\s*(<=|>=|!=|==|=|<|>)\s*")
_EXPRESSION = re.compile(r"^([^\s<>=!]*)(<=|>=|!=|==|=|<|>)(.*)$")


class QueryError(NniError, ValueError):
    """A bad query parameter (answered 400 with this message)."""


class UiData:
    """Snapshot tables and queries over one experiment's database (see the module doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nni-webui")
        self._db: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._max_sequence = -1
        self._max_parameter = -1
        self._max_metric = -1
        self._max_event = -1
        self._counted_metric = -1   # intermediate results are counted up to this metric id
        self._pending = 0           # calls of run() waiting or running
        self._last_done = 0.0       # when the last one ended (time.monotonic())
        self._param_keys: list[str] = []
        self._metric_keys: list[str] = []
        self.cache: dict[str, tuple[Any, Any]] = {}   # name -> (snapshot key, value)
        self._violation: dict[str, str | None] = {}   # column -> SQL of its total violation (config constraints)

    async def run(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``method`` (one of ours) in the worker thread, after refreshing the snapshot."""
        def call() -> Any:
            self.refresh()
            return method(*args, **kwargs)
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self._pending -= 1
            self._last_done = time.monotonic()

    async def until_idle(self, seconds: float) -> None:
        """Return once no call has been waiting or running for ``seconds`` (background work
        that would otherwise hold up a page's requests waits for this)."""
        while True:
            quiet = time.monotonic() - self._last_done
            if not self._pending and quiet >= seconds:
                return
            await asyncio.sleep(max(0.05, seconds - quiet) if not self._pending else 0.1)

    def close(self) -> None:
        """Close the connection and stop the worker thread."""
        def close_db() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._executor.submit(close_db)
        self._executor.shutdown(wait=True)

    # -- snapshot ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.executescript(_SNAPSHOT)
            self._db = db
        return self._db

    @property
    def key(self) -> tuple[int, int, int]:
        """Changes whenever the snapshot does (for caching derived answers)."""
        return (self._max_sequence, self._max_metric, self._data_version or 0)

    def refresh(self) -> None:
        """Bring the snapshot up to date with what the store has committed (cheap when nothing was)."""
        db = self._connect()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        db.execute("BEGIN")   # one read snapshot for every statement below
        try:
            self._refresh(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._data_version = version

    def _refresh(self, db: sqlite3.Connection) -> None:
        seq, pid, mid = self._max_sequence, self._max_parameter, self._max_metric
        new_seq = _int(db.execute("SELECT MAX(sequence_id) FROM main.trials").fetchone()[0], seq)
        new_pid = _int(db.execute("SELECT MAX(parameter_id) FROM main.parameters").fetchone()[0], pid)
        new_mid = _int(db.execute("SELECT MAX(id) FROM main.metrics").fetchone()[0], mid)
        # An ended trial runs again when a new attempt is queued (a retry or a user re-run):
        # the TRIAL_ATTEMPT_QUEUED event names it, so its row becomes active again here.
        eid = self._max_event
        new_eid = _int(db.execute("SELECT MAX(id) FROM main.events").fetchone()[0], eid)
        if new_eid > eid:
            db.execute(f"UPDATE temp.rows SET ({_TRIAL_FIELDS}) = (SELECT {_TRIAL_FIELDS} FROM main.trials t"
                       " WHERE t.trial_id = temp.rows.trial_id) WHERE trial_id IN (SELECT trial_id FROM"
                       " main.events WHERE id > ? AND id <= ? AND kind = 'TRIAL_ATTEMPT_QUEUED')", (eid, new_eid))
            db.execute("INSERT OR IGNORE INTO temp.reruns SELECT DISTINCT trial_id FROM main.events"
                       " WHERE id > ? AND id <= ? AND kind = 'TRIAL_ATTEMPT_QUEUED' AND trial_id IS NOT NULL",
                       (eid, new_eid))
            self._max_event = new_eid
        if new_mid > mid:   # new final results, with the parameters of their own parameter set
            db.execute("INSERT INTO temp.results (id, trial_id, parameter_id, parameter_index, parameters,"
                       f" value, metric, timestamp) SELECT m.id, m.trial_id, m.parameter_id, p.parameter_index,"
                       f" p.parameters, m.value, {scalar_sql('m.value')}, m.timestamp FROM main.metrics m"
                       " LEFT JOIN main.parameters p ON p.parameter_id = m.parameter_id"
                       " WHERE m.id > ? AND m.id <= ? AND m.type = 'FINAL'", (mid, new_mid))
            self._add_keys(self._metric_keys, db.execute(
                "SELECT DISTINCT j.key FROM temp.results r, json_each(r.value) j"
                " WHERE r.id > ? AND json_valid(r.value) AND json_type(r.value) = 'object'"
                " AND j.key != 'default'", (mid,)))
        if new_pid > pid:
            self._add_keys(self._param_keys, db.execute(
                "SELECT DISTINCT j.key FROM main.parameters p, json_each(p.parameters) j"
                " WHERE p.parameter_id > ? AND p.parameter_id <= ? AND json_valid(p.parameters)"
                " AND json_type(p.parameters) = 'object'", (pid, new_pid)))
        if seq < 0 and pid < 0 and mid < 0:
            self._build_rows(db, new_seq, new_pid)
        else:
            self._update_rows(db, seq, pid, mid, new_seq, new_pid)
        # A trial that ran again (a retry or a user re-run) shows its latest attempt: its
        # duration counts from that attempt's start, not from the first one's (the store's
        # trial row keeps the first start; the idle time between attempts is no one's run).
        if db.execute("SELECT 1 FROM temp.reruns LIMIT 1").fetchone():
            db.execute("UPDATE temp.rows SET start_time = (SELECT a.start_time FROM main.attempts a"
                       " WHERE a.trial_id = temp.rows.trial_id ORDER BY a.attempt DESC LIMIT 1)"
                       " WHERE trial_id IN (SELECT trial_id FROM temp.reruns)")
        self._max_sequence, self._max_parameter, self._max_metric = new_seq, new_pid, new_mid

    def _build_rows(self, db: sqlite3.Connection, new_seq: int, new_pid: int) -> None:
        """The first build: every trial's row in one statement, in trial order (2.0 s -> 0.4 s
        for 100,000 trials against the incremental updates below, which are made for a few
        rows at a time).

        A row's final result is its latest one (``temp.results`` is filled already); its
        parameter set is that result's, else the trial's latest. Each is found by index
        look-ups per trial (no grouping of whole tables). Intermediate results are counted
        later, when a query needs them (:meth:`_count_intermediates`).
        """
        fields = ", ".join(f"x.{name.strip()}" for name in _TRIAL_FIELDS.split(","))
        db.execute(
            f"WITH x AS (SELECT trial_id, sequence_id, {_TRIAL_FIELDS},"
            " (SELECT MAX(r.id) FROM temp.results r WHERE r.trial_id = t.trial_id) AS final_id,"
            " (SELECT p.parameter_id FROM main.parameters p WHERE p.trial_id = t.trial_id AND p.parameter_id <= :pid"
            " ORDER BY p.parameter_index DESC LIMIT 1) AS last_pid,"
            " (SELECT COUNT(*) FROM main.parameters p WHERE p.trial_id = t.trial_id AND p.parameter_id <= :pid) AS phases"
            " FROM main.trials t WHERE t.sequence_id <= :seq ORDER BY t.sequence_id)"
            f" INSERT INTO temp.rows (trial_id, sequence_id, {_TRIAL_FIELDS}, phases, parameter_id, parameter_index,"
            " parameters, final, final_pid, metric)"
            f" SELECT x.trial_id, x.sequence_id, {fields}, x.phases, COALESCE(f.parameter_id, x.last_pid),"
            " CASE WHEN f.parameter_id IS NULL THEN p.parameter_index ELSE f.parameter_index END,"
            " CASE WHEN f.parameter_id IS NULL THEN p.parameters ELSE f.parameters END,"
            " f.value, f.parameter_id, f.metric FROM x LEFT JOIN temp.results f ON f.id = x.final_id"
            " LEFT JOIN main.parameters p ON p.parameter_id = x.last_pid", {"pid": new_pid, "seq": new_seq})

    def _update_rows(self, db: sqlite3.Connection, seq: int, pid: int, mid: int, new_seq: int, new_pid: int) -> None:
        """Bring the rows up to date after the first build: trials the snapshot still has
        active, new trials, and trials with a new parameter set or final result."""
        # Trials the snapshot still has active may have started, ended or got a message.
        db.execute(f"UPDATE temp.rows SET ({_TRIAL_FIELDS}) = (SELECT {_TRIAL_FIELDS} FROM main.trials t"
                   " WHERE t.trial_id = temp.rows.trial_id) WHERE status IN ('WAITING', 'RUNNING')")
        if new_seq > seq:
            db.execute(f"INSERT INTO temp.rows (trial_id, sequence_id, {_TRIAL_FIELDS})"
                       f" SELECT trial_id, sequence_id, {_TRIAL_FIELDS} FROM main.trials"
                       " WHERE sequence_id > ? AND sequence_id <= ?", (seq, new_seq))
            db.execute("INSERT OR IGNORE INTO temp.dirty SELECT trial_id FROM main.trials"
                       " WHERE sequence_id > ? AND sequence_id <= ?", (seq, new_seq))
        if new_pid > pid:
            db.execute("INSERT OR IGNORE INTO temp.dirty SELECT DISTINCT trial_id FROM main.parameters"
                       " WHERE parameter_id > ? AND parameter_id <= ?", (pid, new_pid))
        db.execute("INSERT OR IGNORE INTO temp.dirty SELECT DISTINCT trial_id FROM temp.results WHERE id > ?", (mid,))
        # Rows of trials with a new trial record, parameter set or final result.
        dirty = "trial_id IN (SELECT trial_id FROM temp.dirty)"
        db.execute("UPDATE temp.rows SET (final, final_pid, metric) = (SELECT r.value, r.parameter_id, r.metric"
                   " FROM temp.results r WHERE r.trial_id = temp.rows.trial_id ORDER BY r.id DESC LIMIT 1)"
                   f" WHERE {dirty}")
        db.execute("UPDATE temp.rows SET"
                   " phases = (SELECT COUNT(*) FROM main.parameters p WHERE p.trial_id = temp.rows.trial_id),"
                   " parameter_id = COALESCE(final_pid, (SELECT p.parameter_id FROM main.parameters p"
                   " WHERE p.trial_id = temp.rows.trial_id ORDER BY p.parameter_index DESC LIMIT 1))"
                   f" WHERE {dirty}")
        db.execute("UPDATE temp.rows SET (parameter_index, parameters) = (SELECT p.parameter_index, p.parameters"
                   " FROM main.parameters p WHERE p.parameter_id = temp.rows.parameter_id)"
                   f" WHERE {dirty}")
        db.execute("DELETE FROM temp.dirty")

    def _count_intermediates(self) -> None:
        """Bring the rows' intermediate-result columns (``intermediates``, ``latest``,
        ``latest_metric``) up to the snapshot; only the queries that sort, filter or export by
        them call this (a million intermediate results on a first read of 100,000 trials: about
        0.3 s), and, once it ran, every page of the table (the increments are small).

        One pass over the metrics not counted yet: the count is added to, and the latest is
        the value at the highest new id (SQLite's bare column of MAX()). Metric rows are never
        changed once written, so the ids up to the snapshot's are all there is to count.
        """
        counted, upto = self._counted_metric, self._max_metric
        if counted >= upto:
            return
        self._connect().execute(
            "UPDATE temp.rows SET intermediates = intermediates + n.count, latest = n.value,"
            f" latest_metric = {scalar_sql('n.value')}"
            " FROM (SELECT trial_id, COUNT(*) AS count, value, MAX(id) FROM main.metrics"
            " WHERE id > ? AND id <= ? AND type = 'PERIODICAL' GROUP BY trial_id) AS n"
            " WHERE temp.rows.trial_id = n.trial_id", (counted, upto))
        self._counted_metric = upto

    def _intermediates_of(self, trial_ids: list[str]) -> dict[str, tuple[int, Any, Any]]:
        """(count, latest, its scalar) of the intermediate results of ``trial_ids`` up to the
        snapshot, read for these trials only (a page of the table before the whole count is
        needed: the overview's top trials, the table's first page)."""
        found: dict[str, tuple[int, Any, Any]] = {}
        for chunk in _chunks(trial_ids, 500):
            marks = ", ".join("?" for _ in chunk)
            for trial_id, count, value, metric, _ in self._connect().execute(
                    f"SELECT trial_id, COUNT(*), value, {scalar_sql('value')}, MAX(id) FROM main.metrics"
                    f" WHERE trial_id IN ({marks}) AND type = 'PERIODICAL' AND id <= ? GROUP BY trial_id",
                    (*chunk, self._max_metric)):
                found[trial_id] = (count, value, metric)
        return found

    @staticmethod
    def _add_keys(keys: list[str], rows: Any) -> None:
        for (key,) in rows:
            if key not in keys:
                keys.append(key)

    # -- answers -----------------------------------------------------------------------------
    def parameter_keys(self, space: dict[str, Any] | None = None) -> list[str]:
        """Parameter names: the search space's order first, then any others seen."""
        ordered = [k for k in (space or {}) if k in self._param_keys]
        return ordered + [k for k in self._param_keys if k not in ordered]

    def metric_keys(self) -> list[str]:
        """Keys of dict final results other than ``default``, in the order first seen."""
        return list(self._metric_keys)

    def meta(self) -> dict[str, Any]:
        """The store's ``meta`` table (id, config, status, times, ...), decoded."""
        db = self._connect()
        return {r[0]: json.loads(r[1]) for r in db.execute("SELECT key, value FROM main.meta")}

    def _objectives(self) -> list[tuple[str, str]]:
        """(metric, mode) of each objective of a multi-objective experiment ([] otherwise), from
        the stored config (objectives cannot be changed while it runs)."""
        if "objectives" not in self.cache:
            try:
                objectives = experiment_objectives(self.meta().get("config") or {}) or []
            except ValueError:   # a stored config is read as it is; the manager validated its own
                objectives = []
            self.cache["objectives"] = (None, [(o.metric, o.mode) for o in objectives])
        return self.cache["objectives"][1]

    def summary(self, optimize_mode: str) -> dict[str, Any]:
        """Counts by state, the best final result with its parameters, and trial-limit progress."""
        db = self._connect()
        counts = {r[0]: r[1] for r in db.execute("SELECT status, COUNT(*) FROM temp.rows GROUP BY status")}
        order = "ASC" if optimize_mode == "minimize" else "DESC"
        feasible = self.violation_sql("r.value")   # with constraints only a feasible result is the best
        only_feasible = f" AND {feasible} = 0" if feasible else ""
        objectives = self._objectives()
        if objectives:
            # Multi-objective: the best of the first objective; a tie there goes to the result
            # better on the next objectives, so the one named is never dominated by its twin.
            params = {f"o{i}": json_path(metric) for i, (metric, _) in enumerate(objectives)}
            value = "(CASE WHEN json_valid(r.value) AND json_type(r.value) = 'object'" \
                    " THEN json_extract(r.value, :o{i}) END)"
            keys = ", ".join(f"{value.format(i=i)} {'DESC' if mode == 'maximize' else 'ASC'}"
                             for i, (_, mode) in enumerate(objectives))
            best = db.execute("SELECT r.*, t.sequence_id FROM temp.results r JOIN temp.rows t USING (trial_id)"
                              f" WHERE {value.format(i=0)} IS NOT NULL{only_feasible} ORDER BY {keys}, r.id ASC"
                              " LIMIT 1", params).fetchone()
        else:
            best = db.execute("SELECT r.*, t.sequence_id FROM temp.results r JOIN temp.rows t USING (trial_id)"
                              f" WHERE r.metric IS NOT NULL{only_feasible} ORDER BY r.metric {order}, r.id ASC"
                              " LIMIT 1").fetchone()
        finished = sum(counts.get(s, 0) for s in FINISHED_STATES)
        done = finished    # maxTrialNumber counts trial jobs, multi-phase ones too (as NNI)
        return {
            "counts": counts,
            "trialsSubmitted": sum(counts.values()),
            "trialsDone": finished,
            "limitDone": done,
            "finalResults": db.execute("SELECT COUNT(*) FROM temp.results").fetchone()[0],
            # Trials that exited 0 without calling report_final_result(): the tuner learned
            # nothing from them (a missing call is the commonest first-hour mistake).
            "withoutFinal": db.execute("SELECT COUNT(*) FROM temp.rows WHERE status = 'SUCCEEDED'"
                                       " AND final IS NULL").fetchone()[0],
            "best": None if best is None else {
                "trialJobId": best["trial_id"],
                "sequenceId": best["sequence_id"],
                "parameterId": best["parameter_id"],
                "parameterIndex": best["parameter_index"],
                "metric": _objective_value(best, objectives),
                "value": _loads(best["value"]),
                "parameters": _loads(best["parameters"]),
            },
        }

    def trials_page(self, *, offset: int = 0, limit: int = 50, sort: str = "sequenceId", order: str = "asc",
                    statuses: list[str] | None = None, text: str = "",
                    space: dict[str, Any] | None = None) -> dict[str, Any]:
        """One page of the trials table, sorted and filtered in SQL."""
        db = self._connect()
        params: dict[str, Any] = {"now": time.time(), "limit": limit, "offset": offset}
        where, sort_sql = [], self._sort_sql(sort, params)
        if statuses:
            names = []
            for i, status in enumerate(statuses):
                params[f"s{i}"] = status
                names.append(f":s{i}")
            where.append(f"status IN ({', '.join(names)})")
        conditions, filter_errors = self._parse_filter(text, params)
        if filter_errors:
            # A filter that cannot be read selects nothing: no stale rows or count, and every
            # bad term named. Answered as data (200), not as a failed request: the box is
            # checked as the user types, and a browser logs every 4xx in its console.
            return {"total": 0, "offset": offset, "limit": limit, "sort": sort, "order": order.lower(),
                    "parameterKeys": self.parameter_keys(space), "metricKeys": self.metric_keys(),
                    "trials": [], "filterErrors": filter_errors}
        where += conditions
        # Sorting or filtering by them needs every row's intermediate-result columns; a page
        # sorted and filtered otherwise needs only its own rows' (see below).
        counted = self._counted_metric >= 0 or any(
            column in sql for sql in (sort_sql, *conditions) for column in _INTERMEDIATE_COLUMNS)
        if counted:
            self._count_intermediates()
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        direction = "DESC" if order == "desc" else "ASC"
        total = db.execute(f"SELECT COUNT(*) FROM temp.rows{clause}", params).fetchone()[0]
        # Sort row ids only, then fetch the page's rows: the sorter then moves a few bytes per
        # trial instead of whole rows with their JSON (4x faster on 100,000 trials).
        page_ids = [r[0] for r in db.execute(
            f"SELECT rowid FROM temp.rows{clause}"
            f" ORDER BY ({sort_sql}) IS NULL, {sort_sql} {direction}, sequence_id {direction}"
            " LIMIT :limit OFFSET :offset", params)]
        by_id = {r["rowid"]: r for r in db.execute(
            f"SELECT rowid, *, COALESCE(end_time, ?) - start_time AS duration{self._violation_column()} FROM temp.rows"
            f" WHERE rowid IN ({', '.join('?' for _ in page_ids)})", (params["now"], *page_ids))}
        rows = [by_id[i] for i in page_ids]
        own = {} if counted else self._intermediates_of([r["trial_id"] for r in rows])
        return {
            "filterErrors": [],
            "total": total,
            "offset": offset,
            "limit": limit,
            "sort": sort,
            "order": order.lower(),
            "parameterKeys": self.parameter_keys(space),
            "metricKeys": self.metric_keys(),
            "trials": [_row_json(r, own.get(r["trial_id"], _NO_INTERMEDIATES) if not counted else None)
                       for r in rows],
        }

    def trials_export(self, *, sort: str = "sequenceId", order: str = "asc", statuses: list[str] | None = None,
                      text: str = "", space: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every trial that the same sort and filter as :meth:`trials_page` select, as one list."""
        db = self._connect()
        self._count_intermediates()
        params: dict[str, Any] = {"now": time.time()}
        where, sort_sql = [], self._sort_sql(sort, params)
        for i, status in enumerate(statuses or []):
            params[f"s{i}"] = status
        if statuses:
            where.append(f"status IN ({', '.join(f':s{i}' for i in range(len(statuses)))})")
        where += self._filter_sql(text, params)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        direction = "DESC" if order == "desc" else "ASC"
        rows = db.execute(f"SELECT rowid, *, COALESCE(end_time, :now) - start_time AS duration"
                          f"{self._violation_column()} FROM temp.rows{clause}"
                          f" ORDER BY ({sort_sql}) IS NULL, {sort_sql} {direction}, sequence_id {direction}", params)
        return {"parameterKeys": self.parameter_keys(space), "metricKeys": self.metric_keys(),
                "trials": [_row_json(r) for r in rows]}

    def violation_sql(self, column: str) -> str | None:
        """SQL of the total violation of the final result in ``column`` (``nni._constraints``), or
        None for an experiment without constraints (they never change while it runs)."""
        if column not in self._violation:
            from ..._constraints import parse_constraints, violation_sql
            raw = (self.meta().get("config") or {}).get("constraints")
            try:
                constraints = parse_constraints(raw) if raw else []
            except ValueError:
                constraints = []
            self._violation[column] = violation_sql(constraints, column) if constraints else None
        return self._violation[column]

    def _violation_column(self) -> str:
        violation = self.violation_sql("final")
        return f", {violation} AS violation" if violation else ""

    def _sort_sql(self, sort: str, params: dict[str, Any]) -> str:
        if sort == "violation" and self.violation_sql("final"):
            return self.violation_sql("final") or ""
        if sort in _SORTS:
            return _SORTS[sort]
        kind, _, name = sort.partition(":")
        if kind == "param" and name in self._param_keys:
            params["sort_path"] = json_path(name)
            return "json_extract(parameters, :sort_path)"
        if kind == "metric" and name in self._metric_keys:
            params["sort_path"] = json_path(name)
            return "(CASE WHEN json_valid(final) AND json_type(final) = 'object'" \
                   " THEN json_extract(final, :sort_path) END)"
        raise QueryError(f"sort must be one of {', '.join(_SORTS)}, param:NAME or metric:KEY"
                         f" (known parameters: {', '.join(self._param_keys) or 'none'}), got {sort!r}")

    def _filter_sql(self, text: str, params: dict[str, Any]) -> list[str]:
        """SQL conditions for the filter box (see :meth:`_parse_filter`); QueryError naming every
        bad term when any is bad."""
        clauses, errors = self._parse_filter(text, params)
        if errors:
            raise QueryError("; ".join(errors))
        return clauses

    def _parse_filter(self, text: str, params: dict[str, Any]) -> tuple[list[str], list[str]]:
        """(SQL conditions, errors) for the filter box: ``name<op>value`` terms and free text, all ANDed.

        ``name`` is a parameter, a metric key, ``metric`` (the default metric),
        ``duration`` (seconds), ``sequence``/``seq``, ``id``, ``status``, ``intermediates``
        (how many intermediate results) or ``latest`` (the last one). Spaces around the
        operator are allowed (``loss = hinge``). A term without an operator matches the trial
        id, the sequence number or the parameters' JSON text. A term with an operator that
        names no known field, lacks a value or compares a numeric field with text is an
        error rather than silently matching nothing; every bad term is named, not only the
        first, so one look at the box's message shows all there is to fix.
        """
        clauses: list[str] = []
        errors: list[str] = []
        for i, term in enumerate(_OPERATOR.sub(lambda m: m.group(1), text.strip()).split()):
            match = _EXPRESSION.match(term)
            if match:
                name, op, raw = match.groups()
                if not name:
                    errors.append(f"filter term {term!r}: a field name must come before {op!r}")
                    continue
                field = self._field_sql(name, params, i)
                if field is None:
                    errors.append(f"filter term {term!r}: unknown field {name!r}; fields:"
                                  f" {', '.join(self._param_keys + self._metric_keys + list(_FILTER_FIELDS))}")
                    continue
                if not raw:
                    errors.append(f"filter term {term!r}: a value must follow {op!r}")
                    continue
                value: Any = raw.strip("'\"")
                if name == "feasible":   # feasible=yes / feasible=no (also 1 / 0, true / false)
                    raw = {"yes": "1", "true": "1", "no": "0", "false": "0"}.get(raw.lower(), raw)
                try:
                    value = float(raw)
                except ValueError:
                    if name in _NUMERIC_FIELDS:
                        errors.append(f"filter term {term!r}: {name} is a number, {raw!r} is not")
                        continue
                op = {"==": "="}.get(op, op)
                params[f"v{i}"] = value
                clauses.append(f"{field} {op} :v{i}")
                continue
            params[f"t{i}"] = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params[f"n{i}"] = term
            clauses.append(f"(trial_id LIKE :t{i} ESCAPE '\\' OR parameters LIKE :t{i} ESCAPE '\\'"
                           f" OR CAST(sequence_id AS TEXT) = :n{i})")
        return clauses, errors

    def _field_sql(self, name: str, params: dict[str, Any], i: int) -> str | None:
        violation = self.violation_sql("final")
        if violation and name == "violation":     # constraints: 1e308 stands for a missing metric
            return violation
        if violation and name == "feasible":
            return f"(CASE WHEN {violation} IS NULL THEN NULL WHEN {violation} = 0 THEN 1 ELSE 0 END)"
        if name in self._param_keys:
            params[f"p{i}"] = json_path(name)
            return f"json_extract(parameters, :p{i})"
        if name in _FILTER_FIELDS:
            return _FILTER_FIELDS[name]
        if name in self._metric_keys:
            params[f"p{i}"] = json_path(name)
            return f"(CASE WHEN json_valid(final) AND json_type(final) = 'object' THEN json_extract(final, :p{i}) END)"
        return None

    def chart_data(self, space: dict[str, Any] | None = None) -> str:
        """Column-oriented JSON for the charts, built by SQLite itself (no per-row Python).

        ``trials``: every trial (duration chart); ``results``: every final result with the
        values of each parameter of its own parameter set.
        """
        db = self._connect()
        keys = self.parameter_keys(space)
        params = {f"k{i}": json_path(k) for i, k in enumerate(keys)}
        columns = ", ".join(f"'{i}', json_group_array(json_extract(parameters, :k{i}))" for i in range(len(keys)))
        trials = db.execute(
            "SELECT json_object('trialJobId', json_group_array(trial_id), 'sequenceId', json_group_array(sequence_id),"
            " 'status', json_group_array(status), 'startTime', json_group_array(CAST(start_time * 1000 AS INTEGER)),"
            " 'endTime', json_group_array(CAST(end_time * 1000 AS INTEGER)))"
            " FROM (SELECT * FROM temp.rows ORDER BY sequence_id)").fetchone()[0]
        results = db.execute(
            "SELECT json_object('trialJobId', json_group_array(trial_id), 'sequenceId', json_group_array(sequence_id),"
            " 'parameterIndex', json_group_array(parameter_index), 'metric', json_group_array(metric)"
            + (f", 'params', json_object({columns})" if keys else "")
            + ") FROM (SELECT r.*, t.sequence_id FROM temp.results r JOIN temp.rows t USING (trial_id)"
            " ORDER BY t.sequence_id, r.id)", params).fetchone()[0]
        # The parameter columns are keyed by position above (names may hold any character).
        results_obj = json.loads(results) if keys else {**json.loads(results), "params": {}}
        results_obj["params"] = {k: results_obj["params"][str(i)] for i, k in enumerate(keys)}
        return ('{"parameterKeys": ' + json.dumps(keys) + ', "metricKeys": ' + json.dumps(self.metric_keys())
                + ', "trials": ' + trials + ', "results": ' + json.dumps(results_obj) + '}')

    def metric_series(self) -> str:
        """The metric-by-trial chart's data, and only that: every final result with a numeric
        metric, in trial order, as columns (``trialJobId``, ``sequenceId``, ``parameterIndex``,
        ``metric``), built by SQLite. A quarter of :meth:`chart_data`'s bytes for 100,000 trials,
        so the overview's chart (and the charts page's first) need not wait for the rest.
        """
        return self._connect().execute(
            "SELECT json_object('trialJobId', json_group_array(trial_id), 'sequenceId', json_group_array(sequence_id),"
            " 'parameterIndex', json_group_array(parameter_index), 'metric', json_group_array(metric))"
            " FROM (SELECT r.trial_id, t.sequence_id, r.parameter_index, r.metric FROM temp.results r"
            " JOIN temp.rows t USING (trial_id) WHERE r.metric IS NOT NULL ORDER BY t.sequence_id, r.id)").fetchone()[0]

    def importance_input(self, space: dict[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(parameter names, rows of (metric, value per parameter)) of every numeric final result."""
        db = self._connect()
        keys = self.parameter_keys(space)
        selects = "".join(f", json_extract(parameters, :k{i})" for i in range(len(keys)))
        params = {f"k{i}": json_path(k) for i, k in enumerate(keys)}
        rows = db.execute(f"SELECT metric{selects} FROM temp.results WHERE metric IS NOT NULL ORDER BY id", params)
        return keys, [tuple(r) for r in rows]

    def intermediate(self, trial_ids: list[str] | None, top: int, optimize_mode: str) -> dict[str, Any]:
        """Intermediate results of the given trials, or of the ``top`` best plus running ones."""
        db = self._connect()
        if not trial_ids:
            order = "ASC" if optimize_mode == "minimize" else "DESC"
            best = [r[0] for r in db.execute(
                f"SELECT trial_id FROM temp.rows WHERE metric IS NOT NULL ORDER BY metric {order}, sequence_id"
                " LIMIT ?", (top,))]
            running = [r[0] for r in db.execute(
                "SELECT trial_id FROM temp.rows WHERE status = 'RUNNING' ORDER BY sequence_id DESC LIMIT ?",
                (top,))]
            # Early-stopped trials have no final result but are the assessor's work: the
            # latest ones are drawn too (their curves end where the assessor stopped them).
            stopped = [r[0] for r in db.execute(
                "SELECT trial_id FROM temp.rows r WHERE status = 'EARLY_STOPPED' AND EXISTS (SELECT 1 FROM"
                " main.metrics m WHERE m.trial_id = r.trial_id AND m.type = 'PERIODICAL' AND m.id <= ?)"
                " ORDER BY sequence_id DESC LIMIT ?", (self._max_metric, top))]
            trial_ids = best + [t for t in running + stopped if t not in best]
        series: dict[tuple[str, Any], dict[str, Any]] = {}
        info = {}
        # A trial that ran again is drawn as its latest attempt: the results since that attempt
        # was submitted, numbered from step 0 (the store numbers them after the earlier ones').
        since = self._latest_attempt_submits(trial_ids)
        first: dict[tuple[str, Any], int] = {}
        for chunk in _chunks(trial_ids, 500):
            marks = ", ".join("?" for _ in chunk)
            for r in db.execute(f"SELECT trial_id, sequence_id, status, metric FROM temp.rows"
                                f" WHERE trial_id IN ({marks})", chunk):
                info[r[0]] = r
            for r in db.execute(
                    f"SELECT m.trial_id, m.parameter_id, p.parameter_index, m.sequence, {scalar_sql('m.value')},"
                    " m.timestamp FROM main.metrics m LEFT JOIN main.parameters p ON p.parameter_id = m.parameter_id"
                    f" WHERE m.trial_id IN ({marks}) AND m.type = 'PERIODICAL'"
                    " ORDER BY m.trial_id, m.parameter_id, m.sequence", chunk):
                if r[0] in since and r[5] < since[r[0]]:
                    continue
                entry = series.setdefault((r[0], r[1]), {"trialJobId": r[0], "parameterId": r[1],
                                                         "parameterIndex": r[2], "sequence": [], "value": []})
                step = r[3]
                if r[0] in since:
                    step -= first.setdefault((r[0], r[1]), r[3])
                entry["sequence"].append(step)
                entry["value"].append(r[4])
        answer = []
        for trial_id in trial_ids:
            row = info.get(trial_id)
            if row is None:
                continue
            for (tid, _), entry in series.items():
                if tid == trial_id:
                    answer.append({**entry, "sequenceId": row["sequence_id"], "status": row["status"],
                                   "metric": row["metric"]})
        return {"series": answer}

    def _latest_attempt_submits(self, trial_ids: list[str]) -> dict[str, float]:
        """When the latest attempt of each of ``trial_ids`` that ran more than once was submitted."""
        db = self._connect()
        asked = set(trial_ids)
        wanted = [t for (t,) in db.execute("SELECT trial_id FROM temp.reruns") if t in asked]
        if not wanted:
            return {}
        since: dict[str, float] = {}
        for chunk in _chunks(wanted, 500):
            marks = ", ".join("?" for _ in chunk)
            for trial_id, submitted, _ in db.execute(
                    f"SELECT trial_id, submit_time, MAX(attempt) FROM main.attempts WHERE trial_id IN ({marks})"
                    " GROUP BY trial_id", chunk):
                since[trial_id] = submitted
        return since

    def trial_dir(self, trial_id: str) -> str | None:
        """A trial's directory, or None for an unknown trial."""
        row = self._connect().execute("SELECT trial_dir FROM main.trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return None if row is None else row[0]

    def attempt_log_range(self, trial_id: str, attempt: int, stream: str) -> tuple[int, int | None] | None:
        """Where ``attempt``'s output lies in the trial's ``stream`` file, which every attempt
        appends to: ``(start, end)`` in bytes, end None for the latest attempt (to the end of
        the file). None when the attempt is unknown or its store did not record offsets."""
        column = {"stdout": "stdout_offset", "stderr": "stderr_offset"}[stream]
        try:
            rows = self._connect().execute(
                f"SELECT attempt, {column} FROM main.attempts WHERE trial_id = ? AND attempt IN (?, ?)",
                (trial_id, attempt, attempt + 1)).fetchall()
        except sqlite3.OperationalError:   # a store older than the offsets
            return None
        offsets = {row[0]: row[1] for row in rows}
        if attempt not in offsets:
            return None
        start = 0 if attempt == 1 else offsets[attempt]
        if start is None:
            return None
        return start, offsets.get(attempt + 1)


def _row_json(row: sqlite3.Row, intermediates: tuple[int, Any, Any] | None = None) -> dict[str, Any]:
    """A row of the table; ``intermediates``: its (count, latest, scalar) when the row's own
    columns are not counted yet (:meth:`UiData._intermediates_of`)."""
    count, latest, latest_metric = intermediates or (row["intermediates"], row["latest"], row["latest_metric"])
    info = {
        "trialJobId": row["trial_id"],
        "sequenceId": row["sequence_id"],
        "status": row["status"],
        "parameters": _loads(row["parameters"]),
        "parameterId": row["parameter_id"],
        "parameterIndex": row["parameter_index"],
        "phases": row["phases"],
        "metric": row["metric"],
        "final": _loads(row["final"]),
        "intermediates": count,
        "latest": _loads(latest),
        "latestMetric": latest_metric,
        "submitTime": ms(row["submit_time"]),
        "startTime": ms(row["start_time"]),
        "endTime": ms(row["end_time"]),
        "duration": row["duration"],
        "exitCode": row["exit_code"],
        "message": row["message"],
    }
    if "violation" in row.keys():   # constraints: feasible, and the violation (None: a metric missing)
        violation = row["violation"]
        info["feasible"] = None if violation is None else violation == 0
        info["violation"] = None if violation is None or violation >= SQL_MISSING else violation
        info["constraintMissing"] = violation is not None and violation >= SQL_MISSING
    return info


def _objective_value(result: sqlite3.Row, objectives: list[tuple[str, str]]) -> Any:
    """The number the overview's best card shows: the first objective's value (multi-objective),
    else the default metric."""
    if not objectives:
        return result["metric"]
    value = _loads(result["value"])
    return value.get(objectives[0][0]) if isinstance(value, dict) else None


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return _finite_json(value)


def _finite_json(value: Any) -> Any:
    """NaN and infinities become strings: browsers' JSON.parse rejects them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
