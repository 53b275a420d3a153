"""Read models: what the REST API, the web UI and ``nnictl`` show of an experiment, from its store.

Each function turns store rows (and, for a running experiment, the manager's live facts) into
the JSON shapes NNI clients know: trial jobs, metrics, the export, the experiment profile, the
public config, the Pareto front, and the experiment's optimize mode. No HTTP here and no
aiohttp or numpy imports, so ``nnictl`` reads a stopped experiment's store with exactly the
functions the REST handlers answer with, without loading the server's libraries.

``manager`` is the running :class:`~nni.manager.manager.ExperimentManager` (what is read of
it: :class:`RunningExperiment`), or None for a stopped experiment (read-only: ``nnictl view``,
``nnictl`` on a stopped experiment).
Times are epoch milliseconds; a metric's ``data`` is a JSON-encoded JSON string (NNI's shapes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

from ..records import ParameterRecord
from ..status import EXPERIMENT_ENDED, ExperimentStatus
from ._objectives import (experiment_constraints, experiment_objectives, hypervolume_history, job_feasibility,
                          pareto_front_rows)
from .experiment_dir import ExperimentDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store import Store


class RunningExperiment(Protocol):
    """What the read models take from a running manager (``ExperimentManager``): its live
    config (updates included), status, errors and warnings, and its change counter."""

    config: Any   # the canonical ExperimentConfig
    status: str
    errors: list[str]
    version: int

    def warnings(self, silent: int | None = None) -> list[str]: ...

    def trials_without_final_result(self) -> int: ...


def ms(seconds: float | None) -> int | None:
    """Seconds since the epoch as NNI's epoch milliseconds (None stays None)."""
    return None if seconds is None else int(seconds * 1000)


# -- trials and metrics -----------------------------------------------------------------------
def metric_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored metric in NNI's ``MetricDataRecord`` shape."""
    return {
        "timestamp": ms(row["timestamp"]),
        "trialJobId": row["trial_id"],
        "parameterId": None if row["parameter_id"] is None else str(row["parameter_id"]),
        "type": row["type"],
        "sequence": row["sequence"],
        "data": json.dumps(row["value"]),
    }


def attempt_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """One run of a trial: its number, machine, times, why it ran (``cause``; absent for the
    first), how it ended (``status``) and why (``reason``; absent when it succeeded) (nni-ng)."""
    info = {"attempt": row["attempt"], "machine": row["machine"], "status": row["status"],
            "submitTime": ms(row["submit_time"]), "startTime": ms(row["start_time"]),
            "endTime": ms(row["end_time"]), "cause": row["cause"], "reason": row["reason"]}
    return {k: v for k, v in info.items() if v is not None}


def trial_job_json(trial: Mapping[str, Any], parameters: list[dict[str, Any]],
                   finals: list[dict[str, Any]], attempts: list[dict[str, Any]] | None = None,
                   constraints: list[Any] | None = None) -> dict[str, Any]:
    """One trial in NNI's TrialJobInfo shape, plus exitCode and message (why it failed) and
    ``attempts`` (every run of it: the first, retries after a lost machine, user re-runs).

    Each ``hyperParameters`` string is the parameter record's wire form plus its ``status``.
    """
    hyper = [json.dumps({**ParameterRecord.from_row(p).to_wire(), "status": p["status"]}) for p in parameters]
    # A trial that ran again shows its latest attempt: startTime is when that attempt started
    # (None while it waits), so endTime - startTime is its run, not the first attempt's start
    # to the last one's end with the idle time between them. ``attempts`` keeps every run.
    start = trial["start_time"]
    if attempts and len(attempts) > 1:
        start = max(attempts, key=lambda a: a["attempt"])["start_time"]
    info = {
        "trialJobId": trial["trial_id"],
        "sequenceId": trial["sequence_id"],
        "status": trial["status"],
        "hyperParameters": hyper,
        "logPath": f"file://localhost:{trial['trial_dir']}",
        "stdoutPath": f"{trial['trial_dir']}/stdout",
        "stderrPath": f"{trial['trial_dir']}/stderr",
        "trialDir": trial["trial_dir"],
        "submitTime": ms(trial["submit_time"]),
        "startTime": ms(start),
        "endTime": ms(trial["end_time"]),
        "exitCode": trial["exit_code"],
        "message": trial["message"],
        "finalMetricData": [metric_json(m) for m in finals],
        "attempts": [attempt_json(a) for a in attempts] if attempts else None,
        # nni-ng, config `constraints` only: {feasible, violation, constraints} (docs/constraints.md)
        "feasibility": job_feasibility(finals, constraints),
    }
    return {k: v for k, v in info.items() if v is not None}


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["trial_id"], []).append(row)
    return grouped


