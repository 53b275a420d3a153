"""The REST API: NNI's ``/api/v1/nni`` routes for clients, ``/api/v1/trial`` for trials.

Read routes answer from the SQLite store, so the same handlers serve a live experiment
and a stopped one opened read-only. Shapes follow NNI's so NNI clients keep working:
times are epoch milliseconds, metric ``data`` is a JSON-encoded JSON string.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from .store import Store

API = "/api/v1/nni"
TRIAL_API = "/api/v1/trial"
MANAGER_KEY = web.AppKey("manager", Any)
STORE_KEY = web.AppKey("store", Store)
STOP_VIEW_KEY = web.AppKey("stop_view", Any)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def metric_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": _ms(row["timestamp"]),
        "trialJobId": row["trial_id"],
        "parameterId": None if row["parameter_id"] is None else str(row["parameter_id"]),
        "type": row["type"],
        "sequence": row["sequence"],
        "data": json.dumps(row["value"]),
    }


def trial_job_json(trial: dict[str, Any], parameters: list[dict[str, Any]],
                   finals: list[dict[str, Any]]) -> dict[str, Any]:
    """One trial in NNI's TrialJobInfo shape, plus exitCode and message (why it failed)."""
    hyper = [json.dumps({"parameter_id": p["parameter_id"], "parameter_source": p["source"],
                         "parameters": p["parameters"], "parameter_index": p["parameter_index"],
                         "status": p["status"]})
             for p in parameters]
    info = {
        "trialJobId": trial["trial_id"],
        "sequenceId": trial["sequence_id"],
        "status": trial["status"],
        "hyperParameters": hyper,
        "logPath": f"file://localhost:{trial['trial_dir']}",
        "stdoutPath": f"{trial['trial_dir']}/stdout",
        "stderrPath": f"{trial['trial_dir']}/stderr",
        "trialDir": trial["trial_dir"],
        "submitTime": _ms(trial["submit_time"]),
        "startTime": _ms(trial["start_time"]),
        "endTime": _ms(trial["end_time"]),
        "exitCode": trial["exit_code"],
        "message": trial["message"],
        "finalMetricData": [metric_json(m) for m in finals],
    }
    return {k: v for k, v in info.items() if v is not None}


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["trial_id"], []).append(row)
    return grouped


