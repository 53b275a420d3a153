"""The REST API: NNI's ``/api/v1/nni`` routes for clients, ``/api/v1/trial`` for trials.

Read routes answer from the SQLite store, so the same handlers serve a live experiment
and a stopped one opened read-only. Shapes follow NNI's so NNI clients keep working:
times are epoch milliseconds, metric ``data`` is a JSON-encoded JSON string.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, NamedTuple

from aiohttp import web

from ..errors import BadRequest, Conflict, Forbidden, NniError, NotFound
from . import read_model
from ._app_keys import API, MANAGER_KEY, STOP_VIEW_KEY, STORE_KEY, TRIAL_API
from ._errors import error_body, error_middleware, error_status
from ._security import allowed_host_set, security_middleware
from .experiment_dir import ExperimentDir
from .pareto_page import PARETO_ANSWERS_KEY, add_pareto_page
from .secret import load_or_create_secret
from .store import Store
from .webui import add_webui_routes

# The largest request body accepted (413 above it): 16 MiB holds ~100k imported results.
MAX_BODY_BYTES = 16 * 1024 * 1024


# -- read routes (store) ---------------------------------------------------------------------
async def check_status(request: web.Request) -> web.Response:
    """NNI's ``{status, errors}``, plus ``warnings`` (e.g. ``all 4 trials failed; last: ...``) and
    ``trialsWithoutFinalResult``."""
    return web.json_response(read_model.check_status(request.app[STORE_KEY], request.app[MANAGER_KEY]))


async def version(request: web.Request) -> web.Response:
    from .. import __version__
    return web.json_response(__version__)


async def get_experiment(request: web.Request) -> web.Response:
    profile = read_model.experiment_profile(request.app[STORE_KEY], request.app[MANAGER_KEY])
    if request.app[MANAGER_KEY] is None:
        profile["status"] = "VIEWED"    # what check-status and nnictl say while it is viewed
    return web.json_response(profile)


# The largest page of a paged read route (``?limit=``); SQLite caps bound variables at 32766.
MAX_PAGE = 10_000


class Page(NamedTuple):
    """``?offset=&limit=`` or ``?after=&limit=`` of a paged read route."""
    offset: int = 0
    limit: int | None = None
    after: int | None = None     # keyset: the sort key (metric id, trial sequence id) to start past


def page_args(request: web.Request) -> Page:
    """The page a read route was asked for (400 naming the field when a value is not fit)."""
    values: dict[str, int | None] = {"offset": None, "limit": None, "after": None}
    for name in values:
        text = request.query.get(name)
        if text is None:
            continue
        try:
            number = int(text)
        except ValueError:
            number = -1
        upper = MAX_PAGE if name == "limit" else _INT64_MAX
        if not 0 <= number <= upper:
            raise BadRequest(f"{name}: expected an integer from 0 to {upper}, got {_short(text)}")
        values[name] = number
    if values["after"] is not None and values["offset"] is not None:
        raise BadRequest("after: give either after (a keyset page) or offset, not both")
    return Page(values["offset"] or 0, values["limit"], values["after"])


def _paged(request: web.Request, body: list[dict[str, Any]], page: Page, last_key: int | None) -> web.Response:
    """The JSON answer of a paged route; a full page links to the next keyset page
    (``Link: <...?after=KEY&limit=N>; rel="next"``, RFC 8288), so a client follows links
    until a page comes without one."""
    response = web.json_response(body)
    if page.limit and len(body) == page.limit and last_key is not None:
        query = {k: v for k, v in request.query.items() if k != "offset"}
        query.update(after=str(last_key), limit=str(page.limit))
        response.headers["Link"] = f'<{request.rel_url.with_query(query)}>; rel="next"'
    return response


# Trials per chunk of the unpaged list: built and sent one keyset page at a time.
TRIAL_CHUNK = 1000


async def list_trial_jobs(request: web.Request) -> web.StreamResponse:
    page = page_args(request)
    store, status = request.app[STORE_KEY], request.query.get("status")
    if page.limit is None and not page.offset:
        return await _stream_trial_jobs(request, store, status, page.after)
    jobs = read_model.trial_jobs(store, status, offset=page.offset, limit=page.limit, after=page.after)
    return _paged(request, jobs, page, jobs[-1]["sequenceId"] if jobs else None)


async def _stream_trial_jobs(request: web.Request, store: Store, status: str | None,
                             after: int | None) -> web.StreamResponse:
    """The whole trial list (NNI's answer), streamed a chunk of trials at a time: 100,000
    trials no longer make a ~900 MB peak of dicts and one giant string in the manager."""
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    separator = b"["
    while True:
        jobs = read_model.trial_jobs(store, status, limit=TRIAL_CHUNK, after=after)
        if jobs:
            await response.write(separator + b", ".join(json.dumps(job).encode() for job in jobs))
            separator = b", "
        if len(jobs) < TRIAL_CHUNK:
            break
        after = jobs[-1]["sequenceId"]
    await response.write(b"[]" if separator == b"[" else b"]")
    await response.write_eof()
    return response


async def get_trial_job(request: web.Request) -> web.Response:
    trial_id = request.match_info["trial_id"]
    job = read_model.trial_job(request.app[STORE_KEY], trial_id)
    if job is None:
        raise NotFound(f"no trial {trial_id!r} in this experiment")
    return web.json_response(job)


async def metric_data(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    trial_id = request.match_info.get("trial_id")
    page = page_args(request)
    rows = store.metrics(trial_id, offset=page.offset, limit=page.limit, after=page.after)
    return _paged(request, [read_model.metric_json(m) for m in rows], page, rows[-1]["id"] if rows else None)


# Rows per chunk of a streamed export: one short read and one write to the socket.
EXPORT_CHUNK_ROWS = 2000


async def export_data(request: web.Request) -> web.StreamResponse:
    """The export as one JSON list, streamed a chunk of rows at a time, so its memory does not
    grow with the experiment.

    Each chunk is one keyset page (final results after the last id sent), read and encoded on
    a worker thread from a read connection of the export's own, in its own short snapshot:
    no read transaction stays open while the client takes its time.  One snapshot held across
    the writes would pin the WAL: a client that stops reading would stop every checkpoint and
    the WAL would grow as long as trials report.  Results only ever get higher ids, so the
    pages together are every result committed before the last page was read, once each.
    """
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    db = await asyncio.to_thread(request.app[STORE_KEY].reader)
    try:
        separator, after = b"[", -1
        while True:
            chunk, after, count = await asyncio.to_thread(_export_chunk, db, after)
            if count:
                await response.write(separator + chunk)
                separator = b","
            if count < EXPORT_CHUNK_ROWS:
                break
        await response.write(b"[]" if separator == b"[" else b"]")
    finally:
        db.close()
    await response.write_eof()
    return response


def _export_chunk(db: Any, after: int) -> tuple[bytes, int, int]:
    """The export rows after metric id ``after`` (one page), JSON-encoded; with the page's last
    id and its length.  ``fetchall`` ends the statement, and with it the read snapshot."""
    rows = read_model.export_page(db, after, EXPORT_CHUNK_ROWS)
    chunk = b",".join(json.dumps(read_model.export_row(r)).encode() for r in rows)
    return chunk, (rows[-1][5] if rows else after), len(rows)


async def pareto_front(request: web.Request) -> web.Response:
    """Our addition: the non-dominated final results of a multi-objective experiment
    (export-data rows plus ``objectives``); 409 when the config has no ``objectives``.
    Worked out on a worker thread (``_objectives.ParetoAnswers``)."""
    return _pareto_answer(await request.app[PARETO_ANSWERS_KEY].front(_live_config(request)))


async def pareto_hypervolume(request: web.Request) -> web.Response:
    """Our addition: the front's hypervolume as results arrived (see ``_objectives.hypervolume_history``),
    worked out on a worker thread: seconds of CPU for thousands of results."""
    return _pareto_answer(await request.app[PARETO_ANSWERS_KEY].hypervolume(_live_config(request)))


async def pareto_infeasible(request: web.Request) -> web.Response:
    """Our addition: the final results that hold every objective but violate the config's
    ``constraints`` (rows as ``/pareto-front``'s; ``[]`` without constraints); 409 without ``objectives``."""
    return _pareto_answer(await request.app[PARETO_ANSWERS_KEY].infeasible(_live_config(request)))


def _live_config(request: web.Request) -> dict | None:
    """The running experiment's config (it can be updated), or None: the stored one."""
    manager = request.app[MANAGER_KEY]
    return manager.config.to_dict() if manager is not None else None


def _pareto_answer(answer: str | None) -> web.Response:
    """``answer`` (JSON text), or 409 for an experiment without ``objectives`` (None)."""
    if answer is None:
        raise Conflict("objectives: this experiment has no 'objectives' in its config, so no Pareto front")
    return web.Response(text=answer, content_type="application/json")


async def job_statistics(request: web.Request) -> web.Response:
    return web.json_response(read_model.job_statistics(request.app[STORE_KEY]))


async def progress(request: web.Request) -> web.Response:
    """Our addition: a cheap summary that long-polls (``?since=VERSION&timeout=SECONDS``).

    ``&until=ended`` waits for the experiment's end instead of any change.
    """
    manager = request.app[MANAGER_KEY]
    if manager is None:
        raise Conflict("experiment is not running (view mode)")
    try:
        since = int(request.query.get("since", "-1"))
        timeout = min(float(request.query.get("timeout", "0")), 30.0)
    except ValueError:
        raise BadRequest("since must be an integer and timeout a number of seconds") from None
    until_ended = request.query.get("until") == "ended"
    if timeout > 0 and (until_ended or manager.version <= since):
        await manager.wait_for_change(since, timeout, until_ended=until_ended)
    return web.json_response(manager.progress())


# -- control routes (live manager) ------------------------------------------------------------
def _live(request: web.Request) -> Any:
    manager = request.app[MANAGER_KEY]
    if manager is None:
        raise Conflict("experiment is read-only (view mode)")
    return manager


_UPDATE_FIELDS = {
    "TRIAL_CONCURRENCY": ("trialConcurrency", "trial_concurrency"),
    "MAX_TRIAL_NUM": ("maxTrialNumber", "max_trial_number"),
    "MAX_EXEC_DURATION": ("maxExperimentDuration", "max_experiment_duration"),
    "SEARCH_SPACE": ("searchSpace", "search_space"),
}
# Nesting deeper than this is refused (400) before anything recurses over it.
MAX_JSON_DEPTH = 100
# import-data: at most this many results per request (split bigger files).
MAX_IMPORT_ROWS = 100_000


def json_depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests at most ``limit`` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_json_text(text: str | bytes, what: str) -> Any:
    """``json.loads`` that answers every malformed, overflowing or too deep input with BadRequest."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequest(f"{what}: JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, TypeError) as exc:   # UnicodeDecodeError is a ValueError
        raise BadRequest(f"{what}: not valid JSON ({exc})") from None
    if not json_depth_ok(value):
        raise BadRequest(f"{what}: JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return value


async def read_json(request: web.Request, what: str = "body") -> Any:
    return parse_json_text(await request.read(), what)


async def update_experiment(request: web.Request) -> web.Response:
    manager = _live(request)
    update_type = request.query.get("update_type", "")
    if update_type not in _UPDATE_FIELDS:
        raise BadRequest(f"update_type must be one of {', '.join(_UPDATE_FIELDS)}, got {update_type!r}")
    key, attr = _UPDATE_FIELDS[update_type]
    body = await read_json(request)
    params = body.get("params", body) if isinstance(body, dict) else None
    if not isinstance(params, dict) or key not in params:
        raise BadRequest(f"params.{key}: missing; the body must be the experiment profile "
                         f"(or {{\"params\": {{\"{key}\": ...}}}})")
    from ..experiment.config import ConfigError, ExperimentConfig
    try:
        value = ExperimentConfig.canonical_field(attr, params[key], builtin_tuner=manager.has_builtin_tuner())
    except ConfigError as exc:   # its message names the field; the client sent it under params
        raise BadRequest(f"params.{exc}") from exc
    try:
        await manager.update(**{attr: value})
    except ValueError as exc:    # a value the manager cannot honour now, or one the tuner refused
        raise BadRequest(f"params.{key}: {exc}") from exc
    return web.json_response({})


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
    data = await read_json(request)
    if not isinstance(data, list):
        raise BadRequest(f"body must be a JSON list of results, got {type(data).__name__}")
    if len(data) > MAX_IMPORT_ROWS:
        raise BadRequest(f"body: {len(data)} results in one request; at most {MAX_IMPORT_ROWS}, "
                         "send the rest in further requests")
    rows = [check_import_row(i, row) for i, row in enumerate(data)]
    try:
        count = await manager.import_data(rows)
    except ValueError as exc:    # rows the manager or the tuner refused (BadRequest included)
        raise BadRequest(str(exc)) from exc
    return web.json_response({"imported": count})


def check_import_row(index: int, row: Any) -> dict[str, Any]:
    """One imported result: an object with a ``parameter`` object and a finite ``value``."""
    where = f"[{index}]"
    if not isinstance(row, dict) or "parameter" not in row or "value" not in row:
        raise BadRequest(f"{where}: each imported entry must be an object with 'parameter' and 'value'")
    if not isinstance(row["parameter"], dict):
        raise BadRequest(f"{where}.parameter: expected an object, got {type(row['parameter']).__name__}")
    from .manager import finite_metric
    if not finite_metric(row["value"]):
        raise BadRequest(f"{where}.value: expected a finite number or an object with a finite number "
                         f"under 'default', got {_short(row['value'])}")
    return {"parameter": row["parameter"], "value": row["value"]}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def imported_data(request: web.Request) -> web.Response:
    """What was imported, as NNI answers: one JSON string per import (a list of {parameter, value})."""
    return web.json_response(request.app[STORE_KEY].imported_batches())


async def cancel_trial_job(request: web.Request) -> web.Response:
    manager = _live(request)
    trial_id = request.match_info["trial_id"]
    if trial_id not in manager.trials:
        raise NotFound(f"no trial {trial_id!r} in this experiment")
    killed = await manager.kill_trial(trial_id, "USER_CANCELED")
    if not killed:
        raise Conflict(f"trial {trial_id} is not running (it is {manager.trials[trial_id].status})")
    return web.json_response({})


async def rerun_trial_jobs(request: web.Request) -> web.Response:
    """Run ended trials again as new attempts: ``{"trialJobIds": [...]}`` or ``{"status": "FAILED"}``,
    optional ``"extendBudget": true``. Answers ``{"rerun": [ids], "skipped": [{trialJobId, reason}]}``."""
    manager = _live(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object with trialJobIds or status, got {type(body).__name__}")
    ids, status, extend = body.get("trialJobIds"), body.get("status"), body.get("extendBudget", True)
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise BadRequest(f"trialJobIds: expected a list of trial ids, got {_short(ids)}")
    if status is not None and not isinstance(status, str):
        raise BadRequest(f"status: expected a trial status string, got {_short(status)}")
    if not isinstance(extend, bool):
        raise BadRequest(f"extendBudget: expected true or false, got {_short(extend)}")
    # a RerunError carries the status it is answered with (404 unknown trial, 409 state)
    return web.json_response(await manager.rerun_trials(ids, status, extend))


# -- trial channel ----------------------------------------------------------------------------
# The header a trial's channel sends with each request: its attempt, process and a sequence
# number (nni.runtime.channel). The same value again is a retry, answered with the first answer.
REQUEST_ID_HEADER = "Nni-Request"
_REQUEST_ID_MAX = 100


async def _trial_request(request: web.Request) -> tuple[Any, Any, dict[str, Any], bytes]:
    """The live manager, the authenticated trial, its JSON object body and the raw body."""
    manager = _live(request)
    auth = request.headers.get("Authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    trial = manager.authenticate(request.match_info["trial_id"], token)
    if trial is None:
        if manager.fenced(request.match_info["trial_id"], token):
            # An earlier attempt (declared lost, then run again) still talks: never store its reports.
            raise Conflict("this attempt of the trial was superseded by a newer one; its reports are refused")
        raise Forbidden("unknown trial or wrong token")
    raw = await request.read()
    body = parse_json_text(raw, "body")
    if not isinstance(body, dict):
        raise BadRequest(f"body: expected a JSON object, got {type(body).__name__}")
    return manager, trial, body, raw


def _trial_route(action: Any) -> Any:
    """A trial route: authenticated, and answered once per request id (a retry gets the first
    answer, refusals included, even while the first is still being worked out)."""
    async def handler(request: web.Request) -> web.Response:
        manager, trial, body, raw = await _trial_request(request)

        async def answer() -> tuple[int, Any]:
            try:
                return 200, await action(manager, trial, body)
            except NniError as exc:   # a refusal is an answer too: the retry must get the same one
                return error_status(exc), error_body(str(exc))

        request_id = request.headers.get(REQUEST_ID_HEADER)
        if request_id is None or len(request_id) > _REQUEST_ID_MAX:
            status, payload = await answer()
        else:
            key = (trial.trial_id, trial.attempt, request_id)
            status, payload = await manager.channel.replies.once(key, hash(raw), answer)
        return web.json_response(payload, status=status)
    handler.__name__ = getattr(action, "__name__", "trial_route")
    return handler


# Ids and counters are stored as SQLite integers (signed 64 bits).
_INT64_MAX = 2**63 - 1


def _int_field(body: dict[str, Any], name: str, default: Any, *, allow_none: bool = False) -> Any:
    value = body.get(name, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
        raise BadRequest(f"{name}: expected an integer from 0 to 2**63-1, got {_short(value)}")
    return value


@_trial_route
async def trial_parameter(manager: Any, trial: Any, body: dict[str, Any]) -> Any:
    return await manager.next_parameter(trial, _int_field(body, "index", 0))


@_trial_route
async def trial_metric(manager: Any, trial: Any, body: dict[str, Any]) -> Any:
    parameter_id = _int_field(body, "parameter_id", None, allow_none=True)
    sequence = _int_field(body, "sequence", 0)
    metric_type = body.get("type")
    if metric_type not in ("FINAL", "PERIODICAL"):
        raise BadRequest(f"type: must be FINAL or PERIODICAL, got {_short(metric_type)}")
    value = body.get("value")
    if not isinstance(value, str):
        raise BadRequest(f"value: expected the metric as a JSON string, got {_short(value)}")
    parse_json_text(value, "value")
    warning = await manager.report_metric(trial, parameter_id, metric_type, sequence, value)
    return {"warning": warning} if warning else None   # the trial writes it to its stderr


@_trial_route
async def trial_lease(manager: Any, trial: Any, body: dict[str, Any]) -> Any:
    """The trial's side renews its attempt's lease (``{"machine": name}`` optional)."""
    machine = body.get("machine")
    return {"timeout": manager.renew_lease(trial, machine if isinstance(machine, str) and machine else None)}


def build_app(store: Store, manager: Any = None, stop_view: Any = None, *,
              secret: str | None = None) -> web.Application:
    """The aiohttp application; ``manager`` None serves a stopped experiment read-only.

    ``stop_view``, an asyncio.Event, is set by a stop request in read-only mode.
    ``secret`` is what client routes ask for (default: the experiment directory's
    ``secret`` file, created if missing); see ``_security`` for the checks.
    """
    experiment_dir = ExperimentDir.of_database(store.path).path
    if secret is None:
        secret = load_or_create_secret(experiment_dir)
    config = read_model.current_config(store, manager)
    experiment_id = manager.id if manager is not None else store.get_meta("id", experiment_dir.name)
    hosts = allowed_host_set([config.get("nniManagerIp"), *(config.get("allowedHosts") or [])])
    # The error mapping is outermost: whatever the security checks or a handler raise gets it.
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[
        error_middleware,
        security_middleware(secret=secret, experiment_id=str(experiment_id), allowed_hosts=hosts)])
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
        web.post(f"{API}/trial-jobs/rerun", rerun_trial_jobs),
        web.get(f"{API}/metric-data", metric_data),
        web.get(f"{API}/metric-data/{{trial_id}}", metric_data),
        web.get(f"{API}/export-data", export_data),
        web.get(f"{API}/pareto-front", pareto_front),
        web.get(f"{API}/pareto-front/hypervolume", pareto_hypervolume),
        web.get(f"{API}/pareto-front/infeasible", pareto_infeasible),
        web.post(f"{API}/experiment/import-data", import_data),
        web.get(f"{API}/experiment/imported-data", imported_data),
        web.get(f"{API}/job-statistics", job_statistics),
        web.get(f"{API}/progress", progress),
        web.post(f"{TRIAL_API}/{{trial_id}}/parameter", trial_parameter),
        web.post(f"{TRIAL_API}/{{trial_id}}/metric", trial_metric),
        web.post(f"{TRIAL_API}/{{trial_id}}/lease", trial_lease),
    ])
    add_webui_routes(app)   # the web UI and its JSON endpoints (nni/manager/webui), mounted as a unit
    add_pareto_page(app)    # /pareto: the Pareto-front page (multi-objective)
    return app
