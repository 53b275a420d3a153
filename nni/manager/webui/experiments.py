"""Every experiment of this user, side by side: the read model of the UI's experiments pages.

Read from the registry (``$NNI_NG_HOME/experiments``: where each experiment lives, whether
its manager runs) and from the default experiments root (``~/nni-experiments``: stopped
experiments whose registry entry is gone), each experiment's facts from its own store opened
read-only. No manager is started and nothing is written. Used by every manager's UI
(``/api/v1/nni/ui/experiments``) and by ``nnictl webui`` (``standalone.py``); it runs in a
worker thread (SQLite reads of many stores).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...status import EXPERIMENT_ENDED
from .. import registry
from ..experiment_dir import ExperimentDir
from ..read_model import ms, public_config, stored_optimize_mode
from ...errors import NotFound
from .queries import QueryError, scalar_sql

# Where experiments go by default (the config's ``experimentWorkingDirectory`` default).
DEFAULT_ROOT = "~/nni-experiments"
COMPARE_MIN, COMPARE_MAX = 2, 8
# Config keys that differ between any two experiments and say nothing about the search.
_NOT_A_DIFFERENCE = ("experimentName",)


def experiments_root() -> Path:
    return Path(DEFAULT_ROOT).expanduser()


@dataclass(frozen=True)
class Found:
    """An experiment on this machine: its id, directory and registry entry (None: not registered)."""

    id: str
    dir: Path
    entry: dict[str, Any] | None

    @property
    def alive(self) -> bool:
        return bool(self.entry and self.entry.get("alive"))


def find_experiments() -> list[Found]:
    """The registry's experiments, then those under the default root that it does not know."""
    found: dict[str, Found] = {}
    for entry in registry.list_entries():
        if entry.get("id") and entry.get("dir"):
            found[str(entry["id"])] = Found(str(entry["id"]), Path(entry["dir"]), entry)
    root = experiments_root()
    try:
        children = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:
        children = []
    for child in children:
        if child.name not in found and ExperimentDir(child).has_store():
            found[child.name] = Found(child.name, child, None)
    return list(found.values())


def find_one(experiment_id: str) -> Found:
    for item in find_experiments():
        if item.id == experiment_id:
            return item
    raise NotFound(f"no experiment {experiment_id!r} on this machine (see 'nnictl experiment list --all')")


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)


def _meta(db: sqlite3.Connection) -> dict[str, Any]:
    return {r[0]: json.loads(r[1]) for r in db.execute("SELECT key, value FROM meta")}


def _tuner(config: dict[str, Any]) -> str | None:
    """The tuner's name as configured (builtin name, or the class of a custom one)."""
    for key in ("tuner", "advisor"):
        algo = config.get(key)
        if isinstance(algo, dict):
            return algo.get("name") or algo.get("className")
    return None


def experiment_facts(item: Found, current: str | None = None) -> dict[str, Any]:
    """One row of the experiments table (nothing from the store when it cannot be read)."""
    entry = item.entry or {}
    info: dict[str, Any] = {
        "id": item.id, "name": entry.get("name"), "status": entry.get("status") or "STOPPED",
        "alive": item.alive, "port": entry.get("port") if item.alive else None,
        "viewed": item.alive and entry.get("status") == "VIEWED", "current": item.id == current,
        "registered": item.entry is not None, "dir": str(item.dir),
        "counts": {}, "trials": 0, "best": None, "optimizeMode": None, "tuner": None, "maxTrialNumber": None,
        "createdTime": _ms(entry.get("start_time")), "resumedTime": None, "startTime": _ms(entry.get("start_time")),
        "endTime": _ms(entry.get("end_time")), "duration": None,
    }
    path = ExperimentDir(item.dir).database
    if not path.is_file():
        return info
    try:
        db = _open(path)
        try:
            meta = _meta(db)
            counts = dict(db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())
            mode = stored_optimize_mode(meta)
            best = db.execute(f"SELECT MAX(v), MIN(v) FROM (SELECT {scalar_sql('value')} AS v FROM metrics"
                              " WHERE type = 'FINAL')").fetchone()
            created, resumed = db.execute(
                "SELECT MIN(CASE WHEN kind = 'EXPERIMENT_CREATED' THEN timestamp END),"
                " MAX(CASE WHEN kind = 'EXPERIMENT_RESUMED' THEN timestamp END) FROM events"
                " WHERE kind IN ('EXPERIMENT_CREATED', 'EXPERIMENT_RESUMED')").fetchone()
        finally:
            db.close()
    except (sqlite3.Error, ValueError):
        return info
    config = meta.get("config") or {}
    status = meta.get("status")
    if info["viewed"]:
        status = "VIEWED"
    elif not item.alive and status not in EXPERIMENT_ENDED:
        status = "STOPPED"   # its manager is gone
    start, end = meta.get("start_time"), meta.get("end_time")
    running = item.alive and not info["viewed"]
    # start_time is moved back by the time spent before a resume (limits carry on), so this
    # is the experiment's total running time, as NNI's execDuration.
    duration = ((time.time() if running or not end else end) - start) if isinstance(start, (int, float)) else None
    info.update({
        "name": info["name"] or config.get("experimentName"), "status": status or "STOPPED", "counts": counts,
        "trials": sum(counts.values()), "optimizeMode": mode, "best": best[1] if mode == "minimize" else best[0],
        "maxTrialNumber": config.get("maxTrialNumber"), "tuner": _tuner(config),
        "createdTime": _ms(created) or _ms(start), "resumedTime": _ms(resumed),
        "startTime": _ms(created) or _ms(start), "endTime": _ms(end) if not running else None,
        "duration": None if duration is None else max(0.0, duration),
    })
    return info


