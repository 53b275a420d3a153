"""NNI's classic NAS search-space types (private; numpy-free).

NNI 1.x/2.x tuners such as RegularizedEvolution took architecture spaces of these forms::

    {"conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
     "skip": {"_type": "input_choice", "_value": {"candidates": ["in1", "in2", "in3"], "n_chosen": 2}},
     "block": {"_type": "mutable_layer", "_value": {
         "layer_1": {"layer_choice": ["conv(3)", "conv(5)"], "optional_inputs": ["x", "y"],
                     "optional_input_size": [0, 1]}}}}

and gave trials, in NNI's parameter format::

    {"conv": {"_value": "conv5x5", "_idx": 1},
     "skip": {"_value": ["in3", "in1"], "_idx": [2, 0]},
     "block": {"layer_1": {"chosen_layer": "conv(5)", "chosen_inputs": ["y"]}}}

Here each NAS parameter becomes ordinary ``choice`` dimensions (an index per layer
choice, per chosen input — drawn with replacement, as NNI's tuner does — and per input
subset of a mutable layer), so the built-in machinery (mutation, de-duplication,
``import_data``) works unchanged; :func:`to_nni` and :func:`from_nni` translate.
"""

from __future__ import annotations

import itertools
from typing import Any

NAS_TYPES = ("layer_choice", "input_choice", "mutable_layer")

__all__ = ["NAS_TYPES", "has_nas", "validate_nas_param", "internal_space", "to_nni", "from_nni"]

_SEP = "\x1f"   # joins a NAS parameter's name with its internal part (never in user names)
_MAX_SUBSETS = 10_000


def has_nas(space: Any) -> bool:
    """Whether a search space uses one of the classic NAS types."""
    return isinstance(space, dict) and any(isinstance(s, dict) and s.get("_type") in NAS_TYPES
                                           for s in space.values())


def _input_sizes(spec: dict, n: int, path: str) -> list[int]:
    size = spec.get("optional_input_size", 1 if n else 0)
    if isinstance(size, bool):
        raise ValueError(f"{path}: optional_input_size must be an int or [min, max], got {size!r}")
    if isinstance(size, int):
        sizes = [size]
    elif isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in size):
        sizes = list(range(size[0], size[1] + 1))
    else:
        raise ValueError(f"{path}: optional_input_size must be an int or [min, max], got {size!r}")
    if not sizes or min(sizes) < 0 or max(sizes) > n:
        raise ValueError(f"{path}: optional_input_size {size!r} must lie within 0..{n} (the optional inputs)")
    return sizes


def _subsets(n: int, sizes: list[int]) -> list[tuple[int, ...]]:
    out = [c for k in sizes for c in itertools.combinations(range(n), k)]
    if len(out) > _MAX_SUBSETS:
        raise ValueError(f"{len(out)} input subsets are too many (at most {_MAX_SUBSETS})")
    return out


def validate_nas_param(name: str, spec: dict) -> None:
    """Raise ValueError (naming the parameter) unless ``spec`` is a valid classic NAS spec."""
    type_, value = spec.get("_type"), spec.get("_value")
    path = f"search space parameter {name!r}"
    if type_ == "layer_choice":
        if not isinstance(value, list) or not value:
            raise ValueError(f"{path}: 'layer_choice' needs a non-empty list of layers, got {value!r}")
    elif type_ == "input_choice":
        if not isinstance(value, dict) or not isinstance(value.get("candidates"), list) or not value["candidates"]:
            raise ValueError(f"{path}: 'input_choice' needs {{\"candidates\": [...], \"n_chosen\": k}}, got {value!r}")
        k = value.get("n_chosen", 1)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"{path}: 'input_choice' n_chosen must be an int >= 0, got {k!r}")
    elif type_ == "mutable_layer":
        if not isinstance(value, dict) or not value:
            raise ValueError(f"{path}: 'mutable_layer' needs a mapping of layer names to layer specs, got {value!r}")
        for layer, layer_spec in value.items():
            lpath = f"{path} layer {layer!r}"
            if not isinstance(layer_spec, dict):
                raise ValueError(f"{lpath}: expected a mapping with layer_choice, got {layer_spec!r}")
            choices = layer_spec.get("layer_choice")
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"{lpath}: 'layer_choice' must be a non-empty list, got {choices!r}")
            inputs = layer_spec.get("optional_inputs", [])
            if not isinstance(inputs, list):
                raise ValueError(f"{lpath}: 'optional_inputs' must be a list, got {inputs!r}")
            _subsets(len(inputs), _input_sizes(layer_spec, len(inputs), lpath))
    else:
        raise ValueError(f"{path}: {type_!r} is not a classic NAS type ({', '.join(NAS_TYPES)})")


