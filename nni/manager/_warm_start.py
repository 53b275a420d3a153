"""Warm start (private): the finished results of earlier experiments, fitted to this one's space.

``warmStart: {experiments: [ID, ...]}`` (docs/warm_start.md). Before the first trial the
manager reads each named experiment's store read-only (found through the registry, as
``nnictl`` finds it), takes the final results of its trials, fits them to the current search
space and gives them to the tuner through the one import path (``ExperimentManager.import_data``:
the tuner's ``import_data``, the ``imported`` table, with the source experiment recorded per
batch). Imported results are not trials: they never count against ``maxTrialNumber``.

Fitting a result to the current space (``nni.search_space._flat.encode``, the check the
tuners' ``import_data`` makes):

* a parameter no longer in the space is dropped from the result (the rest of it is kept);
* a value outside the space (a choice removed, a range narrowed) leaves the result out;
* a parameter added since is left for the tuner to fill: the result goes to a tuner that takes
  partial results (``takes_partial_results``, built-in TPE), and is left out for the others.

Nothing here needs aiohttp or numpy: ``nnictl experiment status`` reads the summary too.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..experiment.config import ConfigError
from .experiment_dir import ExperimentDir

_logger = logging.getLogger("nni.manager")

#: Where the summary is kept in the store's ``meta`` (read by ``nnictl`` and the web UI).
META_KEY = "warm_start"
#: How many known ids an unknown-id error lists.
_LISTED_IDS = 20


class WarmStartError(ConfigError):
    """A warm start that cannot be done: an unknown experiment, a store that cannot be read.
    The message starts with the config field (``warmStart.experiments[0]: ...``)."""


@dataclass
class SourceSummary:
    """What one source experiment gave: counted, so the user sees what was taken and left."""

    experiment: str
    finished: int = 0            # final results of its trials
    taken: int = 0               # given to the tuner (complete and partial ones)
    partial: int = 0             # of those: lacking parameters added since (the tuner fills them)
    out_of_space: int = 0        # left out: a value the current space does not have
    missing_parameters: int = 0  # left out: lacking added parameters this tuner cannot fill
    removed_parameters: list[str] = field(default_factory=list)   # dropped from the results
    new_parameters: list[str] = field(default_factory=list)       # in the space, not in the results

    @property
    def left_out(self) -> int:
        return self.out_of_space + self.missing_parameters

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"experiment": data["experiment"], "finished": self.finished, "taken": self.taken,
                "partial": self.partial, "leftOut": self.left_out, "outOfSpace": self.out_of_space,
                "missingParameters": self.missing_parameters,
                "removedParameters": self.removed_parameters, "newParameters": self.new_parameters}

    def line(self) -> str:
        """One line for the log and ``nnictl experiment status``."""
        return summary_line(self.to_json())


@dataclass
class SourceResults:
    summary: SourceSummary
    rows: list[dict[str, Any]]   # {"parameter", "value"}, fitted to the current space


# -- the config field ---------------------------------------------------------------------------
def experiment_ids(warm_start: Any) -> list[str]:
    """The source ids of a canonical ``warmStart`` value (None: no warm start)."""
    if not warm_start:
        return []
    return list(warm_start.get("experiments") or [])


# -- finding the sources ------------------------------------------------------------------------
def resolve_sources(ids: list[str], *, own_id: str | None = None) -> list[tuple[str, ExperimentDir]]:
    """Each id's experiment directory, from the registry; WarmStartError naming the field for an
    unknown id (with the known ones, closest first) or for the experiment itself."""
    from . import registry
    found: list[tuple[str, ExperimentDir]] = []
    for i, experiment_id in enumerate(ids):
        where = f"warmStart.experiments[{i}]"
        if experiment_id == own_id:
            raise WarmStartError(f"{where}: {experiment_id!r} is this experiment; name earlier experiments")
        entry = registry.get_entry(experiment_id)
        directory = ExperimentDir(entry["dir"]) if entry and entry.get("dir") else None
        if directory is None or not directory.has_store():
            raise WarmStartError(f"{where}: {_unknown(experiment_id, entry, registry.list_entries(), own_id)}")
        found.append((experiment_id, directory))
    return found


def _unknown(experiment_id: str, entry: dict[str, Any] | None, entries: list[dict[str, Any]],
             own_id: str | None) -> str:
    if entry is not None:
        return (f"experiment {experiment_id!r} has no results to read (no database at "
                f"{ExperimentDir(entry.get('dir') or '.').database}; was it deleted?)")
    known = [e["id"] for e in entries if e.get("id") and e.get("id") != own_id]
    close = difflib.get_close_matches(experiment_id, known, n=3, cutoff=0.5)
    message = f"no experiment {experiment_id!r} on this machine (see 'nnictl experiment list')"
    if close:
        message += f"; did you mean {' or '.join(map(repr, close))}?"
    if known:
        shown = known[-_LISTED_IDS:]
        more = f" (the last {_LISTED_IDS} of {len(known)})" if len(known) > len(shown) else ""
        message += f"{' ' if close else '; '}Known experiments{more}: {', '.join(shown)}"
    else:
        message += "; there are no experiments on this machine yet"
    return message


# -- reading and fitting ------------------------------------------------------------------------
def finished_results(directory: ExperimentDir, objectives: Any = None) -> list[dict[str, Any]]:
    """The final results of the experiment's trials as ``import_data`` takes them, oldest first.

    Read-only (the source may even be running: its store is in WAL mode). Values follow the
    rule a resume uses: finite scalar results; with ``objectives`` the dict each reported,
    checked against them (``default`` filled in). Its own imported results are not included:
    a chain of warm starts does not count a result twice.
    """
    from ._objectives import check_final
    from ._trials import finite_metric
    store = directory.open_store(readonly=True)
    try:
        parameters: dict[tuple[str, int], Any] = {}
        for trial_id, parameter_id, _source, text, _index in store.parameter_rows():
            parameters[trial_id, parameter_id] = text
        rows = []
        for trial_id, parameter_id, value_text in store.final_values():
            text = parameters.get((trial_id, parameter_id))
            if text is None:
                continue
            value = json.loads(value_text)
            if objectives:
                value, _why = check_final(value, objectives)
                if value is None:
                    continue
            elif not finite_metric(value):
                continue
            rows.append({"parameter": json.loads(text), "value": value})
        return rows
    finally:
        store.close()


def fit_to_space(experiment_id: str, rows: list[dict[str, Any]], space: dict[str, Any], *,
                 takes_partial: bool) -> SourceResults:
    """``rows`` fitted to ``space`` (see the module's docstring), with the counts of what was taken."""
    from ..search_space import validate_search_space
    from ..search_space._flat import encode, flatten
    summary = SourceSummary(experiment_id, finished=len(rows))
    try:
        validate_search_space(space)
    except ValueError:
        # A custom tuner's own format: it checks the results itself (as for nnictl import).
        summary.taken = len(rows)
        return SourceResults(summary, rows)
    dims = flatten(space)
    kept: list[dict[str, Any]] = []
    removed: set[str] = set()
    seen_keys: set[str] = set()
    for row in rows:
        params = row["parameter"]
        if not isinstance(params, dict):
            summary.out_of_space += 1
            continue
        seen_keys.update(params)
        removed.update(k for k in params if k not in space)
        fitted = {k: v for k, v in params.items() if k in space}
        try:
            encode(dims, fitted)
        except ValueError:
            try:
                encode(dims, fitted, missing_ok=True)
            except ValueError:
                summary.out_of_space += 1
                continue
            if not takes_partial:
                summary.missing_parameters += 1
                continue
            summary.partial += 1
        kept.append({"parameter": fitted, "value": row["value"]})
    summary.taken = len(kept)
    summary.removed_parameters = sorted(removed)
    summary.new_parameters = sorted(k for k in space if rows and k not in seen_keys)
    return SourceResults(summary, kept)


def load(ids: list[str], space: dict[str, Any], *, own_id: str | None, objectives: Any,
         takes_partial: bool) -> list[SourceResults]:
    """Every source's fitted results (blocking: the manager runs it on a worker thread)."""
    sources = []
    for experiment_id, directory in resolve_sources(ids, own_id=own_id):
        try:
            rows = finished_results(directory, objectives)
        except Exception as exc:   # a broken or foreign database: say which, do not start half-warm
            raise WarmStartError(f"warmStart.experiments: cannot read experiment {experiment_id!r} "
                                 f"at {directory.database}: {type(exc).__name__}: {exc}") from exc
        sources.append(fit_to_space(experiment_id, rows, space, takes_partial=takes_partial))
    return sources


# -- showing what was taken ---------------------------------------------------------------------
def summary_line(source: dict[str, Any]) -> str:
    """``from ABC: 60 finished results, 55 taken (10 without the new parameter 'z', left to the
    tuner), 5 left out (5 outside the search space); dropped parameters: 'old'``."""
    line = (f"from {source['experiment']}: {source['finished']} finished results, {source['taken']} taken")
    if source.get("partial"):
        new = ", ".join(map(repr, source.get("newParameters") or []))
        line += f" ({source['partial']} without {'the new parameters ' + new if new else 'some parameters'}, " \
                f"left to the tuner)"
    line += f", {source.get('leftOut', 0)} left out"
    reasons = []
    if source.get("outOfSpace"):
        reasons.append(f"{source['outOfSpace']} outside the search space")
    if source.get("missingParameters"):
        reasons.append(f"{source['missingParameters']} lacking new parameters the tuner cannot fill")
    if reasons:
        line += f" ({', '.join(reasons)})"
    if source.get("removedParameters"):
        line += f"; parameters no longer in the space, dropped: {', '.join(map(repr, source['removedParameters']))}"
    return line


def stored_summary(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-source summaries kept in the store's meta (empty without a warm start)."""
    value = meta.get(META_KEY)
    return list(value) if isinstance(value, list) else []


def summary_totals(sources: list[dict[str, Any]]) -> dict[str, int]:
    """``{taken, leftOut, finished}`` over every source (the web UI's overview shows them)."""
    return {key: sum(int(s.get(key) or 0) for s in sources) for key in ("finished", "taken", "leftOut")}


__all__ = ["META_KEY", "SourceResults", "SourceSummary", "WarmStartError", "experiment_ids", "finished_results",
           "fit_to_space", "load", "resolve_sources", "stored_summary", "summary_line", "summary_totals"]