def trial_jobs(store: Store, status: str | None = None, *, offset: int = 0,
               limit: int | None = None, after: int | None = None) -> list[dict[str, Any]]:
    """Trials in NNI's TrialJobInfo shape, all or one page (the REST route and ``nnictl`` on a
    stopped experiment). A page reads only its own trials' parameters and final results;
    ``after`` (a sequence id) makes it a keyset page (see ``Store.trials``)."""
    trials = store.trials(status, offset=offset, limit=limit, after=after)
    if limit is None and not offset and after is None:
        params = _group(store.parameters())
        finals = _group(store.metrics(metric_type="FINAL"))
        attempts = _group(store.attempts())
    else:
        ids = [t["trial_id"] for t in trials]
        params = _group(store.parameters(trial_ids=ids))
        finals = _group(store.metrics(metric_type="FINAL", trial_ids=ids))
        attempts = _group(store.attempts(trial_ids=ids))
    constraints = _stored_constraints(store)
    return [trial_job_json(t, params.get(t["trial_id"], []), finals.get(t["trial_id"], []),
                           attempts.get(t["trial_id"]), constraints)
            for t in trials]


def _stored_constraints(store: Store) -> list[Any] | None:
    """The experiment's constraints (not updatable, so the stored config's are the live ones)."""
    try:
        return experiment_constraints(store.get_meta("config", {}) or {})
    except ValueError:
        return None


def trial_job(store: Store, trial_id: str) -> dict[str, Any] | None:
    """One trial in NNI's TrialJobInfo shape, or None when the experiment has no such trial."""
    trial = store.trial(trial_id)
    if trial is None:
        return None
    return trial_job_json(trial, store.parameters(trial_id), store.metrics(trial_id, "FINAL"),
                          store.attempts(trial_id), _stored_constraints(store))


def job_statistics(store: Store) -> list[dict[str, Any]]:
    """How many trials are in each state, as NNI's ``[{trialJobStatus, trialJobNumber}]``."""
    return [{"trialJobStatus": s, "trialJobNumber": n} for s, n in sorted(store.status_counts().items())]


# -- export -----------------------------------------------------------------------------------
_EXPORT_QUERY = (
    "SELECT m.trial_id, m.parameter_id, m.value, p.parameters, p.parameter_index"
    " FROM metrics m JOIN parameters p ON p.parameter_id = m.parameter_id"
    " WHERE m.type = 'FINAL' ORDER BY m.id")


def export_cursor(db: Any) -> Any:
    """A cursor over the export's rows (final results in arrival order) on connection ``db``;
    turn each into its JSON with :func:`export_row`."""
    return db.execute(_EXPORT_QUERY)


_EXPORT_PAGE_QUERY = (
    "SELECT m.trial_id, m.parameter_id, m.value, p.parameters, p.parameter_index, m.id"
    " FROM metrics m JOIN parameters p ON p.parameter_id = m.parameter_id"
    " WHERE m.type = 'FINAL' AND m.id > ? ORDER BY m.id LIMIT ?")


def export_page(db: Any, after: int, limit: int) -> list[Any]:
    """Up to ``limit`` export rows after metric id ``after`` (a keyset page; the id is ``row[5]``),
    read whole, so no read snapshot stays open after it (see ``rest.export_data``)."""
    return db.execute(_EXPORT_PAGE_QUERY, (after, limit)).fetchall()


def export_row(row: Any) -> dict[str, Any]:
    """One export row: the parameters of exactly that parameter id, and its value (NNI's shape)."""
    return {"parameter": json.loads(row[3]), "value": row[2], "trialJobId": row[0],
            "parameterId": row[1], "parameterIndex": row[4]}


def export_rows(store: Store) -> Iterator[dict[str, Any]]:
    """One row per final result: the parameters of exactly that parameter id, and its value.

    A generator over one read cursor (``nnictl experiment export`` on a stopped experiment).
    """
    for row in export_cursor(store._db):
        yield export_row(row)


# -- the experiment ---------------------------------------------------------------------------
_SECRET_KEYS = ("password", "sshPassphrase")


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config JSON with SSH passwords and passphrases masked, for every reader of the API.

    The store keeps them (``resume`` must reconnect); the API and the web UI never show them.
    """
    services = config.get("trainingService")
    if not services:
        return config
    masked = []
    for service in services if isinstance(services, list) else [services]:
        machines = service.get("machineList") if isinstance(service, dict) else None
        if machines:
            service = {**service, "machineList": [
                {k: ("***" if k in _SECRET_KEYS and v else v) for k, v in m.items()} if isinstance(m, dict) else m
                for m in machines]}
        masked.append(service)
    return {**config, "trainingService": masked if isinstance(services, list) else masked[0]}


def current_config(store: Store, manager: RunningExperiment | None) -> dict[str, Any]:
    """The config JSON (unmasked): the running manager's (updates included) or the stored one."""
    return manager.config.to_dict() if manager is not None else (store.get_meta("config", {}) or {})