# -- read routes (store) ---------------------------------------------------------------------
async def check_status(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    if manager is None:
        return web.json_response({"status": "VIEWED", "errors": request.app[STORE_KEY].get_meta("errors", [])})
    return web.json_response({"status": manager.status, "errors": manager.errors})


async def version(request: web.Request) -> web.Response:
    from .. import __version__
    return web.json_response(__version__)


async def get_experiment(request: web.Request) -> web.Response:
    return web.json_response(experiment_profile(request.app[STORE_KEY], request.app[MANAGER_KEY]))


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


def experiment_profile(store: Store, manager: Any) -> dict[str, Any]:
    """NNI's experiment profile: id, status, times, and the config as ``params``."""
    meta = store.all_meta()
    start = meta.get("start_time")
    end = meta.get("end_time")
    trials = store.trials()
    params = public_config(manager.config.json() if manager is not None else meta.get("config", {}))
    duration = ((end or time.time()) - start) if start else 0
    return {
        "id": meta.get("id"),
        "revision": manager.version if manager is not None else 0,
        "execDuration": int(duration),
        "logDir": str(store.path.parent.parent),
        "nextSequenceId": len(trials),
        "maxSequenceId": len(trials),
        "params": params,
        "startTime": _ms(start),
        "endTime": _ms(end),
        "status": manager.status if manager is not None else meta.get("status"),
    }


def trial_jobs(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    """Every trial in NNI's TrialJobInfo shape (the REST route and ``nnictl`` on a stopped experiment)."""
    params = _group(store.parameters())
    finals = _group(store.metrics(metric_type="FINAL"))
    return [trial_job_json(t, params.get(t["trial_id"], []), finals.get(t["trial_id"], []))
            for t in store.trials(status)]


async def list_trial_jobs(request: web.Request) -> web.Response:
    return web.json_response(trial_jobs(request.app[STORE_KEY], request.query.get("status")))


async def get_trial_job(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    trial_id = request.match_info["trial_id"]
    trial = store.trial(trial_id)
    if trial is None:
        return _error(404, f"no trial {trial_id!r} in this experiment")
    return web.json_response(trial_job_json(trial, store.parameters(trial_id),
                                            store.metrics(trial_id, "FINAL")))


async def metric_data(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    trial_id = request.match_info.get("trial_id")
    return web.json_response([metric_json(m) for m in store.metrics(trial_id)])


async def export_data(request: web.Request) -> web.Response:
    return web.json_response(export_rows(request.app[STORE_KEY]))


def export_rows(store: Store) -> list[dict[str, Any]]:
    """One row per final result: the parameters of exactly that parameter id, and its value."""
    by_id = {p["parameter_id"]: p for p in store.parameters()}
    rows = []
    for metric in store.metrics(metric_type="FINAL"):
        record = by_id.get(metric["parameter_id"])
        if record is None:
            continue
        rows.append({"parameter": record["parameters"], "value": metric["value"],
                     "trialJobId": metric["trial_id"], "parameterId": metric["parameter_id"],
                     "parameterIndex": record["parameter_index"]})
    return rows


async def pareto_front(request: web.Request) -> web.Response:
    """Our addition: the non-dominated final results of a multi-objective experiment
    (export-data rows plus ``objectives``); 409 when the config has no ``objectives``."""
    from ._objectives import pareto_front_rows
    manager = request.app[MANAGER_KEY]
    rows = pareto_front_rows(request.app[STORE_KEY], manager.config.json() if manager is not None else None)
    if rows is None:
        return _error(409, "objectives: this experiment has no 'objectives' in its config, so no Pareto front")
    return web.json_response(rows)


async def pareto_hypervolume(request: web.Request) -> web.Response:
    """Our addition: the front's hypervolume as results arrived (see ``_objectives.hypervolume_history``)."""
    from ._objectives import hypervolume_history
    manager = request.app[MANAGER_KEY]
    history = hypervolume_history(request.app[STORE_KEY], manager.config.json() if manager is not None else None)
    if history is None:
        return _error(409, "objectives: this experiment has no 'objectives' in its config, so no Pareto front")
    return web.json_response(history)


async def job_statistics(request: web.Request) -> web.Response:
    counts = request.app[STORE_KEY].status_counts()
    return web.json_response([{"trialJobStatus": s, "trialJobNumber": n} for s, n in sorted(counts.items())])


async def progress(request: web.Request) -> web.Response:
    """Our addition: a cheap summary that long-polls (``?since=VERSION&timeout=SECONDS``).

    ``&until=ended`` waits for the experiment's end instead of any change.
    """
    manager = request.app[MANAGER_KEY]
    if manager is None:
        return _error(409, "experiment is not running (view mode)")
    try:
        since = int(request.query.get("since", "-1"))
        timeout = min(float(request.query.get("timeout", "0")), 30.0)
    except ValueError:
        return _error(400, "since must be an integer and timeout a number of seconds")
    until_ended = request.query.get("until") == "ended"
    if timeout > 0 and (until_ended or manager.version <= since):
        await manager.wait_for_change(since, timeout, until_ended=until_ended)
    return web.json_response(manager.progress())


# -- control routes (live manager) ------------------------------------------------------------
def _live(request: web.Request) -> Any:
    manager = request.app[MANAGER_KEY]
    if manager is None:
        raise web.HTTPConflict(text=json.dumps({"error": "experiment is read-only (view mode)"}),
                               content_type="application/json")
    return manager


_UPDATE_FIELDS = {
    "TRIAL_CONCURRENCY": ("trialConcurrency", "trial_concurrency"),
    "MAX_TRIAL_NUM": ("maxTrialNumber", "max_trial_number"),
    "MAX_EXEC_DURATION": ("maxExperimentDuration", "max_experiment_duration"),
    "SEARCH_SPACE": ("searchSpace", "search_space"),
}


async def update_experiment(request: web.Request) -> web.Response:
    manager = _live(request)
    update_type = request.query.get("update_type", "")
    if update_type not in _UPDATE_FIELDS:
        return _error(400, f"update_type must be one of {', '.join(_UPDATE_FIELDS)}, got {update_type!r}")
    key, attr = _UPDATE_FIELDS[update_type]
    try:
        body = await request.json()
        value = (body.get("params") or body)[key]
    except (ValueError, KeyError, AttributeError, TypeError):
        return _error(400, f"body must be the experiment profile with params.{key}")
    try:
        value = _validate_update(attr, value)
        await manager.update(**{attr: value})
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response({})


def _validate_update(attr: str, value: Any) -> Any:
    if attr in ("trial_concurrency", "max_trial_number"):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            name = "trialConcurrency" if attr == "trial_concurrency" else "maxTrialNumber"
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        return value
    if attr == "max_experiment_duration":
        from ..experiment.config import parse_duration
        return parse_duration(value, "maxExperimentDuration")
    from ..search_space import load_search_space, validate_search_space
    space = load_search_space(value)
    validate_search_space(space)
    return space


async def stop_experiment(request: web.Request) -> web.Response:
    stop_view = request.app[STOP_VIEW_KEY]
    if request.app[MANAGER_KEY] is None and stop_view is not None:
        stop_view.set()   # ``nnictl view`` ends its read-only server this way
        return web.json_response({"status": "STOPPED"})
    manager = _live(request)
    await manager.stop()
    return web.json_response({"status": manager.status})


async def import_data(request: web.Request) -> web.Response:
    """Give the tuner prior results: a JSON list of {"parameter": {...}, "value": ...}."""
    manager = _live(request)
    try:
        data = await request.json()
    except ValueError:
        return _error(400, "body must be a JSON list of {\"parameter\": {...}, \"value\": ...}")
    if not isinstance(data, list):
        return _error(400, f"body must be a JSON list of results, got {type(data).__name__}")
    try:
        count = await manager.import_data(data)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response({"imported": count})


async def cancel_trial_job(request: web.Request) -> web.Response:
    manager = _live(request)
    trial_id = request.match_info["trial_id"]
    if trial_id not in manager.trials:
        return _error(404, f"no trial {trial_id!r} in this experiment")
    killed = await manager.kill_trial(trial_id, "USER_CANCELED")
    if not killed:
        return _error(409, f"trial {trial_id} is not running (it is {manager.trials[trial_id].status})")
    return web.json_response({})


# -- trial channel ----------------------------------------------------------------------------
async def _trial_request(request: web.Request) -> tuple[Any, Any, dict[str, Any]]:
    manager = _live(request)
    auth = request.headers.get("Authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    trial = manager.authenticate(request.match_info["trial_id"], token)
    if trial is None:
        raise web.HTTPForbidden(text="unknown trial or wrong token")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON")
    return manager, trial, body


async def trial_parameter(request: web.Request) -> web.Response:
    manager, trial, body = await _trial_request(request)
    try:
        index = int(body.get("index", 0))
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        record = await manager.next_parameter(trial, index)
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad parameter request: {exc}")
    return web.json_response(record)


async def trial_metric(request: web.Request) -> web.Response:
    manager, trial, body = await _trial_request(request)
    try:
        await manager.report_metric(trial, body.get("parameter_id"), body.get("type"),
                                    int(body.get("sequence", 0)), body["value"])
    except (KeyError, ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"bad metric: {exc}")
    return web.json_response(None)


def build_app(store: Store, manager: Any = None, stop_view: Any = None) -> web.Application:
    """The aiohttp application; ``manager`` None serves a stopped experiment read-only.

    ``stop_view``, an asyncio.Event, is set by a stop request in read-only mode.
    """
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STORE_KEY] = store
    app[MANAGER_KEY] = manager
    app[STOP_VIEW_KEY] = stop_view
    app.add_routes([
        web.get(f"{API}/version", version),
        web.get(f"{API}/check-status", check_status),
        web.get(f"{API}/experiment", get_experiment),
        web.put(f"{API}/experiment", update_experiment),
        web.delete(f"{API}/experiment", stop_experiment),
        web.get(f"{API}/trial-jobs", list_trial_jobs),
        web.get(f"{API}/trial-jobs/{{trial_id}}", get_trial_job),
        web.delete(f"{API}/trial-jobs/{{trial_id}}", cancel_trial_job),
        web.get(f"{API}/metric-data", metric_data),
        web.get(f"{API}/metric-data/{{trial_id}}", metric_data),
        web.get(f"{API}/export-data", export_data),
        web.get(f"{API}/pareto-front", pareto_front),
        web.get(f"{API}/pareto-front/hypervolume", pareto_hypervolume),
        web.post(f"{API}/experiment/import-data", import_data),
        web.get(f"{API}/job-statistics", job_statistics),
        web.get(f"{API}/progress", progress),
        web.post(f"{TRIAL_API}/{{trial_id}}/parameter", trial_parameter),
        web.post(f"{TRIAL_API}/{{trial_id}}/metric", trial_metric),
    ])
    from .webui import add_webui_routes   # the web UI and its JSON endpoints (nni/manager/webui)
    add_webui_routes(app)
    from .pareto_page import add_pareto_page   # /pareto: the Pareto-front page (multi-objective)
    add_pareto_page(app)
    return app
