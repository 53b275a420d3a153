"""The manager's side of multi-objective experiments (private): which tuners may run, what a
final result must hold, what the tuner and assessor receive, and the Pareto front read model
shared by the REST route, ``nnictl`` on a stopped experiment and the Python API.

See docs/multi_objective.md.  Experiments without ``objectives`` never reach this module.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from .._constraints import Constraint, Feasibility, feasibility, missing_note, parse_constraints
from .._objectives import (
    MULTI_OBJECTIVE_TUNERS,
    Objective,
    ObjectiveValueError,
    objective_values,
    parse_objectives,
)

__all__ = ["experiment_constraints", "read_feasibility", "feasibility_kwargs", "job_feasibility", "experiment_objectives", "refuse_tuner", "check_final", "assessor_view", "pareto_front_rows",
           "hypervolume_history", "ParetoAnswers", "COMPUTE", "last_result_id"]


def experiment_objectives(config: Any) -> list[Objective] | None:
    """The config's objectives (a canonical config or its JSON dict), or None."""
    raw = config.get("objectives") if isinstance(config, dict) else getattr(config, "objectives", None)
    return parse_objectives(raw) if raw else None


def experiment_constraints(config: Any) -> list[Constraint] | None:
    """The config's constraints (a canonical config or its JSON dict), or None (docs/constraints.md)."""
    raw = config.get("constraints") if isinstance(config, dict) else getattr(config, "constraints", None)
    return parse_constraints(raw) if raw else None


def read_feasibility(value: Any, constraints: list[Constraint] | None) -> tuple[Feasibility | None, str]:
    """``(feasibility, note)`` of a final result: ``note`` says which constraint metric is missing
    ('' when none is); ``(None, '')`` for an experiment without constraints."""
    if not constraints:
        return None, ""
    result = feasibility(value, constraints)
    return result, missing_note(result)


def feasibility_kwargs(tuner: Any, result: Feasibility | None) -> dict[str, Any]:
    """The keyword a tuner's ``receive_trial_result`` gets with a result of a constrained
    experiment: ``constraints={'feasible', 'violation', 'constraints': {metric: value}}``.

    Given only when the method takes it (a ``constraints`` parameter or ``**kwargs``, as NNI's
    ``Tuner`` base class has), so an old custom tuner with a narrower signature keeps working."""
    if result is None or not _accepts(getattr(tuner, "receive_trial_result", None), "constraints"):
        return {}
    return {"constraints": result.to_dict()}


def _accepts(method: Any, name: str) -> bool:
    import inspect
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind is not p.POSITIONAL_ONLY) for p in params)


def refuse_tuner(tuner: Any) -> str | None:
    """Why ``tuner`` cannot run a multi-objective experiment, or None when it can.

    A tuner can when its class says so (``multi_objective = True``, as MOTPE and NSGA2 do) or
    when it is the built-in Random tuner, which never looks at results.
    """
    from ..algorithms.hpo.random_tuner import RandomTuner
    if getattr(tuner, "multi_objective", False) or type(tuner) is RandomTuner:
        return None
    return (f"tuner {type(tuner).__name__} optimises one metric but the experiment has several objectives "
            f"(objectives); use one of {', '.join(MULTI_OBJECTIVE_TUNERS)}, or give a custom tuner class "
            f"the attribute multi_objective = True")


def check_final(value: Any, objectives: list[Objective]) -> tuple[dict | None, str]:
    """``(value for the tuner, '')`` for a final result that fits, else ``(None, why)``.

    The tuner gets the reported dict; ``default`` is added (the first objective) when the
    trial did not report it, so tuners that read NNI's scalar (Random) work unchanged.
    """
    try:
        values = objective_values(value, objectives)
    except ObjectiveValueError as exc:
        return None, f"final result not given to the tuner: {exc}"
    fed = dict(value) if isinstance(value, dict) else {objectives[0].metric: values[0]}
    fed.setdefault("default", values[0])
    return fed, ""


def assessor_view(history: list[Any], objectives: list[Objective]) -> list[Any]:
    """Intermediate results as the assessor sees them: the first objective's number where a
    result is a dict holding it, else the result unchanged."""
    metric = objectives[0].metric
    return [h[metric] if isinstance(h, dict) and metric in h else h for h in history]


def job_feasibility(finals: list[dict[str, Any]], constraints: list[Constraint] | None) -> dict[str, Any] | None:
    """A trial job's ``feasibility`` (its last final result read against the constraints; see
    :meth:`Feasibility.to_dict`), or None without constraints or before a final result."""
    if not constraints or not finals:
        return None
    return feasibility(finals[-1]["value"], constraints).to_dict()