def internal_space(space: dict) -> dict:
    """The space with every NAS parameter replaced by ``choice`` dimensions of indices."""
    out: dict = {}
    for name, spec in space.items():
        type_, value = spec["_type"], spec["_value"]
        if type_ == "layer_choice":
            out[name] = {"_type": "choice", "_value": list(range(len(value)))}
        elif type_ == "input_choice":
            for j in range(value.get("n_chosen", 1)):
                out[f"{name}{_SEP}{j}"] = {"_type": "choice", "_value": list(range(len(value["candidates"])))}
        elif type_ == "mutable_layer":
            for layer, layer_spec in value.items():
                out[f"{name}{_SEP}{layer}{_SEP}layer"] = {"_type": "choice",
                                                         "_value": list(range(len(layer_spec["layer_choice"])))}
                inputs = layer_spec.get("optional_inputs", [])
                subsets = _subsets(len(inputs), _input_sizes(layer_spec, len(inputs), name))
                out[f"{name}{_SEP}{layer}{_SEP}inputs"] = {"_type": "choice", "_value": list(range(len(subsets)))}
        else:
            out[name] = spec
    return out


def to_nni(space: dict, params: dict) -> dict:
    """Internal parameters -> NNI's NAS parameter format (other parameters unchanged)."""
    out: dict = {}
    for name, spec in space.items():
        type_, value = spec["_type"], spec["_value"]
        if type_ == "layer_choice":
            idx = params[name]
            out[name] = {"_value": value[idx], "_idx": idx}
        elif type_ == "input_choice":
            idxs = [params[f"{name}{_SEP}{j}"] for j in range(value.get("n_chosen", 1))]
            out[name] = {"_value": [value["candidates"][i] for i in idxs], "_idx": idxs}
        elif type_ == "mutable_layer":
            block = {}
            for layer, layer_spec in value.items():
                inputs = layer_spec.get("optional_inputs", [])
                subsets = _subsets(len(inputs), _input_sizes(layer_spec, len(inputs), name))
                chosen = subsets[params[f"{name}{_SEP}{layer}{_SEP}inputs"]]
                block[layer] = {"chosen_layer": layer_spec["layer_choice"][params[f"{name}{_SEP}{layer}{_SEP}layer"]],
                                "chosen_inputs": [inputs[i] for i in chosen]}
            out[name] = block
        else:
            out[name] = params[name]
    return out


def from_nni(space: dict, params: dict) -> dict:
    """NNI-format parameters (e.g. from ``import_data``) -> internal ones. Raises ValueError."""
    out: dict = {}
    try:
        for name, spec in space.items():
            type_, value = spec["_type"], spec["_value"]
            given = params[name]
            if type_ == "layer_choice":
                out[name] = given["_idx"] if "_idx" in given else value.index(given["_value"])
            elif type_ == "input_choice":
                idxs = given.get("_idx") or [value["candidates"].index(v) for v in given["_value"]]
                for j, i in enumerate(idxs):
                    out[f"{name}{_SEP}{j}"] = i
            elif type_ == "mutable_layer":
                for layer, layer_spec in value.items():
                    inputs = layer_spec.get("optional_inputs", [])
                    subsets = _subsets(len(inputs), _input_sizes(layer_spec, len(inputs), name))
                    chosen = tuple(sorted(inputs.index(v) for v in given[layer]["chosen_inputs"]))
                    out[f"{name}{_SEP}{layer}{_SEP}layer"] = layer_spec["layer_choice"].index(
                        given[layer]["chosen_layer"])
                    out[f"{name}{_SEP}{layer}{_SEP}inputs"] = subsets.index(chosen)
            else:
                out[name] = given
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"parameters do not fit the NAS search space: {exc!r}") from None
    return out