def list_experiments(current: str | None = None) -> list[dict[str, Any]]:
    """Every experiment's row, newest first."""
    rows = [experiment_facts(item, current) for item in find_experiments()]
    return sorted(rows, key=lambda e: e["createdTime"] or 0, reverse=True)


# -- side by side ------------------------------------------------------------------------------
def parse_ids(raw: str) -> list[str]:
    ids = list(dict.fromkeys(i for i in raw.split(",") if i))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise QueryError(f"ids must name {COMPARE_MIN} to {COMPARE_MAX} experiments (comma-separated), got {len(ids)}")
    return ids


def compare_experiments(ids: list[str]) -> dict[str, Any]:
    """Best-so-far curves (by trial number and by time since creation), the best trial and the
    config of each experiment, and the config keys whose values differ between them."""
    known = {item.id: item for item in find_experiments()}
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFound(f"no experiment {missing[0]!r} on this machine (see 'nnictl experiment list --all')")
    experiments = [_one(known[i]) for i in ids]
    return {"experiments": experiments, "differences": config_differences([e["config"] for e in experiments])}


def _one(item: Found) -> dict[str, Any]:
    facts = experiment_facts(item)
    path = ExperimentDir(item.dir).database
    config: dict[str, Any] = {}
    by_trial: dict[str, list[Any]] = {"x": [], "y": [], "trial": []}
    by_time: dict[str, list[Any]] = {"x": [], "y": [], "trial": []}
    best = None
    if path.is_file():
        try:
            db = _open(path)
            try:
                meta = _meta(db)
                config = public_config(meta.get("config") or {})
                mode = stored_optimize_mode(meta)
                created = db.execute("SELECT MIN(timestamp) FROM events WHERE kind = 'EXPERIMENT_CREATED'").fetchone()[0]
                rows = db.execute(
                    f"SELECT t.sequence_id, m.trial_id, {scalar_sql('m.value')} AS v, m.timestamp, m.parameter_id"
                    " FROM metrics m JOIN trials t USING (trial_id) WHERE m.type = 'FINAL' AND v IS NOT NULL"
                    " ORDER BY m.id").fetchall()
                origin = created if created is not None else (rows[0][3] if rows else 0.0)
                better = (lambda a, b: a < b) if mode == "minimize" else (lambda a, b: a > b)
                for x, series in ((0, by_trial), (3, by_time)):
                    current = None
                    for row in sorted(rows, key=lambda r: (r[x], r[3])):
                        if current is None or better(row[2], current):
                            current = row[2]
                            series["x"].append(row[x] if x == 0 else round(row[x] - origin, 3))
                            series["y"].append(current)
                            series["trial"].append(row[1])
                    if rows:   # the line goes on to the last result
                        last = max(rows, key=lambda r: (r[x], r[3]))
                        series["x"].append(last[x] if x == 0 else round(last[x] - origin, 3))
                        series["y"].append(current)
                        series["trial"].append(None)
                if rows:   # the first result with the best metric
                    top = rows[0]
                    for row in rows:
                        if better(row[2], top[2]):
                            top = row
                    best = _best_trial(db, top[1], top[2], top[4])
            finally:
                db.close()
        except (sqlite3.Error, ValueError):
            pass
    return {**facts, "config": config, "bestByTrial": by_trial, "bestByTime": by_time, "bestTrial": best}


def _best_trial(db: sqlite3.Connection, trial_id: str, metric: float, parameter_id: int | None) -> dict[str, Any]:
    row = db.execute("SELECT sequence_id, status FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
    params = db.execute("SELECT parameters FROM parameters WHERE parameter_id = ?", (parameter_id,)).fetchone()
    return {"trialJobId": trial_id, "sequenceId": row[0] if row else None, "status": row[1] if row else None,
            "metric": metric, "parameters": json.loads(params[0]) if params and params[0] else None}


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def config_differences(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The config fields (dotted paths; a list is one value) whose values are not all the same,
    with each experiment's value (None where it has no such field), in first-seen order."""
    flat = [dict(_flatten(c)) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    answer = []
    for key in keys:
        if key in _NOT_A_DIFFERENCE:
            continue
        values = [f.get(key) for f in flat]
        if any(json.dumps(v, sort_keys=True) != json.dumps(values[0], sort_keys=True) for v in values[1:]):
            answer.append({"key": key, "values": values})
    return answer


def _ms(seconds: Any) -> int | None:
    """Seconds as epoch milliseconds (a registry entry is a user-writable file: anything else is None)."""
    return ms(seconds) if isinstance(seconds, (int, float)) else None
