"""The ``nnictl`` commands. Each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..experiment import rest
from ..experiment.data import _decode
from ..experiment.flat_parameters import flatten_parameter, unflatten_parameter
from ..manager import registry
from ..records import ParameterRecord
from ..runtime.process import is_same_process, signal_process
from ..status import EXPERIMENT_ENDED, TRIAL_ACTIVE
from ._errors import CliError
from ._experiment import (export_rows, metrics, open_store, optimize_mode, pareto_rows, profile, require_live,
                          resolve, running_entries, status, times, trial_jobs)
from ._launch import start_manager
from ._table import format_duration, format_table, format_time


def _print_started(info: dict[str, Any] | None, verb: str) -> None:
    if info is None:
        return
    for note in info.get("notes", []):
        print(f"Note: {note}")
    print(f"Experiment {info['id']} {verb}.")
    print(f"  Web UI:       {info.get('webui_url', info['url'])}")
    print(f"  REST API:     {info['url']}/api/v1/nni")
    print(f"  Directory:    {info['dir']}")
    print(f"  Stop it with: nnictl stop {info['id']}")


# -- create / resume / view / stop -------------------------------------------------------------
def create(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    if not config_path.is_file():
        raise CliError(f"config file {args.config!r} not found")
    manager_args = ["--config", str(config_path.resolve()), "--port", str(args.port)]
    if args.debug:
        manager_args.append("--debug")
    for experiment_id in args.warm_start or []:
        manager_args += ["--warm-start", experiment_id]
    _print_started(start_manager(manager_args, foreground=args.foreground), "started")
    return 0


def resume(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    if entry["alive"]:
        raise CliError(f"experiment {entry['id']} is already {'being viewed' if entry.get('status') == 'VIEWED' else 'running'} "
                       f"on port {entry['port']}; stop it first with 'nnictl stop {entry['id']}'")
    port = args.port
    if port is None:
        # The port it had, so bookmarks and scripts keep working; any free one if that is taken.
        port = _stored_port(entry) or 8080
        if not _port_free(port):
            print(f"Note: port {port}, which experiment {entry['id']} had, is in use; a free port is used instead")
            port = 0
    manager_args = ["--resume", entry["id"], "--dir", entry["dir"], "--port", str(port)]
    if args.debug:
        manager_args.append("--debug")
    _print_started(start_manager(manager_args, foreground=args.foreground), "resumed")
    return 0


def _stored_port(entry: dict[str, Any]) -> int | None:
    """The port its manager last served on (the store's; the registry's may be a view's)."""
    from ._experiment import open_store
    try:
        with open_store(entry) as store:
            return store.get_meta("port")
    except Exception:  # noqa: BLE001 - no store: the registry's memory
        return entry.get("port")


def _port_free(port: int) -> bool:
    import socket
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def view(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    if entry["alive"]:
        raise CliError(f"experiment {entry['id']} is {'already viewed' if entry.get('status') == 'VIEWED' else 'running'} "
                       f"on port {entry['port']}: open {rest.webui_url(entry['port'])}")
    info = start_manager(["--view", entry["id"], "--dir", entry["dir"], "--port", str(args.port)],
                         foreground=args.foreground)
    if info is not None:
        print(f"Experiment {info['id']} is served read-only at {info.get('webui_url', info['url'])}")
        print(f"  Stop viewing with: nnictl stop {info['id']}")
    return 0


# How long a manager gets to end after it was asked (REST), and again after SIGTERM: a loaded
# machine can take a while to end a manager and its trials.
STOP_WAIT_SECONDS = 30.0


def _wait_stopped(experiment_id: str, pid: int, start: str | None, seconds: float) -> bool:
    """Wait until that manager no longer serves the experiment: it ended, or (a manager in a
    Python program, which goes on running) took its pid out of the registry.

    A manager process of its own (``nnictl create/resume/view``) is waited for until it has
    exited, not only until it let go of the registry: "stopped" means no process is left."""
    deadline = time.monotonic() + seconds
    own_process = _is_manager_process(pid)
    while True:
        entry = registry.get_entry(experiment_id)
        released = entry is None or not entry["alive"] or (entry.get("pid"), entry.get("pid_start")) != (pid, start)
        if released and not (own_process and is_same_process(pid, start)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _is_manager_process(pid: int) -> bool:
    """Whether ``pid`` is a ``python -m nni.manager`` process (it exits when its experiment stops)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"nni.manager\0" in f.read()
    except OSError:
        return False


def _stop_entry(entry: dict[str, Any]) -> bool:
    """Stop one experiment; False (and why, on stderr) when its manager is still there after all."""
    if not entry["alive"]:
        print(f"Experiment {entry['id']} is not running.")
        return True
    pid, start = entry["pid"], entry.get("pid_start")
    try:
        rest.delete(entry["port"], "/experiment", timeout=60)
        asked = True
    except rest.RestError:
        asked = False
    if not (asked and _wait_stopped(entry["id"], pid, start, STOP_WAIT_SECONDS)):
        # The manager does not answer or did not end: SIGTERM (it cancels its trials on
        # SIGTERM), to the process that registered, never to a later one with its pid.
        signal_process(pid, start, signal.SIGTERM)
        if not _wait_stopped(entry["id"], pid, start, STOP_WAIT_SECONDS):
            print(f"Experiment {entry['id']} did not stop: its manager (pid {pid}) still runs "
                  f"{'after the stop request and ' if asked else ''}{STOP_WAIT_SECONDS:g} s after SIGTERM. "
                  f"End it with 'kill -9 {pid}' (its trials are then ended by its spawner).", file=sys.stderr)
            return False
    print(f"Experiment {entry['id']} stopped.")
    return True


def stop(args: argparse.Namespace) -> int:
    if args.all:
        alive = [e for e in registry.list_entries() if e["alive"]]
        if not alive:
            print("No experiment is running.")
        results = [_stop_entry(entry) for entry in alive]
        return 0 if all(results) else 1
    if args.id is None and args.port is None:
        alive = [e for e in registry.list_entries() if e["alive"]]
        if len(alive) == 1:
            return 0 if _stop_entry(alive[0]) else 1
        if not alive:
            # Nothing to stop is not a failure: NNI's nnictl prints that none runs and exits 0,
            # as `stop --all` does here (scripts run `nnictl stop` to make sure).
            print("No experiment is running; nothing to stop.")
            return 0
    return 0 if _stop_entry(resolve(args.id, args.port)) else 1


# -- update ------------------------------------------------------------------------------------
_UPDATES = {
    "searchspace": ("SEARCH_SPACE", "searchSpace"),
    "concurrency": ("TRIAL_CONCURRENCY", "trialConcurrency"),
    "duration": ("MAX_EXEC_DURATION", "maxExperimentDuration"),
    "trialnum": ("MAX_TRIAL_NUM", "maxTrialNumber"),
}


def update(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    port = require_live(entry, "update it")
    update_type, key = _UPDATES[args.what]
    if args.what == "searchspace":
        if not args.filename:
            raise CliError("update searchspace needs --filename FILE (a JSON or YAML search space)")
        from ..search_space import load_search_space
        try:
            value: Any = load_search_space(args.filename)
        except (OSError, ValueError) as exc:
            raise CliError(f"{args.filename}: {exc}") from None
    else:
        if args.value is None:
            raise CliError(f"update {args.what} needs --value")
        value = args.value
        if args.what in ("concurrency", "trialnum"):
            try:
                value = int(value)
            except ValueError:
                raise CliError(f"--value must be a positive integer, got {args.value!r}") from None
    before = rest.get(port, "/experiment").get("params", {}).get(key)
    rest.put(port, f"/experiment?update_type={update_type}", {"params": {key: value}})
    after = rest.get(port, "/experiment").get("params", {}).get(key)
    if args.what == "searchspace":
        names = ", ".join(after or {}) if isinstance(after, dict) else ""
        print(f"Experiment {entry['id']}: searchSpace replaced from {args.filename} "
              f"({len(after or {})} parameters: {names}).")
    else:
        duration = args.what == "duration"
        print(f"Experiment {entry['id']}: {key} is now {_shown_value(after, duration)} "
              f"(was {_shown_value(before, duration)}).")
    return 0


def _shown_value(value: Any, duration: bool) -> str:
    if value is None:
        return "not set"
    if duration and isinstance(value, (int, float)):
        return f"{format_duration(value)} ({value:g} s)"
    return str(value)


# -- experiment ...----------------------------------------------------------------------------
def experiment_list(args: argparse.Namespace) -> int:
    entries = registry.list_entries()
    if not args.all:
        entries = [e for e in entries if e["alive"]]
    if not entries:
        print("No experiment is running." if not args.all else "No experiments.")
        if not args.all:
            print("Add --all to list stopped ones too.")
        return 0
    rows = []
    for e in entries:
        shown = status(e)["status"]
        created, resumed, ended = times(e, shown)
        rows.append((e["id"], e.get("name") or "", shown, e.get("port") if e["alive"] else "",
                     format_time(created), format_time(resumed), format_time(ended), e.get("dir", "")))
    # CREATED is when the experiment began; RESUMED its last resume (blank if never resumed),
    # what the web UI's experiments page shows as its start.
    print(format_table(["ID", "NAME", "STATUS", "PORT", "CREATED", "RESUMED", "ENDED", "DIRECTORY"], rows))
    return 0


def experiment_show(args: argparse.Namespace) -> int:
    print(json.dumps(profile(resolve(args.id)), indent=2))
    return 0


def experiment_status(args: argparse.Namespace) -> int:
    """``ID: STATUS``, then why, when it is an error or all its trials failed."""
    entry = resolve(args.id)
    state = status(entry)
    print(f"{entry['id']}: {state['status']}")
    for error in state["errors"]:
        print(f"  error: {error}")
    for warning in state["warnings"]:
        print(f"  warning: {warning}")
    for line in _warm_start_lines(entry):
        print(f"  warm start {line}")
    return 0


def _warm_start_lines(entry: dict[str, Any]) -> list[str]:
    """What a warm start took from each source (docs/warm_start.md); read from the store."""
    from ..manager._warm_start import stored_summary, summary_line
    try:
        with open_store(entry) as store:
            return [summary_line(source) for source in stored_summary(store.all_meta())]
    except Exception:  # noqa: BLE001 - no database: nothing to say (status says the rest)
        return []


def experiment_delete(args: argparse.Namespace) -> int:
    entries = registry.list_entries() if args.all else [resolve(args.id)]
    if args.all:
        entries = [e for e in entries if not e["alive"]]
    for entry in entries:
        if entry["alive"]:
            raise CliError(f"experiment {entry['id']} is running; stop it first with 'nnictl stop {entry['id']}'")
        directory = Path(entry.get("dir", ""))
        if directory.is_dir() and (directory / "db").is_dir():
            shutil.rmtree(directory)
        registry.remove_entry(entry["id"])
        print(f"Experiment {entry['id']} deleted.")
    return 0


def experiment_export(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    rows = export_rows(entry)
    if args.intermediate:
        intermediate: dict[tuple[str, Any], list[Any]] = {}
        for m in metrics(entry):
            if m["type"] == "PERIODICAL":
                intermediate.setdefault((m["trialJobId"], m["parameterId"]), []).append(_decode(m["data"]))
        for row in rows:
            row["intermediate"] = intermediate.get((row["trialJobId"], str(row["parameterId"])), [])
    for row in rows:
        row["value"] = _decode(row["value"])
    _add_feasibility(rows, profile(entry).get("params", {}).get("constraints"))
    path = Path(args.filename)
    if args.type == "json":
        path.write_text(json.dumps(rows, indent=1))
    else:
        # A nested choice is flattened to one column per level ("model" = its _name,
        # "model/C", ...), as a spreadsheet wants; `experiment import` folds them back.
        flat = [flatten_parameter(row["parameter"]) for row in rows]
        keys: list[str] = []
        for parameter in flat:
            keys += [k for k in parameter if k not in keys]
        metric_keys: list[str] = []
        for row in rows:
            if isinstance(row["value"], dict):
                metric_keys += [k for k in row["value"] if k not in metric_keys]
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            header = ["trialJobId", "parameterId", "parameterIndex"] + keys
            header += metric_keys or ["value"]
            constrained = any("feasible" in row for row in rows)
            header += ["feasible", "violation"] if constrained else []
            writer.writerow(header + (["intermediate"] if args.intermediate else []))
            for row, parameter in zip(rows, flat):
                value = row["value"]
                metric_cells = ([value.get(k, "") for k in metric_keys] if metric_keys and isinstance(value, dict)
                                else [value] + [""] * (len(metric_keys) - 1) if metric_keys else [value])
                cells = [row["trialJobId"], row["parameterId"], row.get("parameterIndex", 0)]
                cells += [_cell(parameter.get(k, "")) for k in keys] + metric_cells
                if constrained:
                    violation = row.get("violation")
                    cells += [row.get("feasible", ""), "inf" if violation is None else violation]
                if args.intermediate:
                    cells.append(json.dumps(row["intermediate"]))
                writer.writerow(cells)
    print(f"Exported {len(rows)} results of experiment {entry['id']} to {path}")
    return 0


def _add_feasibility(rows: list[dict[str, Any]], constraints: Any) -> None:
    """Export rows of a constrained experiment get ``feasible`` and ``violation`` (None: a
    constraint metric is missing, i.e. infinitely violated); others are left as they are."""
    if not constraints:
        return
    from .._constraints import feasibility, parse_constraints
    parsed = parse_constraints(constraints)
    for row in rows:
        result = feasibility(row["value"], parsed).to_dict()
        row["feasible"], row["violation"] = result["feasible"], result["violation"]


def experiment_import(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    port = require_live(entry, "import data into it")
    data = _read_import_file(Path(args.filename))
    if Path(args.filename).suffix.lower() == ".csv":
        params = profile(entry).get("params", {})
        data = _metric_columns(_objective_columns(data, params.get("objectives")), params.get("searchSpace"))
    reply = rest.request("POST", port, "/experiment/import-data", data)
    print(f"Imported {reply['imported']} results into experiment {entry['id']}.")
    return 0


def _read_import_file(path: Path) -> list[dict[str, Any]]:
    """A JSON list of {"parameter", "value"} (what ``export --type json`` writes) or an exported CSV."""
    if not path.is_file():
        raise CliError(f"import file {str(path)!r} not found")
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        fixed = {"trialJobId", "parameterId", "parameterIndex", "intermediate", "value"}
        data = []
        for i, row in enumerate(reader, start=2):
            if "value" not in row and "default" not in row:
                raise CliError(f"{path}: needs a 'value' or 'default' column (an 'nnictl experiment export' CSV)")
            value_key = "value" if "value" in row else "default"
            parameter = unflatten_parameter({k: _parse_cell(v) for k, v in row.items()
                                             if k not in fixed and k != value_key and v != ""})
            try:
                value = float(row[value_key])
            except (TypeError, ValueError):
                raise CliError(f"{path}, line {i}: value {row[value_key]!r} is not a number") from None
            data.append({"parameter": parameter, "value": value})
        return data
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path}: not valid JSON ({exc}); expected a list of {{\"parameter\": ..., \"value\": ...}}") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "parameter" in d and "value" in d for d in data):
        raise CliError(f"{path}: expected a JSON list of {{\"parameter\": {{...}}, \"value\": ...}} objects")
    return [{"parameter": d["parameter"], "value": d["value"]} for d in data]


def _objective_columns(data: list[dict[str, Any]], objectives: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """In a multi-objective experiment, a CSV's objective columns are metrics, not parameters:
    move them into the value dict (with ``default``) so the tuner can learn from the rows."""
    if not objectives:
        return data
    names = [o["metric"] for o in objectives]
    out = []
    for row in data:
        parameter = {k: v for k, v in row["parameter"].items() if k not in names}
        value = {"default": row["value"], **{k: row["parameter"][k] for k in names if k in row["parameter"]}}
        out.append({"parameter": parameter, "value": value})
    return out


def _metric_columns(data: list[dict[str, Any]], space: Any) -> list[dict[str, Any]]:
    """A CSV's other metric columns (``default`` plus ``loss``, ...) are not parameters: a column
    the search space has no parameter for goes into the value dict, as it was exported."""
    if not isinstance(space, dict) or not space:
        return data
    out = []
    for row in data:
        extra = {k: v for k, v in row["parameter"].items() if k not in space}
        if not extra:
            out.append(row)
            continue
        value = row["value"] if isinstance(row["value"], dict) else {"default": row["value"]}
        out.append({"parameter": {k: v for k, v in row["parameter"].items() if k in space},
                    "value": {**value, **extra}})
    return out


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def _parse_cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- trial ---------------------------------------------------------------------------------
def _default_metric(job: dict[str, Any]) -> Any:
    finals = job.get("finalMetricData") or []
    if not finals:
        return None
    value = _decode(finals[-1]["data"])
    return value.get("default") if isinstance(value, dict) else value


def trial_ls(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    jobs = trial_jobs(entry)
    total = len(jobs)
    objective_names: list[str] = []
    objective_values: dict[str, dict[str, Any]] = {}
    if getattr(args, "pareto", False):
        front = pareto_rows(entry)
        if front is None:
            raise CliError(f"no Pareto front: experiment {entry['id']} has no objectives (config field "
                           f"'objectives'); list its trials without --pareto")
        on_front = {row["trialJobId"] for row in front}
        jobs = [j for j in jobs if j["trialJobId"] in on_front]
        # Every objective gets a column (METRIC is only the default key): the front's point.
        for row in front:
            for name in row.get("objectives") or {}:
                if name not in objective_names:
                    objective_names.append(name)
            objective_values[row["trialJobId"]] = row.get("objectives") or {}
        if not jobs:
            print(f"Experiment {entry['id']} has no result on its Pareto front yet.")
            return 0
    constrained = any("feasibility" in j for j in jobs)
    if getattr(args, "feasible", False) or getattr(args, "infeasible", False):
        if not constrained and not (profile(entry).get("params") or {}).get("constraints"):
            raise CliError(f"experiment {entry['id']} has no constraints (config field 'constraints'), so every "
                           f"trial is feasible; list its trials without --feasible/--infeasible")
        want = bool(args.feasible)
        jobs = [j for j in jobs if "feasibility" in j and j["feasibility"]["feasible"] is want]
    if args.status:
        jobs = [j for j in jobs if j["status"] == args.status]
        if not jobs:
            print(f"Experiment {entry['id']} has no {args.status} trial ({total} trials in all).")
            return 0
    if args.head or args.tail:
        # Only trials with a final result are ranked (a running trial's latest intermediate
        # value is no result), in the direction the manager optimizes; with constraints only
        # feasible results are ranked (an infeasible one is never the best).
        scored = [j for j in jobs if isinstance(_default_metric(j), (int, float))
                  and not isinstance(_default_metric(j), bool) and _feasible_or_free(j)]
        if jobs and not scored:
            # It has trials, just no result to rank them by: say that, not "no trials".
            silent = sum(1 for j in jobs if j["status"] == "SUCCEEDED" and not j.get("finalMetricData"))
            why = (f"; {silent} SUCCEEDED without calling nni.report_final_result()" if silent else "")
            print(f"Experiment {entry['id']} has no trial with a final result yet ({len(jobs)} trials{why}); "
                  f"list them all without --head/--tail.")
            return 0
        scored.sort(key=_default_metric, reverse=(optimize_mode(entry) != "minimize"))
        jobs = scored[:args.head] if args.head else scored[-args.tail:]
    rows = []
    for job in jobs:
        shown = _last_parameters(job)
        end = job.get("endTime") or (time.time() * 1000 if job.get("startTime") else None)
        duration = (end - job["startTime"]) / 1000 if job.get("startTime") and end else None
        exit_code = job.get("exitCode")
        point = objective_values.get(job["trialJobId"], {})
        rows.append((job["trialJobId"], job["sequenceId"], job["status"], _format_metric(_default_metric(job)),
                     *(_format_metric(point.get(name)) for name in objective_names),
                     *((_feasibility_cell(job),) if constrained else ()),
                     format_duration(duration), "" if exit_code is None else exit_code, json.dumps(shown),
                     _reason(job)))
    if not rows:
        print(f"Experiment {entry['id']} has no trials yet.")
        return 0
    # The columns NNI users' scripts read keep their places; EXIT and REASON come after them
    # (and with --pareto, one column per objective after METRIC; with constraints, FEASIBLE).
    print(format_table(["TRIAL", "SEQ", "STATUS", "METRIC", *(name.upper() for name in objective_names),
                        *(["FEASIBLE"] if constrained else []), "DURATION", "EXIT", "PARAMETERS", "REASON"],
                       rows))
    return 0


def _feasible_or_free(job: dict[str, Any]) -> bool:
    """False only for a trial whose result violates the experiment's constraints."""
    feasibility = job.get("feasibility")
    return feasibility is None or bool(feasibility.get("feasible"))


def _feasibility_cell(job: dict[str, Any]) -> str:
    """``yes``, ``no (violation 2.5)``, ``no (missing latency_ms)``, or '' before a result."""
    feasibility = job.get("feasibility")
    if feasibility is None:
        return ""
    if feasibility.get("feasible"):
        return "yes"
    if feasibility.get("missing"):
        return f"no (missing {', '.join(feasibility['missing'])})"
    return f"no (violation {feasibility['violation']:.4g})"


REASON_WIDTH = 80    # the whole message: `nnictl log trial TRIAL_ID`, or the REST API's `message`


def _reason(job: dict[str, Any]) -> str:
    """Why a trial ended as it did, on one line: a failure's exit code and last stderr line,
    the assessor's or the user's stop, or that a SUCCEEDED trial reported no final result."""
    status = job["status"]
    if status == "SUCCEEDED":
        return "" if job.get("finalMetricData") else "no final result (report_final_result() never called)"
    if status in TRIAL_ACTIVE:
        return ""
    from ..manager._trials import failure_line
    text = failure_line(job.get("message")) if job.get("message") else ""
    return text if len(text) <= REASON_WIDTH else text[:REASON_WIDTH - 3] + "..."


def _last_parameters(job: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a trial job's latest parameter record (its last phase); {} before any."""
    records = job.get("hyperParameters") or []
    return ParameterRecord.from_wire(_decode(records[-1])).parameters if records else {}


def _format_metric(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def trial_kill(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    port = require_live(entry, "kill its trials")
    rest.delete(port, f"/trial-jobs/{args.trial_id}")
    print(f"Trial {args.trial_id} killed.")
    return 0


def trial_rerun(args: argparse.Namespace) -> int:
    """Run ended trials again (new attempts of the same trials, same parameters)."""
    entry = resolve(args.id)
    port = require_live(entry, "re-run its trials")
    body: dict[str, Any] = {"extendBudget": not args.no_extend_budget}
    if args.trial_id:
        body["trialJobIds"] = args.trial_id
    else:
        body["status"] = "FAILED" if args.all_failed else args.status
    reply = rest.request("POST", port, "/trial-jobs/rerun", body)
    for skipped in reply["skipped"]:
        print(f"Trial {skipped['trialJobId']} not re-run: {skipped['reason']}.", file=sys.stderr)
    chosen = reply["rerun"]
    if chosen:
        budget = "on top of maxTrialNumber" if body["extendBudget"] else "within maxTrialNumber"
        print(f"Re-running {len(chosen)} trial(s) of experiment {entry['id']} ({budget}): {' '.join(chosen)}")
    else:
        print(f"No trial of experiment {entry['id']} to re-run.")
    return 0


# -- log -------------------------------------------------------------------------------------
def _print_file(path: Path, head: int | None, tail: int | None, show_path: bool) -> int:
    if show_path:
        print(path)
        return 0
    if not path.is_file():
        raise CliError(f"log file {path} does not exist (yet)")
    lines = path.read_text(errors="replace").splitlines()
    if head:
        lines = lines[:head]
    elif tail:
        lines = lines[-tail:]
    print("\n".join(lines))
    return 0


def log_manager(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    name = {"stdout": "nnictl_stdout.log", "stderr": "nnictl_stderr.log"}[args.stream]
    path = Path(entry["dir"]) / "log" / name
    if not path.is_file() and args.stream == "stdout":
        path = Path(entry["dir"]) / "log" / "nnimanager.log"
    return _print_file(path, args.head, args.tail, args.path)


def log_trial(args: argparse.Namespace) -> int:
    entry, trial_id = _log_trial_target(args.ids, args.trial_id)
    jobs = {j["trialJobId"]: j for j in trial_jobs(entry)}
    if trial_id not in jobs:
        known = ", ".join(list(jobs)[:20]) + (", ..." if len(jobs) > 20 else "")
        raise CliError(f"experiment {entry['id']} has no trial {trial_id!r} (its trials: {known or 'none yet'})")
    job = jobs[trial_id]
    trial_dir = Path(job["trialDir"])
    if args.path:
        print(trial_dir)
        return 0
    if job["status"] not in TRIAL_ACTIVE and job["status"] != "SUCCEEDED" and job.get("message"):
        print(f"==> trial {trial_id}: {job['status']}"
              + (f", exit code {job['exitCode']}" if job.get("exitCode") is not None else "") + " <==")
        print(job["message"])
    for stream in ("stdout", "stderr"):
        path = trial_dir / stream
        if path.is_file() and path.stat().st_size:
            print(f"==> {path} <==")
            _print_file(path, args.head, args.tail, False)
    return 0


def _log_trial_target(ids: list[str], trial_id: str | None) -> tuple[dict[str, Any], str]:
    """``log trial [EXPERIMENT_ID] TRIAL_ID`` or NNI's ``log trial [EXPERIMENT_ID] --trial_id TRIAL_ID``."""
    if trial_id is not None:
        if len(ids) > 1:
            raise CliError(f"too many ids: {' '.join(ids)} (with --trial_id, give at most the experiment id)")
        return resolve(ids[0] if ids else None), trial_id
    if len(ids) == 2:
        return resolve(ids[0]), ids[1]
    if len(ids) > 2:
        raise CliError(f"too many ids: {' '.join(ids)} (give [EXPERIMENT_ID] TRIAL_ID)")
    if not ids:
        raise CliError("name the trial: nnictl log trial [EXPERIMENT_ID] TRIAL_ID "
                       "(its ids: 'nnictl trial ls')")
    (only,) = ids
    if registry.get_entry(only) is not None:
        raise CliError(f"{only!r} is an experiment; name one of its trials too: nnictl log trial {only} TRIAL_ID "
                       f"(its ids: 'nnictl trial ls {only}')")
    running = running_entries()
    if len(running) == 1:
        return running[0], only
    # No single running experiment to mean: the one experiment on this machine that has it.
    owners = [e for e in registry.list_entries() if _has_trial(e, only)]
    if len(owners) == 1:
        return owners[0], only
    if owners:
        raise CliError(f"trial {only!r} is in several experiments ({', '.join(e['id'] for e in owners)}); "
                       f"name one: nnictl log trial EXPERIMENT_ID {only}")
    raise CliError(f"no experiment on this machine has a trial {only!r} (see 'nnictl trial ls ID')")


def _has_trial(entry: dict[str, Any], trial_id: str) -> bool:
    from ._experiment import open_store
    try:
        with open_store(entry) as store:
            return store.trial(trial_id) is not None
    except Exception:  # noqa: BLE001 - no or broken store: not there
        return False


# -- top / webui -------------------------------------------------------------------------------
def top(args: argparse.Namespace) -> int:
    entry = resolve(args.id)
    port = require_live(entry, "watch it")
    version = -1
    try:
        while True:
            progress = rest.get(port, f"/progress?since={version}&timeout={args.time}", timeout=args.time + 10)
            version = progress["version"]
            jobs = [j for j in rest.get(port, "/trial-jobs") if j["status"] in TRIAL_ACTIVE]
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            limit = progress.get("maxTrialNumber")
            best = ("best -" if progress.get("bestMetric") is None else
                    f"best {_format_metric(progress['bestMetric'])} ({progress.get('bestTrialId')})")
            print(f"Experiment {entry['id']}  {progress['status']}  elapsed {format_duration(progress['elapsed'])}  "
                  f"{progress['limitDone']}/{limit if limit else '-'} {progress['limitUnit']} done  {best}")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(progress["counts"].items()))
            print(f"Trials: {counts or 'none yet'}")
            for note in progress.get("errors", []) + progress.get("warnings", []):
                print(f"Note: {note}")
            now = time.time() * 1000
            rows = [(j["trialJobId"], j["sequenceId"], j["status"],
                     format_duration((now - j["startTime"]) / 1000 if j.get("startTime") else None),
                     json.dumps(_last_parameters(j)) if j.get("hyperParameters") else "")
                    for j in jobs]
            print(format_table(["TRIAL", "SEQ", "STATUS", "RUNNING FOR", "PARAMETERS"], rows) if rows
                  else "No trial is running.")
            print("", flush=True)
            if progress["status"] in EXPERIMENT_ENDED:
                return 0
    except rest.RestError:
        print(f"Experiment {entry['id']} is no longer running.")
        return 0
