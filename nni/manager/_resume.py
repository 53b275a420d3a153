"""Resume (private): what a resumed experiment continues from, read back from its store.

:func:`read_resume` only reads: the trials with their parameter records, attempts and final
results, what happens to the trials the previous manager left running, the results the tuner
gets back, and the ids and counters to continue. :func:`close_interrupted` is the one write:
it records the interrupted trials' end once the training service cleaned up after them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from .._objectives import Objective
from ..records import ParameterRecord
from . import _objectives
from ..status import TrialStatus
from ._trials import INTERRUPTED, STOPPED_WITH_EXPERIMENT, TrialState, failure_line, finite_metric, new_token
from .store import Store


@dataclass
class Interrupted:
    """A trial the previous manager left active, and how it is recorded now."""

    trial: TrialState
    status: str
    message: str
    # its latest attempt's process as the training service recorded it (None: not recorded),
    # for the service's clean-up of what the trial left running
    process: str | None = None


@dataclass
class ResumeState:
    """Everything a resumed manager starts from."""

    trials: list[TrialState]
    interrupted: list[Interrupted]
    reruns: list[dict[str, Any]]             # parameters run again first, in new trials
    tuner_data: list[dict[str, Any]]         # ``import_data`` entries: stored results and imports
    results: list[tuple[str, Any]]           # (trial id, scalar-bearing value) for the best result
    next_parameter_id: int
    next_sequence_id: int
    counted: int                             # trials counted against maxTrialNumber
    parameter_sets: int
    failures_last: str = ""                  # the failure watch: last failure, whether it is armed
    failures_armed: bool = True


def elapsed_before(store: Store) -> float:
    """Seconds the experiment ran before this resume (up to its end or its last event).

    Read before the resumed manager records anything (its own start is an event too).
    """
    meta = store.all_meta()
    started = meta.get("start_time")
    if started is None:
        return 0.0
    events = store.events(limit=1)
    last = max([meta.get("end_time") or 0.0] + [e["timestamp"] for e in events])
    return max(0.0, last - started)


def read_resume(store: Store, *, multi_phase: bool, objectives: list[Objective] | None,
                constraints: list[Any] | None = None) -> ResumeState:
    """Rebuild the manager's state from ``store``; writes nothing.

    Trials the previous manager left active, and those its stop canceled, end SYS_CANCELED
    (their parameters run again first, not with multi-phase; they do not count against
    ``maxTrialNumber``); one whose every parameter set has its final result ends SUCCEEDED
    instead. Only final results are read back: intermediate ones feed the assessor
    of a running trial, and after a resume no trial of the old manager runs any more (a
    million stored intermediate results would cost seconds and hundreds of MB for nothing).
    """
    with _no_cyclic_gc():
        state = _read_trials(store, multi_phase=multi_phase, objectives=objectives, constraints=constraints)
    trials, interrupted, reruns, data, results, last_failure, armed = state
    imported = store.imported()
    ending = {i.trial.trial_id: i.status for i in interrupted}

    def status_now(trial: TrialState) -> str:
        return ending.get(trial.trial_id, trial.status)

    return ResumeState(
        trials=trials, interrupted=interrupted, reruns=reruns, tuner_data=data + imported, results=results,
        next_parameter_id=store.max_parameter_id() + 1,
        next_sequence_id=max((t.sequence_id for t in trials), default=-1) + 1,
        counted=sum(status_now(t) != INTERRUPTED for t in trials),
        parameter_sets=sum(1 for t in trials for r in t.records
                           if status_now(t) != INTERRUPTED or r["parameter_id"] in t.finals),
        failures_last=last_failure, failures_armed=armed)


async def read_resume_in_thread(store: Store, *, multi_phase: bool, objectives: list[Objective] | None,
                                constraints: list[Any] | None = None) -> ResumeState:
    """:func:`read_resume` in a worker thread, on a read-only connection of its own.

    Reading 100,000 stored trials takes seconds: on the manager's loop it would hold up the
    REST API and every timer meanwhile.  The manager's own connection stays on its loop
    (SQLite in WAL mode gives the reader a consistent snapshot beside it).
    """
    def read() -> ResumeState:
        reader = Store(store.path, readonly=True)
        try:
            return read_resume(reader, multi_phase=multi_phase, objectives=objectives, constraints=constraints)
        finally:
            reader.close()
    return await asyncio.to_thread(read)


def _read_trials(store: Store, *, multi_phase: bool, objectives: list[Objective] | None,
                 constraints: list[Any] | None = None) -> tuple[Any, ...]:
    """The bulk of a resume: every stored trial as a TrialState, the interrupted ones, the
    re-runs, the tuner's data and the results for the best one.

    Lean on purpose (100,000 trials resume in seconds and well under 300 MB): rows are read
    as plain tuples from cursors, never as lists of dicts, final results are kept in one flat
    dict by (trial, parameter set), and attempts come from one GROUP BY query.
    """
    records: dict[str, list[dict[str, Any]]] = {}
    for trial_id, parameter_id, source, parameters, index in store.parameter_rows():
        records.setdefault(trial_id, []).append(
            ParameterRecord(parameter_id, sys.intern(source), _shared_keys(json.loads(parameters)), index).to_wire())
    finals: dict[tuple[str, int | None], Any] = {
        (trial_id, parameter_id): json.loads(value) for trial_id, parameter_id, value in store.final_values()}
    trial_finals: dict[str, tuple[int | None, ...]] = {}
    for trial_id, parameter_id in finals:
        trial_finals[trial_id] = (*trial_finals.get(trial_id, ()), parameter_id)
    attempts = store.last_attempts()
    # No process of the old manager's trials reports to this one (active ones are ended), so
    # restored trials share one token that is never given to anybody: a re-run fences it and
    # gets a token of its own, as any new attempt does.
    unused_token = new_token()

    trials: list[TrialState] = []
    interrupted: list[Interrupted] = []
    reruns: list[dict[str, Any]] = []
    last_failure, armed = "", True
    for trial_id, sequence_id, status, trial_dir, failure in store.trial_rows():   # in sequence order
        if status == "FAILED":   # what the all-failed note quotes
            last_failure = failure_line(failure)
        elif status in ("SUCCEEDED", "EARLY_STOPPED"):
            armed = False    # it has worked before: later failures are not a broken setup
        trial = TrialState(trial_id, sequence_id, trial_dir, unused_token, records.get(trial_id, []),
                           status=sys.intern(status))
        trial.finals = trial_finals.pop(trial_id, ())
        trial.attempt = attempts.get(trial_id, 1)
        trial.tuner_closed = True    # this tuner instance did not run it: results reach it as imports
        trials.append(trial)
        # A trial the experiment's stop canceled is resumed as one a crash interrupted: a clean
        # stop must not cost more budget than kill -9 does. A user's kill of it stays as it is.
        stopped_with_experiment = (status == TrialStatus.USER_CANCELED
                                   and (failure or "").startswith(STOPPED_WITH_EXPERIMENT))
        if not (trial.active or stopped_with_experiment):
            continue
        if trial.complete and not multi_phase:
            status, message = "SUCCEEDED", "the manager stopped after this trial's final result"
        else:
            status = INTERRUPTED
            message = ("canceled when the experiment stopped" if stopped_with_experiment else
                       "interrupted: the experiment manager stopped while this trial ran")
            if not multi_phase and trial.records:
                reruns.append(trial.records[0]["parameters"])
                message += "; its parameters run again in a new trial"
        interrupted.append(Interrupted(trial, status, message))

    processes = store.attempt_processes(i.trial.trial_id for i in interrupted)
    for item in interrupted:
        item.process = processes.get(item.trial.trial_id)

    data: list[dict[str, Any]] = []
    results: list[tuple[str, Any]] = []
    for trial in trials:
        for record in trial.records:
            if record["parameter_id"] not in trial.finals:
                continue
            value = finals[trial.trial_id, record["parameter_id"]]
            # constraints: an infeasible result teaches the tuner but is never the best
            feasible, _ = _objectives.read_feasibility(value, constraints)
            can_be_best = feasible is None or feasible.feasible
            if objectives:
                fed, _ = _objectives.check_final(value, objectives)
                if fed is not None:
                    data.append({"parameter": record["parameters"], "value": fed})
                    if can_be_best:
                        results.append((trial.trial_id, fed[objectives[0].metric]))
            elif finite_metric(value):
                data.append({"parameter": record["parameters"], "value": value})
                if can_be_best:
                    results.append((trial.trial_id, value))
    return trials, interrupted, reruns, data, results, last_failure, armed


def _shared_keys(parameters: Any) -> Any:
    """``parameters`` with its top-level keys interned: every trial's set names the same few
    hyperparameters, and 100,000 decoded copies of each name cost ~10 MB after a resume."""
    if not isinstance(parameters, dict):
        return parameters
    return {sys.intern(key): value for key, value in parameters.items()}


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Bulk loading (a resume builds ~10 objects per stored trial): the cyclic collector would
    walk the growing heap again and again for garbage that cannot exist yet (a third of the
    time of a 100,000-trial resume). Reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def close_interrupted(store: Store, state: ResumeState) -> None:
    """Record each interrupted trial's end (trial, attempt, open parameter sets, an event)."""
    for item in state.interrupted:
        trial, status, message = item.trial, item.status, item.message
        trial.status = status
        now = time.time()
        store.update_trial(trial.trial_id, status=status, end_time=now, message=message)
        store.update_attempt(trial.trial_id, trial.attempt, status=status, end_time=now, reason=message)
        for record in trial.records:
            if record["parameter_id"] not in trial.finals:
                store.set_parameter_status(record["parameter_id"], status)
        store.add_event("TRIAL_" + status, message, trial.trial_id)
