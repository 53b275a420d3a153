"""Which experiment a command means, and reading it: live through REST, stopped from its store.

A running experiment is asked through its REST API; a stopped one is read from its SQLite
file with the same functions the REST handlers use, so both give the same answers.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..experiment import rest
from ..manager import registry
from ._errors import CliError


def running_entries() -> list[dict[str, Any]]:
    return [e for e in registry.list_entries() if e["alive"] and e.get("status") != "VIEWED"]


def resolve(experiment_id: str | None, port: int | None = None) -> dict[str, Any]:
    """The registry entry the user means: by id, by port, or the only one running."""
    if experiment_id:
        entry = registry.get_entry(experiment_id)
        if entry is None:
            known = ", ".join(e["id"] for e in registry.list_entries()) or "none"
            raise CliError(f"no experiment with id {experiment_id!r} (known: {known})")
        return entry
    running = running_entries()
    if port is not None:
        for entry in registry.list_entries():
            if entry["alive"] and entry.get("port") == port:
                return entry
        raise CliError(f"no running experiment on port {port}")
    if len(running) == 1:
        return running[0]
    if not running:
        raise CliError("no experiment is running; name one by id (see 'nnictl experiment list --all')")
    ids = ", ".join(e["id"] for e in running)
    raise CliError(f"several experiments are running ({ids}); name one")


def is_live(entry: dict[str, Any]) -> bool:
    """Whether a manager (not a read-only view) serves the experiment."""
    return bool(entry["alive"]) and entry.get("status") != "VIEWED"


def require_live(entry: dict[str, Any], action: str) -> int:
    if not is_live(entry):
        raise CliError(f"experiment {entry['id']} is not running ({entry.get('status')}); "
                       f"resume it with 'nnictl resume {entry['id']}' to {action}")
    return int(entry["port"])


@contextmanager
def open_store(entry: dict[str, Any]) -> Iterator[Any]:
    from ..manager.store import Store
    database = Path(entry.get("dir", "")) / "db" / "nni.sqlite"
    if not database.is_file():
        raise CliError(f"experiment {entry['id']}: its database {database} is missing")
    store = Store(database, readonly=True)
    try:
        yield store
    finally:
        store.close()


def trial_jobs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if entry["alive"]:
        return rest.get(entry["port"], "/trial-jobs")
    from ..manager.rest import trial_jobs as stored_trial_jobs
    with open_store(entry) as store:
        return stored_trial_jobs(store)


def export_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if entry["alive"]:
        return rest.get(entry["port"], "/export-data")
    from ..manager.rest import export_rows as stored_rows
    with open_store(entry) as store:
        return stored_rows(store)


def pareto_rows(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Pareto front (export rows plus ``objectives``); None when the experiment has no objectives."""
    if entry["alive"]:
        try:
            return rest.get(entry["port"], "/pareto-front")
        except rest.RestError as exc:
            if exc.status == 409:   # no objectives
                return None
            raise
    from ..manager._objectives import pareto_front_rows
    with open_store(entry) as store:
        return pareto_front_rows(store)


def metrics(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if entry["alive"]:
        return rest.get(entry["port"], "/metric-data")
    from ..manager.rest import metric_json
    with open_store(entry) as store:
        return [metric_json(m) for m in store.metrics()]


def profile(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["alive"]:
        return rest.get(entry["port"], "/experiment")
    from ..manager.rest import experiment_profile
    with open_store(entry) as store:
        return experiment_profile(store, None)
