"""Built-in algorithm names and construction of tuners/assessors from config.

Built-in names match case-insensitively.  Custom algorithms are given by
``class_name`` ('module.Class'), with ``code_directory`` put first on ``sys.path``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from typing import Any

from ..errors import AlgorithmError   # raised here when a tuner/assessor cannot be found or built

__all__ = ["AlgorithmError", "create_algorithm", "builtin_algorithms"]


_KINDS = ("tuner", "assessor")

# name -> (class path, fixed class args); NNI's names and class paths, so its configs run
_HPO = "nni.algorithms.hpo."
_BUILTINS: dict[str, dict[str, tuple[str, dict]]] = {
    "tuner": {
        "TPE": (_HPO + "tpe_tuner.TpeTuner", {}),
        "Random": (_HPO + "random_tuner.RandomTuner", {}),
        "Anneal": (_HPO + "hyperopt_tuner.HyperoptTuner", {"algorithm_name": "anneal"}),
        "TPE_legacy": (_HPO + "hyperopt_tuner.HyperoptTuner", {"algorithm_name": "tpe"}),
        "GridSearch": (_HPO + "gridsearch_tuner.GridSearchTuner", {}),
        "Evolution": (_HPO + "evolution_tuner.EvolutionTuner", {}),
        "RegularizedEvolutionTuner": (_HPO + "regularized_evolution_tuner.RegularizedEvolutionTuner", {}),
        "RegularizedEvolution": (_HPO + "regularized_evolution_tuner.RegularizedEvolutionTuner", {}),
        "Batch": (_HPO + "batch_tuner.BatchTuner", {}),
        "BatchTuner": (_HPO + "batch_tuner.BatchTuner", {}),
        "Hyperband": (_HPO + "hyperband_advisor.Hyperband", {}),
        "BOHB": (_HPO + "bohb_advisor.BOHB", {}),
        "PBT": (_HPO + "pbt_tuner.PBTTuner", {}),
        "PBTTuner": (_HPO + "pbt_tuner.PBTTuner", {}),
        "GP": (_HPO + "gp_tuner.GPTuner", {}),
        "GPTuner": (_HPO + "gp_tuner.GPTuner", {}),
        "Metis": (_HPO + "metis_tuner.MetisTuner", {}),
        "MetisTuner": (_HPO + "metis_tuner.MetisTuner", {}),
        "SMAC": (_HPO + "smac_tuner.SMACTuner", {}),
        "DNGO": (_HPO + "dngo_tuner.DNGOTuner", {}),
        "DNGOTuner": (_HPO + "dngo_tuner.DNGOTuner", {}),
        # multi-objective (nni-ng extension): need the config's `objectives`
        "MOTPE": (_HPO + "motpe_tuner.MOTPETuner", {}),
        "NSGA2": (_HPO + "nsga2_tuner.NSGA2Tuner", {}),
    },
    "assessor": {
        "Medianstop": (_HPO + "medianstop_assessor.MedianstopAssessor", {}),
        "Curvefitting": (_HPO + "curvefitting_assessor.CurvefittingAssessor", {}),
        "ASHA": (_HPO + "asha_assessor.AshaAssessor", {}),
    },
}

# NNI built-ins that nni-ng does not provide (name -> aliases NNI accepted)
_PLANNED: dict[str, list[str]] = {
    "tuner": [],
    "assessor": [],
}

_NAS_ONLY = ["PPOTuner", "PPO", "NetworkMorphism", "NetworkMorphismTuner"]


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise AlgorithmError(f"algorithm kind must be 'tuner' or 'assessor', got {kind!r}")


def builtin_algorithms(kind: str) -> dict[str, str]:
    """Config name -> 'module.path.ClassName' of the built-in algorithms of ``kind``."""
    _check_kind(kind)
    return {name: path for name, (path, _) in _BUILTINS[kind].items()}


def _lookup(table: dict[str, Any] | list[str], name: str) -> str | None:
    for key in table:
        if key.lower() == name.lower():
            return key
    return None


def _resolve_builtin(kind: str, name: str) -> tuple[str, dict]:
    key = _lookup(_BUILTINS[kind], name)
    if key is not None:
        return _BUILTINS[kind][key]
    from ._registered import load, lookup
    registered = lookup(kind, name)
    if registered is not None:
        return registered, {}
    available = ", ".join(_BUILTINS[kind])
    # Names registered with `nnictl algo register` are listed and suggested like the built-ins.
    own = [n for k in (("tuner", "advisor") if kind == "tuner" else (kind,)) for n in load()[k]]
    if own:
        available += f"; registered {kind}s (nnictl algo register): {', '.join(own)}"
    if _lookup(_PLANNED[kind], name) is not None:
        raise AlgorithmError(f"built-in {kind} {name!r} is not provided by nni-ng (use GP or TPE for a model-based search); "
                             f"available built-in {kind}s: {available}")
    if _lookup(_NAS_ONLY, name) is not None:
        raise AlgorithmError(f"{name!r} is a NAS tuner, which is out of scope for nni-ng (hyperparameter "
                             f"optimization only); available built-in tuners: {available}")
    other = "assessor" if kind == "tuner" else "tuner"
    if _lookup(_BUILTINS[other], name) is not None:
        raise AlgorithmError(f"{name!r} is a built-in {other}, not a {kind}; available built-in {kind}s: {available}")
    candidates = list(_BUILTINS[kind]) + _PLANNED[kind] + own
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    hint = f" Did you mean {lowered[close[0]]!r}?" if close else ""
    raise AlgorithmError(f"unknown built-in {kind} {name!r}.{hint} Available built-in {kind}s: {available}")


def _import_class(class_name: str, code_directory: str | None, kind: str) -> type:
    if not isinstance(class_name, str) or "." not in class_name.strip("."):
        raise AlgorithmError(f"{kind} className must look like 'module.ClassName', got {class_name!r}")
    module_name, _, attr = class_name.rpartition(".")
    searched = []
    if code_directory is not None:
        code_directory = os.path.abspath(os.fspath(code_directory))
        if not os.path.isdir(code_directory):
            raise AlgorithmError(f"{kind} codeDirectory {code_directory!r} does not exist or is not a directory")
        if code_directory in sys.path:
            sys.path.remove(code_directory)
        sys.path.insert(0, code_directory)
        searched.append(code_directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) or exc.name == module_name:
            where = (f"in codeDirectory {searched[0]!r} (as {module_name.replace('.', '/')}.py) and on sys.path"
                     if searched else "on sys.path (no codeDirectory given)")
            raise AlgorithmError(f"cannot import {kind} module {module_name!r}: not found {where}") from exc
        raise AlgorithmError(f"error importing {kind} module {module_name!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
        raise AlgorithmError(f"error importing {kind} module {module_name!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        public = sorted(n for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_"))
        raise AlgorithmError(f"{kind} module {module_name!r} ({getattr(module, '__file__', '?')}) has no class "
                             f"{attr!r}; classes defined there: {', '.join(public) or 'none'}")
    cls = getattr(module, attr)
    if not inspect.isclass(cls):
        raise AlgorithmError(f"{kind} {class_name!r} is not a class (got {type(cls).__name__})")
    return cls


def _construct(cls: type, args: dict, kind: str, label: str) -> object:
    try:
        signature = f"{cls.__name__}{inspect.signature(cls)}"
    except (TypeError, ValueError):
        signature = cls.__name__ + "(...)"
    try:
        return cls(**args)
    except TypeError as exc:
        raise AlgorithmError(f"bad classArgs for {kind} {label}: {exc}; constructor signature: {signature}") from exc
    except ValueError as exc:
        raise AlgorithmError(f"bad classArgs for {kind} {label}: {exc}") from exc


def _run_registered_validator(kind: str, name: str, class_args: dict) -> None:
    """Run the ``classArgsValidator`` a registered algorithm's meta named (as ``nnictl`` does in NNI)."""
    if _lookup(_BUILTINS[kind], name) is not None:
        return
    from ._registered import lookup_entry
    entry = lookup_entry(kind, name) or {}
    validator_path = entry.get("classArgsValidator")
    if not validator_path:
        return
    validator = _import_class(validator_path, entry.get("codeDirectory"), f"{kind} classArgsValidator")()
    try:
        validator.validate_class_args(**class_args)
    except Exception as exc:  # noqa: BLE001 - schema errors, ValueError, AssertionError...
        raise AlgorithmError(f"bad classArgs for {kind} {name!r} (checked by {validator_path}): {exc}") from exc


