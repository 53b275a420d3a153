"""Which experiments exist on this machine, where they live and which port serves them.

One small JSON file per experiment under ``$NNI_NG_HOME/experiments`` (default
``~/.nni-ng``), so managers never contend for a shared file. A manager that died
without cleaning up is shown as stopped: an entry names its manager by pid *and* start time
(``pid_start``), so a process that got the number later is never taken for it (nor signalled,
nor sent the experiment's secret).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..runtime.process import is_same_process, process_start
from ..status import EXPERIMENT_ENDED, ExperimentStatus


def registry_dir() -> Path:
    return Path(os.environ.get("NNI_NG_HOME", "~/.nni-ng")).expanduser() / "experiments"


def update_entry(experiment_id: str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the experiment's entry (written atomically).

    A ``pid`` is stored with its start time (``pid_start``), read now, while it is known to be
    the manager (it is the caller itself, or its child).
    """
    if "pid" in fields:
        fields["pid_start"] = process_start(fields["pid"])
    from .secret import private_dir, write_private
    directory = private_dir(registry_dir())   # owner-only, like the experiment directory
    path = directory / f"{experiment_id}.json"
    entry = _read(path) or {"id": experiment_id}
    entry.update(fields)
    write_private(path, json.dumps(entry, indent=1))
    return entry


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manager_alive(entry: dict[str, Any]) -> bool:
    """Whether the entry's manager still runs: its pid, with the start time it had."""
    return is_same_process(entry.get("pid"), entry.get("pid_start"))


def _with_liveness(entry: dict[str, Any]) -> dict[str, Any]:
    alive = manager_alive(entry)
    entry = dict(entry, alive=alive)
    if not alive and entry.get("status") not in EXPERIMENT_ENDED + (ExperimentStatus.VIEWED.value,):
        entry["status"] = "STOPPED"
    return entry


def get_entry(experiment_id: str) -> dict[str, Any] | None:
    entry = _read(registry_dir() / f"{experiment_id}.json")
    return _with_liveness(entry) if entry else None


def list_entries() -> list[dict[str, Any]]:
    directory = registry_dir()
    if not directory.is_dir():
        return []
    entries = [_read(p) for p in sorted(directory.glob("*.json"))]
    return sorted((_with_liveness(e) for e in entries if e), key=lambda e: e.get("start_time") or 0)


def remove_entry(experiment_id: str) -> None:
    (registry_dir() / f"{experiment_id}.json").unlink(missing_ok=True)
