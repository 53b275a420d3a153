"""The parameter record: one parameter set given to a trial, in one place.

NNI's wire record ``{"parameter_id", "parameter_source", "parameters", "parameter_index"}``
is what ``POST /api/v1/trial/{id}/parameter`` answers a trial, what each string of a trial
job's ``hyperParameters`` holds and what the Python API's ``TrialHyperParameters`` reads.
:class:`ParameterRecord` builds it from a store row (whose column is ``source``) and writes
it for the wire, so the field names are spelled once.

Importable anywhere (no aiohttp, no numpy). The trial process itself keeps the plain dict
it received: ``dataclasses`` would cost every trial ~17 ms of imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: ``parameter_source`` of a set the tuner generated for this trial.
SOURCE_ALGORITHM = "algorithm"
#: ``parameter_source`` of a set re-run after a resume (the new tuner did not generate it).
SOURCE_RESUMED = "resumed"


@dataclass
class ParameterRecord:
    """One parameter set of a trial: its id, where it came from, the values and its phase.

    ``parameter_index`` is the phase within the trial job (always 0 unless multi-phase).
    """

    parameter_id: int | None
    parameter_source: str = SOURCE_ALGORITHM
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_index: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ParameterRecord:
        """The record of a row of the store's ``parameters`` table (``parameters`` already decoded)."""
        return cls(row["parameter_id"], row["source"], row["parameters"], row["parameter_index"])

    @classmethod
    def from_wire(cls, record: Mapping[str, Any]) -> ParameterRecord:
        """The record of a wire dict; keys beyond the four (e.g. nni-ng's ``status``) are ignored."""
        return cls(record["parameter_id"], record.get("parameter_source", SOURCE_ALGORITHM),
                   record.get("parameters") or {}, record.get("parameter_index", 0))

    def to_wire(self) -> dict[str, Any]:
        """NNI's wire dict, keys in NNI's order (the JSON trials and REST clients see)."""
        return {"parameter_id": self.parameter_id, "parameter_source": self.parameter_source,
                "parameters": self.parameters, "parameter_index": self.parameter_index}


__all__ = ["ParameterRecord", "SOURCE_ALGORITHM", "SOURCE_RESUMED"]