def _registered_code_directory(kind: str, name: str) -> str | None:
    from ._registered import lookup_entry
    return (lookup_entry(kind, name) or {}).get("codeDirectory")


def create_algorithm(kind: str, *, name: str | None = None, class_name: str | None = None,
                     code_directory: str | None = None, class_args: dict | None = None) -> object:
    """Instantiate a built-in (``name``) or custom (``class_name``) tuner or assessor."""
    _check_kind(kind)
    if class_args is None:
        class_args = {}
    if not isinstance(class_args, dict):
        raise AlgorithmError(f"{kind} classArgs must be a mapping, got {type(class_args).__name__}")
    if (name is None) == (class_name is None):
        raise AlgorithmError(f"{kind}: give exactly one of name (built-in) or className (custom)")
    if name is not None:
        if not isinstance(name, str):
            raise AlgorithmError(f"{kind} name must be a string, got {name!r}")
        path, fixed = _resolve_builtin(kind, name)
        # A registered single-file module is imported from the folder `nnictl algo register` found it in.
        code_dir = None if _lookup(_BUILTINS[kind], name) is not None else _registered_code_directory(kind, name)
        _run_registered_validator(kind, name, class_args)
        clash = sorted(set(fixed) & set(class_args))
        if clash:
            raise AlgorithmError(f"classArgs {', '.join(map(repr, clash))} cannot be set for built-in {kind} "
                                 f"{name!r} (fixed to {fixed})")
        cls = _import_class(path, code_dir, kind)
        return _construct(cls, {**fixed, **class_args}, kind, repr(name))
    cls = _import_class(class_name, code_directory, kind)
    return _construct(cls, dict(class_args), kind, repr(class_name))