def _fitting_rows(db: sqlite3.Connection, objectives: list[Objective], constraints: list[Constraint] | None = None,
                  infeasible: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """Export rows whose final result holds every objective, in result order, and their values.
    With ``constraints`` only feasible results count: an infeasible one is never on the front
    (it goes to ``infeasible``, when given)."""
    from .read_model import export_cursor, export_row
    rows, points = [], []
    for raw in export_cursor(db):
        row = export_row(raw)
        value = row["value"]
        while isinstance(value, str):   # stored as the trial's JSON text (NNI may encode twice)
            try:
                value = json.loads(value)
            except ValueError:
                break
        try:
            values = objective_values(value, objectives)
        except ObjectiveValueError:
            continue
        entry = {**row, "objectives": dict(zip((o.metric for o in objectives), values))}
        if constraints and not feasibility(value, constraints).feasible:
            if infeasible is not None:
                infeasible.append(entry)
            continue
        rows.append(entry)
        points.append(values)
    return rows, points


def _db_config(db: sqlite3.Connection, config: dict | None) -> dict:
    if config is None:
        row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        config = json.loads(row[0]) if row else {}
    return config


def _db_objectives(db: sqlite3.Connection, config: dict | None) -> list[Objective] | None:
    return experiment_objectives(_db_config(db, config))


def _db_constraints(db: sqlite3.Connection, config: dict | None) -> list[Constraint] | None:
    return experiment_constraints(_db_config(db, config))


#: Points of the hypervolume history (evenly spaced over the results), to keep it cheap.
HISTORY_POINTS = 50


def hypervolume_history(store: Any, config: dict | None = None) -> dict[str, Any] | None:
    """Hypervolume of the front after the first n fitting results, for up to 50 values of n.

    The reference point is the worst value of each objective over all results, moved 10 %
    of its range further (so every result counts); it moves as results arrive, so compare
    values within one answer.  None when the experiment has no objectives.
    Seconds of CPU for thousands of results: the manager calls it through :class:`ParetoAnswers`.
    """
    return _hypervolume_history(store._db, config)


def _hypervolume_history(db: sqlite3.Connection, config: dict | None) -> dict[str, Any] | None:
    import numpy as np

    from ..algorithms.hpo._pareto import hypervolume, non_dominated_mask, to_minimization
    objectives = _db_objectives(db, config)
    if objectives is None:
        return None
    _, points = _fitting_rows(db, objectives, _db_constraints(db, config))
    modes = [o.mode for o in objectives]
    if not points:
        return {"reference": None, "points": []}
    M = to_minimization(points, modes)
    low, high = M.min(axis=0), M.max(axis=0)
    ref_min = high + 0.1 * np.where(high > low, high - low, 1.0)
    n = len(M)
    m = min(n, HISTORY_POINTS)
    steps = sorted({max(1, round(n * (i + 1) / m)) for i in range(m)})
    # The hypervolume of the first k results is that of their front, and that front is the
    # front of the previous step's front plus the results since: each step works on a few
    # hundred points, not on all k (a k x k dominance matrix per step made 1,000 results with
    # 3 objectives cost 1.5 s of CPU).
    history, front, done = [], M[:0], 0
    minimize = ["minimize"] * M.shape[1]
    for k in steps:
        candidates = np.concatenate([front, M[done:k]])
        front = candidates[np.asarray(non_dominated_mask(candidates, minimize), dtype=bool)]
        done = k
        history.append({"results": k, "hypervolume": hypervolume(front, ref_min, n_samples=20_000)})
    sign = np.array([-1.0 if m == "maximize" else 1.0 for m in modes])
    return {"reference": (ref_min * sign).tolist(), "points": history}


def pareto_front_rows(store: Any, config: dict | None = None) -> list[dict[str, Any]] | None:
    """The non-dominated final results in export-data form plus ``objectives`` (metric -> value),
    or None when the experiment has no objectives.  Results that do not fit are left out."""
    return _pareto_front_rows(store._db, config)


def _pareto_front_rows(db: sqlite3.Connection, config: dict | None) -> list[dict[str, Any]] | None:
    from ..algorithms.hpo._pareto import non_dominated_mask
    objectives = _db_objectives(db, config)
    if objectives is None:
        return None
    rows, points = _fitting_rows(db, objectives, _db_constraints(db, config))
    if not rows:
        return []
    mask = non_dominated_mask(points, [o.mode for o in objectives])
    return [r for r, keep in zip(rows, mask) if keep]


def _infeasible_rows(db: sqlite3.Connection, config: dict | None) -> list[dict[str, Any]] | None:
    """The final results that hold every objective but violate the constraints (never on the
    front), in the front's row form; None when the experiment has no objectives.  The web UI's
    Pareto page draws them apart with this, so the rule stays ``nni/_constraints.py``'s alone."""
    objectives = _db_objectives(db, config)
    if objectives is None:
        return None
    constraints = _db_constraints(db, config)
    if not constraints:
        return []
    infeasible: list[dict[str, Any]] = []
    _fitting_rows(db, objectives, constraints, infeasible)
    return infeasible


def last_result_id(db: sqlite3.Connection) -> int | None:
    """The id of the last final result: an answer stays right until it changes."""
    return db.execute("SELECT MAX(id) FROM metrics WHERE type = 'FINAL'").fetchone()[0]


#: What the Pareto routes compute, by kind (run in ``_pareto_worker``).
COMPUTE: dict[str, Callable[[sqlite3.Connection, dict | None], Any]] = {
    "front": _pareto_front_rows, "hypervolume": _hypervolume_history, "infeasible": _infeasible_rows}


#: Up to this many final results the answers are worked out on the calling thread (a few
#: milliseconds of CPU); beyond, in the worker process.
INLINE_RESULTS = 200


class ParetoAnswers:
    """The Pareto routes' answers for one store, worked out off the event loop and its GIL.

    The hypervolume history of 1,000 results with 3 objectives took 1.5 s of CPU (4.5 s for
    2,000; 28 s with 4 objectives), and the Pareto page asks every 3 s: on the loop that held
    up every trial's report and lease renewal (issue 25), and on a thread of the manager the
    loop still waited for the GIL.  So answers come from a worker process the manager keeps
    (``_pareto_worker``, started on first use, restarted if it died), which reads the store
    from its own read-only connection (one short WAL snapshot); up to ``INLINE_RESULTS``
    results they are worked out on a thread instead (milliseconds, and no extra process for a
    small experiment).  One request is worked on at a
    time: browsers polling together wait for it and share it.  An answer is reused until a new
    final result arrives (checked on a thread, from a connection of its own) or the objectives
    change.
    """

    def __init__(self, path: Any) -> None:
        self._path = str(path)
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, tuple[Any, Any]] = {}
        self._worker: subprocess.Popen | None = None
        self._worker_lock = threading.Lock()

    async def front(self, config: dict | None) -> str | None:
        """What :func:`pareto_front_rows` answers, as JSON text (``config`` None: the stored one).
        Encoded off the loop too: the front can hold thousands of rows."""
        return await self._answer("front", config)

    async def hypervolume(self, config: dict | None) -> str | None:
        """What :func:`hypervolume_history` answers, as JSON text (``config`` None: the stored one)."""
        return await self._answer("hypervolume", config)

    async def infeasible(self, config: dict | None) -> str | None:
        """What :func:`_infeasible_rows` answers, as JSON text (``config`` None: the stored one)."""
        return await self._answer("infeasible", config)

    async def _answer(self, kind: str, config: dict | None) -> Any:
        lock = self._locks.setdefault(kind, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._compute, kind, config)

    def _compute(self, kind: str, config: dict | None) -> str | None:
        # config None (a viewed experiment): the stored config, which no longer changes
        # what the answers depend on besides the results: the objectives and the constraints
        reading = None if config is None else json.dumps([config.get("objectives"), config.get("constraints")],
                                                          sort_keys=True)
        request = {"kind": kind, "path": self._path, "config": config}
        last, count = self._results()
        hit = self._cache.get(kind)
        if hit is not None and hit[0] == (last, reading):
            return hit[1]
        if count <= INLINE_RESULTS:
            from ._pareto_worker import answer
            reply = answer(request)     # milliseconds: not worth the worker's round trip (or start)
        else:
            reply = self._ask(request)
        if "error" in reply:
            raise RuntimeError(f"the Pareto worker failed:\n{reply['error']}")
        text = None if reply["value"] is None else json.dumps(reply["value"])
        self._cache[kind] = ((reply["key"], reading), text)
        return text

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the worker process and read its answer (on a thread)."""
        line = json.dumps(request) + "\n"
        with self._worker_lock:
            for _ in range(2):      # a worker that died (killed, out of memory) is started again once
                worker = self._start_worker()
                try:
                    worker.stdin.write(line)
                    worker.stdin.flush()
                    reply = worker.stdout.readline()
                except OSError:
                    reply = ""
                if reply:
                    return json.loads(reply)
                self._stop_worker()
        raise RuntimeError("the Pareto worker process ended without an answer (see the manager's stderr)")

    def _start_worker(self) -> subprocess.Popen:
        if self._worker is None or self._worker.poll() is not None:
            # The package's own directory first: Experiment.start() may run in a process that
            # found nni through sys.path, not through the environment the child inherits.
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
            self._worker = subprocess.Popen([sys.executable, "-m", "nni.manager._pareto_worker"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                            close_fds=True)
        return self._worker

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            worker.stdin.close()     # its read loop ends
        except OSError:
            pass
        try:
            worker.wait(2)
        except subprocess.TimeoutExpired:   # busy with a long answer: nobody waits for it any more
            worker.kill()
            worker.wait()

    def _results(self) -> tuple[int | None, int]:
        """The last final result's id and the number of final results (own connection)."""
        db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, isolation_level=None)
        try:
            last, count = db.execute("SELECT MAX(id), COUNT(*) FROM metrics WHERE type = 'FINAL'").fetchone()
        finally:
            db.close()
        return last, count

    def start(self) -> None:
        """Start the worker process now if the store already needs it (blocking: call it on a thread)."""
        if self._results()[1] > INLINE_RESULTS:
            with self._worker_lock:
                self._start_worker()

    def close(self) -> None:
        """End the worker process (blocking: call it on a thread)."""
        with self._worker_lock:
            self._stop_worker()
