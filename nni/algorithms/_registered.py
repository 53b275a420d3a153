"""Algorithms users registered with ``nnictl algo register``, usable by name in configs.

Kept in ``$NNI_NG_HOME/algorithms.json`` (default ``~/.nni-ng``):
``{"tuner": {"Name": {"className": "module.Class", "classArgsValidator": "module.Validator",
"codeDirectory": "/abs/folder"}}, ...}`` (``codeDirectory`` only when the module was found
beside the meta file or in its ``codeDirectory``, not on ``sys.path``)
(``classArgsValidator`` optional: NNI's meta field, a :class:`nni.utils.ClassArgsValidator`
subclass whose ``validate_class_args(**classArgs)`` runs before the algorithm is built).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

KINDS = ("tuner", "assessor", "advisor")


def registry_file() -> Path:
    return Path(os.environ.get("NNI_NG_HOME", "~/.nni-ng")).expanduser() / "algorithms.json"


def load() -> dict[str, dict[str, dict[str, Any]]]:
    try:
        data = json.loads(registry_file().read_text())
    except (OSError, ValueError):
        data = {}
    return {kind: dict(data.get(kind, {})) for kind in KINDS}


def save(data: dict[str, dict[str, dict[str, Any]]]) -> None:
    path = registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def lookup(kind: str, name: str) -> str | None:
    """The class path registered under ``name`` (case-insensitive) for ``kind``; advisors count as tuners."""
    data = load()
    kinds = ("tuner", "advisor") if kind == "tuner" else (kind,)
    for k in kinds:
        for registered, entry in data[k].items():
            if registered.lower() == name.lower():
                return entry["className"]
    return None


def lookup_entry(kind: str, name: str) -> dict[str, Any] | None:
    """The whole registered entry (className, classArgsValidator) under ``name``, or None."""
    data = load()
    kinds = ("tuner", "advisor") if kind == "tuner" else (kind,)
    for k in kinds:
        for registered, entry in data[k].items():
            if registered.lower() == name.lower():
                return dict(entry)
    return None
