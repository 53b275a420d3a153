"""A parameter set as flat columns, and back: what a CSV export writes and a CSV import reads.

A nested choice (``{"model": {"_name": "svm", "C": 1.0}}``) becomes one column per level:
``model`` holds the chosen branch's ``_name`` and ``model/C`` its own parameters, deeper
nesting continuing the path (``model/kernel/degree``). Other values stay as they are.

>>> flatten_parameter({"model": {"_name": "svm", "C": 1.0}, "lr": 0.1})
{'model': 'svm', 'model/C': 1.0, 'lr': 0.1}
>>> unflatten_parameter({'model': 'svm', 'model/C': 1.0, 'lr': 0.1})
{'model': {'_name': 'svm', 'C': 1.0}, 'lr': 0.1}
"""

from __future__ import annotations

from typing import Any

__all__ = ["SEPARATOR", "flatten_parameter", "unflatten_parameter"]

SEPARATOR = "/"


def flatten_parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    """One key per leaf; a nested choice's ``_name`` under its own key (see the module doc)."""
    flat: dict[str, Any] = {}
    for key, value in parameter.items():
        _flatten_into(flat, key, value)
    return flat


def _flatten_into(flat: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict) and "_name" in value:
        flat[key] = value["_name"]
        for sub, item in value.items():
            if sub != "_name":
                _flatten_into(flat, f"{key}{SEPARATOR}{sub}", item)
    else:
        flat[key] = value


def unflatten_parameter(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_parameter`: ``a/b`` goes under ``a``'s branch when a
    column ``a`` holds that branch's name; a key with a ``/`` but no such column stays as it is."""
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    # Shortest paths first, so a branch's own column is placed before the ones under it.
    for key in sorted(flat, key=lambda k: k.count(SEPARATOR)):
        head, sep, rest = key.partition(SEPARATOR)
        if sep and head in flat and not isinstance(flat[head], (dict, list)):
            nested.setdefault(head, {})[rest] = flat[key]
        else:
            out[key] = flat[key]
    for head, subs in nested.items():
        out[head] = {"_name": out[head], **unflatten_parameter(subs)}
    return {k: out[k] for k in flat if k in out}     # the columns' order
