"""Which experiment a command means, and reading it: live through REST, stopped from its store.

A running experiment is asked through its REST API; a stopped one is read from its SQLite
file with the read models the REST handlers answer with (``nni.manager.read_model``), so
both give the same answers, and reading a stopped experiment loads neither aiohttp nor numpy.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..experiment import rest
from ..manager import read_model, registry
from ..manager.experiment_dir import ExperimentDir
from ..status import EXPERIMENT_ENDED, ExperimentStatus
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
    directory = ExperimentDir(entry.get("dir", ""))
    if not directory.has_store():
        raise CliError(f"experiment {entry['id']}: its database {directory.database} is missing")
    store = directory.open_store(readonly=True)
    try:
        yield store
    finally:
        store.close()


def _read(entry: dict[str, Any], path: str, stored: Callable[[Any], Any]) -> Any:
    """A running experiment's REST answer at ``path``; for a stopped one, ``stored(store)``:
    the read model that route answers with, on its store opened read-only."""
    if entry["alive"]:
        return rest.get(entry["port"], path)
    with open_store(entry) as store:
        return stored(store)


def trial_jobs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return _read(entry, "/trial-jobs", read_model.trial_jobs)


def export_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return _read(entry, "/export-data", lambda store: list(read_model.export_rows(store)))


def pareto_rows(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Pareto front (export rows plus ``objectives``); None when the experiment has no objectives."""
    if entry["alive"]:
        try:
            return rest.get(entry["port"], "/pareto-front")
        except rest.RestError as exc:
            if exc.status == 409:   # no objectives
                return None
            raise
    with open_store(entry) as store:
        return read_model.pareto_front(store)


def metrics(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return _read(entry, "/metric-data", lambda store: [read_model.metric_json(m) for m in store.metrics()])


def profile(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["alive"]:
        return rest.get(entry["port"], "/experiment")
    with open_store(entry) as store:
        shown = read_model.experiment_profile(store, None)
    shown["status"] = status(entry)["status"]    # a killed manager's store may still say RUNNING
    return shown


def status(entry: dict[str, Any]) -> dict[str, Any]:
    """``{status, errors, warnings}`` of an experiment: the one answer every command gives.

    A running experiment answers for itself (check-status); a viewed one is ``VIEWED``; a
    stopped one reads what its store last recorded (``STOPPED`` if its manager died while
    it ran). The registry's copy of the status is never shown: it can be out of date.
    """
    if entry["alive"]:
        try:
            answer = rest.get(entry["port"], "/check-status", timeout=30)
            return {"status": answer["status"], "errors": answer.get("errors") or [],
                    "warnings": answer.get("warnings") or []}
        except rest.RestError:
            pass    # not answering (busy or just ending): read its store as for a stopped one
    meta: dict[str, Any] = {}
    try:
        with open_store(entry) as store:
            meta = store.all_meta()
    except Exception:  # noqa: BLE001 - a missing or broken database reads as stopped
        pass
    shown = "VIEWED" if entry["alive"] and entry.get("status") == "VIEWED" else read_model.store_status(Path(entry.get("dir", "")))
    return {"status": shown, "errors": meta.get("errors") or [], "warnings": meta.get("warnings") or []}


def times(entry: dict[str, Any], shown_status: str) -> tuple[float | None, float | None, float | None]:
    """When the experiment was created, when it was last resumed (None if never) and when it
    ended (if it has). The web UI's experiments page shows the last resume as its start."""
    try:
        with open_store(entry) as store:
            created = store.first_event_time("EXPERIMENT_CREATED") or store.get_meta("start_time")
            resumed = _last_event_time(store, "EXPERIMENT_RESUMED")
            ended = store.get_meta("end_time")
    except Exception:  # noqa: BLE001 - no store: what the registry remembers
        created, resumed, ended = entry.get("start_time"), None, entry.get("end_time")
    ended_states = EXPERIMENT_ENDED + (ExperimentStatus.VIEWED.value,)
    return created, resumed, (ended if shown_status in ended_states else None)


def _last_event_time(store: Any, kind: str) -> float | None:
    reader = store.reader()
    try:
        return reader.execute("SELECT MAX(timestamp) FROM events WHERE kind = ?", (kind,)).fetchone()[0]
    finally:
        reader.close()


def optimize_mode(entry: dict[str, Any]) -> str:
    """``maximize`` or ``minimize``, as the experiment's manager worked it out (not guessed from classArgs)."""
    if is_live(entry):
        try:
            return rest.get(entry["port"], "/progress")["optimizeMode"]
        except (rest.RestError, KeyError):
            pass
    with open_store(entry) as store:
        return read_model.stored_optimize_mode(store.all_meta())