def experiment_profile(store: Store, manager: RunningExperiment | None) -> dict[str, Any]:
    """NNI's experiment profile: id, status, times, and the config as ``params``."""
    meta = store.all_meta()
    start = meta.get("start_time")
    end = meta.get("end_time")
    trials = store.trials()
    params = public_config(manager.config.to_dict() if manager is not None else meta.get("config", {}))
    duration = ((end or time.time()) - start) if start else 0
    return {
        "id": meta.get("id"),
        "revision": manager.version if manager is not None else 0,
        "execDuration": int(duration),
        "logDir": str(ExperimentDir.of_database(store.path).path),
        "nextSequenceId": len(trials),
        "maxSequenceId": len(trials),
        "params": params,
        "startTime": ms(start),
        "endTime": ms(end),
        "status": manager.status if manager is not None else meta.get("status"),
    }


def check_status(store: Store, manager: RunningExperiment | None) -> dict[str, Any]:
    """NNI's ``{status, errors}`` plus ``warnings`` and ``trialsWithoutFinalResult`` (SUCCEEDED
    trials that never called report_final_result()); a stopped experiment served read-only is
    ``VIEWED``."""
    if manager is None:
        return {"status": ExperimentStatus.VIEWED.value, "errors": store.get_meta("errors", []),
                "warnings": store.get_meta("warnings", []),
                "trialsWithoutFinalResult": store.get_meta("trials_without_final_result", 0)}
    silent = manager.trials_without_final_result()   # one scan of the trials for both fields
    return {"status": manager.status, "errors": manager.errors, "warnings": manager.warnings(silent),
            "trialsWithoutFinalResult": silent}


def store_status(experiment_dir: str | Path) -> str:
    """The status an experiment's store last recorded (STOPPED if its manager died running)."""
    try:
        store = ExperimentDir(experiment_dir).open_store(readonly=True)
    except Exception:  # noqa: BLE001 - a missing or broken database reads as stopped
        return ExperimentStatus.STOPPED.value
    try:
        status = store.get_meta("status", ExperimentStatus.STOPPED.value)
    finally:
        store.close()
    return status if status in EXPERIMENT_ENDED else ExperimentStatus.STOPPED.value


# -- multi-objective --------------------------------------------------------------------------
def pareto_front(store: Store, manager: RunningExperiment | None = None) -> list[dict[str, Any]] | None:
    """The non-dominated final results (export rows plus ``objectives``); None without objectives."""
    return pareto_front_rows(store, manager.config.to_dict() if manager is not None else None)


def pareto_hypervolume(store: Store, manager: RunningExperiment | None = None) -> dict[str, Any] | None:
    """The front's hypervolume as results arrived; None without objectives (needs numpy)."""
    return hypervolume_history(store, manager.config.to_dict() if manager is not None else None)


# -- optimize mode ----------------------------------------------------------------------------
def optimize_mode(config: Mapping[str, Any], tuner: Any = None, *, stored: Any = None) -> str:
    """``maximize`` or ``minimize``: which direction is better for the best-so-far result.

    The one rule, for the manager (``tuner``: the tuner it runs) and for readers of a stopped
    experiment (``stored``: the mode its manager recorded). In order: the first objective's
    mode in a multi-objective experiment; ``stored``; the tuner's ``classArgs.optimize_mode``;
    the tuner's own default, which differs between tuners (TPE and Random minimize, Evolution
    and GP maximize), from ``tuner`` or else from a *built-in* tuner built from ``config``
    (a custom tuner's code is never run by a reader); else ``maximize``.
    """
    try:
        objectives = experiment_objectives(dict(config))
    except ValueError:   # a stored config is read as it is; the manager validated its own
        objectives = None
    if objectives:
        return objectives[0].mode
    mode = stored
    tuner_config = config.get("tuner") or {}
    if not mode:
        mode = (tuner_config.get("classArgs") or {}).get("optimize_mode")
    if not mode:
        if tuner is None:
            tuner = _builtin_tuner(tuner_config)
        mode = getattr(tuner, "optimize_mode", None)
    mode = getattr(mode, "value", mode)   # an OptimizeMode enum member
    return "minimize" if str(mode).lower() == "minimize" else "maximize"


def stored_optimize_mode(meta: Mapping[str, Any]) -> str:
    """:func:`optimize_mode` of a stopped experiment, from its store's ``meta`` (``all_meta()``)."""
    return optimize_mode(meta.get("config") or {}, stored=meta.get("optimize_mode"))


def _builtin_tuner(tuner_config: Mapping[str, Any]) -> Any:
    """A built-in tuner built from its config (None for a custom or unknown one), to read its default."""
    if not tuner_config.get("name") or tuner_config.get("className"):
        return None
    from ..algorithms.registry import create_algorithm
    try:
        return create_algorithm("tuner", name=tuner_config["name"], class_args=dict(tuner_config.get("classArgs") or {}))
    except Exception:  # noqa: BLE001 - an unknown or broken tuner: fall back to the default
        return None


__all__ = ["RunningExperiment", "attempt_json", "check_status", "current_config", "experiment_profile", "export_cursor", "export_page", "export_row",
           "export_rows", "job_statistics", "metric_json", "ms", "optimize_mode", "pareto_front", "pareto_hypervolume",
           "public_config", "store_status", "stored_optimize_mode", "trial_job", "trial_job_json", "trial_jobs"]
