"""``nnictl algo``: list the built-in algorithms and register custom ones by name."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..algorithms import _registered
from ..algorithms.registry import builtin_algorithms
from ._errors import CliError
from ._table import format_table


def algo_list(args: argparse.Namespace) -> int:
    rows = [(name, kind, "built-in", path) for kind in ("tuner", "assessor")
            for name, path in builtin_algorithms(kind).items()]
    for kind, entries in _registered.load().items():
        rows += [(name, kind, "registered", entry["className"]) for name, entry in entries.items()]
    print(format_table(["NAME", "TYPE", "SOURCE", "CLASS"], rows))
    return 0


def algo_register(args: argparse.Namespace) -> int:
    import yaml
    path = Path(args.meta)
    if not path.is_file():
        raise CliError(f"meta file {args.meta!r} not found")
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise CliError(f"{path}: expected a mapping with algoType, builtinName and className")
    missing = [k for k in ("algoType", "builtinName", "className") if not meta.get(k)]
    if missing:
        raise CliError(f"{path}: missing {', '.join(missing)} (algoType: tuner|assessor|advisor, "
                       "builtinName: the name to use in configs, className: module.Class)")
    kind, name, class_name = meta["algoType"], str(meta["builtinName"]), str(meta["className"])
    if kind not in _registered.KINDS:
        raise CliError(f"{path}: algoType must be one of {', '.join(_registered.KINDS)}, got {kind!r}")
    builtins = {n.lower() for k in ("tuner", "assessor") for n in builtin_algorithms(k)}
    if name.lower() in builtins:
        raise CliError(f"{name!r} is the name of a built-in algorithm; choose another builtinName")
    module_name, _, attr = class_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
        raise CliError(f"cannot import {module_name!r} for className {class_name!r}: {exc} "
                       "(install the package that holds it, e.g. with pip install -e .)") from None
    if not hasattr(module, attr):
        raise CliError(f"module {module_name!r} has no class {attr!r}")
    data = _registered.load()
    for k in _registered.KINDS:
        if any(n.lower() == name.lower() for n in data[k]):
            raise CliError(f"an algorithm named {name!r} is already registered; unregister it first")
    entry = {"className": class_name}
    validator = meta.get("classArgsValidator")
    if validator:
        v_module, _, v_attr = str(validator).rpartition(".")
        try:
            found = hasattr(importlib.import_module(v_module), v_attr)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
            raise CliError(f"cannot import {v_module!r} for classArgsValidator {validator!r}: {exc}") from None
        if not found:
            raise CliError(f"module {v_module!r} has no class {v_attr!r} (classArgsValidator)")
        entry["classArgsValidator"] = str(validator)
    data[kind][name] = entry
    _registered.save(data)
    print(f"Registered {kind} {name!r} ({class_name}).")
    return 0


def algo_unregister(args: argparse.Namespace) -> int:
    data = _registered.load()
    for kind in _registered.KINDS:
        for name in list(data[kind]):
            if name.lower() == args.name.lower():
                del data[kind][name]
                _registered.save(data)
                print(f"Unregistered {kind} {name!r}.")
                return 0
    raise CliError(f"no registered algorithm named {args.name!r} (built-in ones cannot be unregistered)")
