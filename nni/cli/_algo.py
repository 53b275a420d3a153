"""``nnictl algo``: list the built-in algorithms and register custom ones by name."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from ..algorithms import _registered
from ..algorithms.registry import builtin_algorithms
from ._errors import CliError
from ._table import format_table


def algo_list(args: argparse.Namespace) -> int:
    rows = [(name, kind, "built-in", path) for kind in ("tuner", "assessor")
            for name, path in builtin_algorithms(kind).items()]
    for kind, entries in _registered.load().items():
        rows += [(name, kind, "registered", entry["className"]
                  + (f" (in {entry['codeDirectory']})" if entry.get("codeDirectory") else ""))
                 for name, entry in entries.items()]
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
    code_directory = _import_registered(path, meta, class_name)
    data = _registered.load()
    for k in _registered.KINDS:
        if any(n.lower() == name.lower() for n in data[k]):
            raise CliError(f"an algorithm named {name!r} is already registered; unregister it first")
    entry = {"className": class_name}
    if code_directory is not None:
        entry["codeDirectory"] = code_directory
    validator = meta.get("classArgsValidator")
    if validator:
        v_module, _, v_attr = str(validator).rpartition(".")
        if code_directory:
            sys.path.insert(0, code_directory)
        try:
            found = hasattr(importlib.import_module(v_module), v_attr)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
            raise CliError(f"cannot import {v_module!r} for classArgsValidator {validator!r}: {exc}") from None
        finally:
            if code_directory:
                sys.path.remove(code_directory)
        if not found:
            raise CliError(f"module {v_module!r} has no class {v_attr!r} (classArgsValidator)")
        entry["classArgsValidator"] = str(validator)
    data[kind][name] = entry
    _registered.save(data)
    where = f" from {code_directory}" if code_directory else ""
    print(f"Registered {kind} {name!r} ({class_name}{where}).")
    return 0


def _import_registered(meta_path: Path, meta: dict, class_name: str) -> str | None:
    """Check that ``className`` imports; return the code directory to record, if one is needed.

    As in NNI, a module on ``sys.path`` (installed, or on ``PYTHONPATH``) is used as it is,
    and nothing else is recorded. Otherwise (nni-ng) the meta's ``codeDirectory`` (relative
    to the meta file), by default the meta file's own directory, is tried: a single-file
    ``my_tuner.py`` next to ``meta.yml`` registers as it is, and experiments find it there.
    """
    module_name, _, attr = class_name.rpartition(".")
    if not module_name:
        raise CliError(f"{meta_path}: className must look like 'module.ClassName', got {class_name!r}")
    given = meta.get("codeDirectory")
    directory = (meta_path.parent / str(given)).resolve() if given else meta_path.parent.resolve()
    if given and not directory.is_dir():
        raise CliError(f"{meta_path}: codeDirectory {str(directory)!r} is not a directory")
    recorded: str | None = None
    module = None if given else _import(module_name, class_name)    # NNI's way: as it is
    if module is None:
        sys.path.insert(0, str(directory))
        try:
            module = _import(module_name, class_name)
        finally:
            sys.path.remove(str(directory))
        if module is None:
            raise CliError(
                f"cannot import {module_name!r} for className {class_name!r}: not on sys.path and not in "
                f"{str(directory)!r} (as {module_name.replace('.', '/')}.py). Put the file next to the meta file, "
                f"or name its folder in the meta's codeDirectory, or put its folder on PYTHONPATH (for nnictl "
                f"and for the experiment), or install its package (pip install -e .)")
        recorded = str(directory)
    if not hasattr(module, attr):
        raise CliError(f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no class {attr!r}")
    return recorded


def _import(module_name: str, class_name: str) -> Any:
    """The module, or None when it is not found (an error inside it is the user's to see)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or module_name == exc.name or module_name.startswith(exc.name + "."):
            return None
        raise CliError(f"cannot import {module_name!r} for className {class_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
        raise CliError(f"cannot import {module_name!r} for className {class_name!r}: "
                       f"{type(exc).__name__}: {exc}") from None


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
