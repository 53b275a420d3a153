"""HTTP routes of the web UI: its static files, plotly.js (basic and full), and the JSON endpoints it reads.

Everything here reads the store (through :class:`~.queries.UiData`) and works the same
for a live experiment and a stopped one served read-only (``manager`` None); changes go
through the existing REST routes (``PUT /experiment``, ``DELETE /trial-jobs/{id}``).
The JSON endpoints are documented in ``docs/rest_api.md`` ("Web UI endpoints").
"""

from __future__ import annotations

import asyncio
import csv
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..experiment_dir import ExperimentDir
from .._app_keys import API, MANAGER_KEY, STORE_KEY
from ..read_model import public_config, stored_optimize_mode
from . import experiments
from .importance import importance
from .queries import ALL_STATES, QueryError, UiData

UI_API = f"{API}/ui"
STATIC_DIR = Path(__file__).parent / "static"
# plotly.js's basic partial bundle (scatter, bar, pie), vendored: it draws every chart but the
# parallel coordinates, which load the full bundle from the plotly package (static/vendor/README.md).
PLOTLY_BASIC_VERSION = "4.1.1"
PLOTLY_BASIC = STATIC_DIR / "vendor" / f"plotly-basic-{PLOTLY_BASIC_VERSION}.min.js"
PLOTLY_BASIC_URL = f"/webui/plotly-basic-{PLOTLY_BASIC_VERSION}.min.js"
UI_DATA_KEY = web.AppKey("webui_data", UiData)
SHUTDOWN_KEY = web.AppKey("webui_shutdown", asyncio.Event)
VIEW_CACHE_KEY = web.AppKey("webui_view_cache", dict)
WARM_KEY = web.AppKey("webui_warm_up", asyncio.Future)   # facts of a read-only experiment, worked out once
WARM_GATE_KEY = web.AppKey("webui_warm_up_gate", asyncio.Event)
PAGE_SERVED_KEY = web.AppKey("webui_page_served", asyncio.Event)   # a browser asked for the UI
# The warm-up's last step waits until the UI's worker has had nothing to do for this long.
WARM_IDLE_SECONDS = 1.0


def defer_warm_up(app: web.Application) -> asyncio.Event:
    """Hold the warm-up (below) until the returned event is set: the launcher sets it once the
    manager runs, so a resume of 100,000 trials does not share the CPU with the UI's snapshot."""
    gate = app[WARM_GATE_KEY] = asyncio.Event()
    return gate
LOG_STREAMS = ("stdout", "stderr")
LOG_DEFAULT_BYTES = 64 * 1024
LOG_MAX_BYTES = 1024 * 1024
# The most rows of the trials table one /ui/trials page holds (the NNI-shaped routes' pages,
# rest.MAX_PAGE, go to 10,000: they serve scripts, this one a browser table).
UI_TABLE_MAX_ROWS = 1000
# NNI's page paths, sent to the matching page of this UI.
_REDIRECTS = {"/oview": "overview", "/overview": "overview", "/detail": "trials", "/trials": "trials",
              "/trialsDetail": "trials", "/charts": "charts"}


MODE_KEY = web.AppKey("webui_mode", str)   # "experiment" (a manager's UI) or "standalone" (nnictl webui)


def add_ui_shell(app: web.Application, mode: str = "experiment") -> None:
    """The page itself, its static files and plotly.js: what every UI server serves."""
    app[MODE_KEY] = mode
    app[PAGE_SERVED_KEY] = asyncio.Event()
    app.add_routes([
        web.get("/", index),
        web.get("/webui/plotly.min.js", plotly_js),
        web.get(PLOTLY_BASIC_URL, plotly_basic_js),
        web.get("/webui/plotly-{version}.min.js", plotly_js),
        web.get("/webui/static/{path:.+}", static_file),
    ])


def add_experiments_routes(app: web.Application) -> None:
    """Every experiment of this user, and 2-8 of them side by side (experiments.py)."""
    app.add_routes([
        web.get(f"{UI_API}/experiments", ui_experiments),
        web.get(f"{UI_API}/experiments/compare", ui_experiments_compare),
    ])


def add_webui_routes(app: web.Application) -> None:
    """Register the UI on ``app`` (built by ``rest.build_app``, which holds the store and manager)."""
    add_ui_shell(app)
    app.add_routes([
        *[web.get(path, _redirect(page)) for path, page in _REDIRECTS.items()],
        web.get(f"{UI_API}/overview", ui_overview),
        web.get(f"{UI_API}/trials", ui_trials),
        web.get(f"{UI_API}/trials/{{trial_id}}/log", ui_trial_log),
        web.get(f"{UI_API}/chart-data", ui_chart_data),
        web.get(f"{UI_API}/metric-series", ui_metric_series),
        web.get(f"{UI_API}/intermediate", ui_intermediate),
        web.get(f"{UI_API}/importance", ui_importance),
        web.get(f"{UI_API}/trials-export", ui_trials_export),
        web.get(f"{UI_API}/manager-log", ui_manager_log),
        web.get(f"{UI_API}/imported", ui_imported),
    ])
    add_experiments_routes(app)
    app[UI_DATA_KEY] = UiData(app[STORE_KEY].path)
    app[SHUTDOWN_KEY] = asyncio.Event()
    app[VIEW_CACHE_KEY] = {}
    app.middlewares.append(_long_poll_guard)
    app.on_startup.append(_warm_up)
    app.on_shutdown.append(_shutting_down)
    app.on_cleanup.append(_close)


@web.middleware
async def _long_poll_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer a held ``progress`` request at once when the server shuts down.

    A browser keeps one long-poll open; without this, stopping the experiment would wait
    for it to time out (aiohttp lets running handlers finish). The UI shows the 503 as
    the manager going away.
    """
    if request.path != f"{API}/progress":
        return await handler(request)
    shutdown = request.app[SHUTDOWN_KEY]
    if shutdown.is_set():
        return _error(503, "the experiment manager is shutting down")
    task = asyncio.ensure_future(handler(request))
    waiter = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return _error(503, "the experiment manager is shutting down")


async def _warm_up(app: web.Application) -> None:
    """Work the first page would wait for, started in the background as the server starts:
    plotly.js's basic bundle compressed, the UI's snapshot of the store and the metric chart's
    data (what the overview's first chart draws; under a second together for 100,000 trials);
    then, once the first page's requests are answered, the full plotly.js bundle compressed."""
    async def snapshot() -> None:
        gate = app.get(WARM_GATE_KEY)
        if gate is not None:
            await gate.wait()
        loop = asyncio.get_running_loop()

        async def assets() -> None:
            # metadata and file look-ups: tens of milliseconds, not for the loop
            await asyncio.to_thread(plotly_url)
            if PLOTLY_BASIC not in _ASSETS:   # every page that draws needs it first
                await loop.run_in_executor(None, _asset, PLOTLY_BASIC)
        data = app[UI_DATA_KEY]
        try:
            # beside each other: the snapshot is worked out in the UI's worker thread
            await asyncio.gather(assets(), _metric_series_payload(app))
        except Exception:  # noqa: BLE001 - only a head start: the first request will say what is wrong
            pass
        # Not the whole chart data: the UI's requests share one worker thread, and a second of
        # work for 100,000 trials would hold up whatever page is asked for meanwhile (the charts
        # page asks for it itself, after its first chart). The full plotly.js (parallel
        # coordinates only) once a browser has the first page and its requests are answered:
        # not the browser's CPU time then, and never for an experiment nobody looks at
        # (~0.15 s of CPU that its trials would have shared).
        await app[PAGE_SERVED_KEY].wait()
        await data.until_idle(WARM_IDLE_SECONDS)
        path = plotly_path()
        if path.is_file() and path not in _ASSETS:
            await loop.run_in_executor(None, _asset, path)
    app[WARM_KEY] = asyncio.ensure_future(snapshot())


async def _shutting_down(app: web.Application) -> None:
    app[SHUTDOWN_KEY].set()


async def _close(app: web.Application) -> None:
    warm = app.get(WARM_KEY)
    if warm is not None:
        warm.cancel()
    data = app.get(UI_DATA_KEY)
    if data is not None:
        data.close()


def _data(request: web.Request) -> UiData:
    return request.app[UI_DATA_KEY]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# -- pages and static files --------------------------------------------------------------------
@dataclass(frozen=True)
class _Asset:
    """A file held in memory with its gzip form, worked out once (the UI's files never change
    while a manager runs; an upgrade means a new process)."""

    body: bytes
    packed: bytes
    etag: str
    content_type: str


_ASSETS: dict[Path, _Asset] = {}


def _asset(path: Path, body: bytes | None = None) -> _Asset:
    hit = _ASSETS.get(path)
    if hit is None:
        raw = path.read_bytes() if body is None else body
        kind = "text/javascript" if path.suffix == ".js" else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        if kind.startswith("text/") or path.suffix in (".js", ".svg", ".json"):
            kind += "; charset=utf-8"
        hit = _Asset(raw, gzip.compress(raw, compresslevel=6, mtime=0), '"' + hashlib.sha1(raw).hexdigest()[:16] + '"', kind)
        _ASSETS[path] = hit
    return hit


def _send(request: web.Request, asset: _Asset, cache_control: str) -> web.Response:
    """The asset, gzipped when the browser accepts it; 304 when its copy is current."""
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = asset.packed
    else:
        body = asset.body
    return web.Response(body=body, headers={**headers, "Content-Type": asset.content_type})


async def index(request: web.Request) -> web.Response:
    """The single page; the browser routes between its pages by the address's #fragment.

    It names both plotly.js bundles by versioned addresses, so the browser keeps them for good,
    and says whether it serves one experiment or (``nnictl webui``) only the experiments pages.
    """
    mode = request.app.get(MODE_KEY, "experiment")
    request.app[PAGE_SERVED_KEY].set()
    path = STATIC_DIR / "index.html"
    key = path.with_name(f"index.{mode}.html")   # one cached copy per mode
    if key not in _ASSETS:
        text = (path.read_text().replace("{{PLOTLY_URL}}", plotly_url())
                .replace("{{PLOTLY_BASIC_URL}}", PLOTLY_BASIC_URL).replace("{{UI_MODE}}", mode))
        _asset(key, text.encode())
    return _send(request, _ASSETS[key], "no-cache")


async def static_file(request: web.Request) -> web.Response:
    """The UI's own modules and styles: small, compressed, revalidated (an upgrade shows at once)."""
    name = request.match_info["path"]
    if "\0" in name:   # no file has one, and the OS refuses it (ValueError) rather than saying "no such file"
        raise web.HTTPNotFound()
    relative = Path(name)
    try:
        path = (STATIC_DIR / relative).resolve()
        found = ".." not in relative.parts and path.is_relative_to(STATIC_DIR.resolve()) and path.is_file()
    except OSError:     # a name too long for the file system is not a file of ours either
        found = False
    if not found:
        raise web.HTTPNotFound()
    return _send(request, _asset(path), "no-cache")


def _redirect(page: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/#/{page}")
    return handler


@functools.lru_cache(maxsize=1)
def plotly_path() -> Path:
    """plotly.js as shipped inside the ``plotly`` Python package.

    Found without importing ``plotly`` (its import held the event loop for 100-150 ms on the
    first page load), and remembered: the package does not move while the manager runs.
    """
    spec = importlib.util.find_spec("plotly")
    origin = spec.origin if spec is not None and spec.origin else "plotly/__init__.py"
    return Path(origin).parent / "package_data" / "plotly.min.js"


@functools.lru_cache(maxsize=1)
def plotly_url() -> str:
    """plotly.js's address, versioned by the installed plotly package (a new one, a new address)."""
    try:
        from importlib.metadata import version
        tag = version("plotly")
    except Exception:  # noqa: BLE001 - no metadata (a vendored copy): the file's size will do
        tag = str(plotly_path().stat().st_size) if plotly_path().is_file() else "0"
    return f"/webui/plotly-{tag}.min.js"


async def plotly_js(request: web.Request) -> web.Response:
    """plotly.js from the installed ``plotly`` package (no CDN), gzipped once (4.8 MB -> 1.4 MB).

    The versioned address is cached by the browser for a year (``immutable``: no
    revalidation on reload); the plain one, kept for old links, for a day.
    """
    path = plotly_path()
    if not path.is_file():
        return web.Response(status=404, text=f"plotly.js not found at {path}; reinstall the 'plotly' package")
    asset = _ASSETS.get(path) or await asyncio.get_running_loop().run_in_executor(None, _asset, path)
    versioned = "version" in request.match_info
    return _send(request, asset, "public, max-age=31536000, immutable" if versioned else "public, max-age=86400")


async def plotly_basic_js(request: web.Request) -> web.Response:
    """plotly.js's basic bundle (vendored, 1.2 MB, ~0.4 MB gzipped): cached for good, as the full one."""
    asset = _ASSETS.get(PLOTLY_BASIC) or await asyncio.get_running_loop().run_in_executor(None, _asset, PLOTLY_BASIC)
    return _send(request, asset, "public, max-age=31536000, immutable")


# -- shared context ----------------------------------------------------------------------------
async def _context(request: web.Request) -> dict[str, Any]:
    """Config, status and mode, from the live manager or (read-only) the store's metadata."""
    manager = request.app[MANAGER_KEY]
    data = _data(request)
    if manager is not None:
        return {"config": public_config(manager.config.to_dict()), "status": manager.status, "errors": list(manager.errors),
                "optimizeMode": manager.optimize_mode, "readOnly": False, "manager": manager}
    meta = await data.run(data.meta)
    config = public_config(meta.get("config") or {})
    cache = request.app[VIEW_CACHE_KEY]
    if "optimizeMode" not in cache:   # the stored config does not change
        cache["optimizeMode"] = await data.run(stored_optimize_mode, meta)
    return {"config": config, "status": meta.get("status") or "STOPPED", "errors": meta.get("errors") or [],
            "optimizeMode": cache["optimizeMode"], "readOnly": True, "manager": None, "meta": meta}


# -- JSON endpoints ----------------------------------------------------------------------------
async def ui_overview(request: web.Request) -> web.Response:
    """Everything the overview page shows, in one answer."""
    ctx = await _context(request)
    data = _data(request)
    config = ctx["config"]
    summary = await data.run(data.summary, ctx["optimizeMode"])
    summary["imported"] = await asyncio.to_thread(_imported_summary, request.app[STORE_KEY].path)
    manager = ctx["manager"]
    if manager is not None:
        progress = manager.progress()
        start, end = manager.start_time, manager.end_time
        elapsed, version = progress["elapsed"], progress["version"]
        summary["limitDone"] = progress["limitDone"]
        experiment_id = manager.id
    else:
        meta = ctx["meta"]
        start, end = meta.get("start_time"), meta.get("end_time")
        elapsed = (end - start) if start and end else 0.0
        version, experiment_id = None, meta.get("id")
    return web.json_response({
        "id": experiment_id,
        "name": config.get("experimentName"),
        "status": ctx["status"],
        "errors": ctx["errors"],
        "readOnly": ctx["readOnly"],
        "version": version,
        "startTime": None if start is None else int(start * 1000),
        "endTime": None if end is None else int(end * 1000),
        "elapsed": elapsed,
        "maxExperimentDuration": _seconds(config.get("maxExperimentDuration")),
        "maxTrialNumber": config.get("maxTrialNumber"),
        "trialConcurrency": config.get("trialConcurrency"),
        "limitUnit": "trials",    # maxTrialNumber counts trial jobs, multi-phase ones too (as NNI)
        "optimizeMode": ctx["optimizeMode"],
        "searchSpace": config.get("searchSpace") or {},
        "config": config,
        **summary,
    })


def _imported_summary(database: Path) -> dict[str, Any]:
    """How many results were imported and what each warm start took (``_warm_start``)."""
    from .._warm_start import stored_summary
    from ..store import Store
    store = Store(database, readonly=True)
    try:
        return {"count": store.imported_count(), "warmStart": stored_summary(store.all_meta())}
    finally:
        store.close()


def _imported_rows(database: Path) -> dict[str, Any]:
    from ...utils import extract_scalar_reward
    from ..store import Store
    store = Store(database, readonly=True)
    try:
        rows = store.imported_rows()
    finally:
        store.close()
    keys: dict[str, None] = {}
    for row in rows:
        if isinstance(row["parameter"], dict):
            keys.update(dict.fromkeys(row["parameter"]))
        try:
            row["metric"] = float(extract_scalar_reward(row["value"]))
        except (RuntimeError, TypeError, ValueError):
            row["metric"] = None
    return {"total": len(rows), "parameterKeys": list(keys), "rows": rows}


async def ui_imported(request: web.Request) -> web.Response:
    """The imported results (warm start, ``nnictl experiment import``), with their source: they
    are not trials, so the trials table never lists them; the trials page shows them apart."""
    return web.json_response(await asyncio.to_thread(_imported_rows, request.app[STORE_KEY].path))


def _seconds(duration: Any) -> float | None:
    """A config duration (``"1h"``, ``90``, ...) in seconds; None when unset or unreadable."""
    if duration is None:
        return None
    from ...experiment.config import parse_duration
    try:
        return parse_duration(duration, "maxExperimentDuration")
    except (TypeError, ValueError):
        return None


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise QueryError(f"{name} must be between {low} and {high}, got {value}")
    return value


async def ui_trials(request: web.Request) -> web.Response:
    """A page of the trials table: ``offset``, ``limit``, ``sort``, ``order``, ``status``, ``filter``."""
    data = _data(request)
    query = request.query
    # a QueryError naming a bad value is answered 400 by the error middleware (nni/manager/_errors.py)
    offset = _int_query(request, "offset", 0, 0, 2**62)
    limit = _int_query(request, "limit", 50, 1, UI_TABLE_MAX_ROWS)
    order, statuses = _order_and_statuses(query)
    ctx_space = await _space(request)
    answer = await data.run(data.trials_page, offset=offset, limit=limit, sort=query.get("sort", "sequenceId"),
                            order=order, statuses=statuses, text=query.get("filter", ""), space=ctx_space)
    return web.json_response(answer)


async def _space(request: web.Request) -> dict[str, Any]:
    return await _app_space(request.app)


async def _app_space(app: web.Application) -> dict[str, Any]:
    manager = app[MANAGER_KEY]
    if manager is not None:
        return dict(manager.config.search_space or {})
    data = app[UI_DATA_KEY]
    meta = await data.run(data.meta)
    return (meta.get("config") or {}).get("searchSpace") or {}


async def ui_trial_log(request: web.Request) -> web.Response:
    """The tail of a trial's ``stdout`` or ``stderr`` file (``stream``, ``bytes``); ``download=1``: all of it."""
    data = _data(request)
    trial_id = request.match_info["trial_id"]
    stream = request.query.get("stream", "stdout")
    if stream not in LOG_STREAMS:
        return _error(400, f"stream must be stdout or stderr, got {stream!r}")
    limit = _int_query(request, "bytes", LOG_DEFAULT_BYTES, 1, LOG_MAX_BYTES)
    trial_dir = await data.run(data.trial_dir, trial_id)
    if trial_dir is None:
        return _error(404, f"no trial {trial_id!r} in this experiment")
    path = Path(trial_dir) / stream
    if request.query.get("download"):
        return await _download(request, path, f"{trial_id}-{stream}.log")
    span: tuple[int, int | None] = (0, None)
    extra: dict[str, Any] = {}
    if "attempt" in request.query:
        # Every attempt appends to the same file: this one's part of it (nni-ng).
        attempt = _int_query(request, "attempt", 1, 1, 1_000_000)
        found = await data.run(data.attempt_log_range, trial_id, attempt, stream)
        if found is not None:
            span = found
            extra = {"attempt": attempt, "attemptStart": found[0], "attemptEnd": found[1]}
    answer = await data.run(_read_tail, path, limit, *span)
    return web.json_response({"trialJobId": trial_id, "stream": stream, "path": str(path), **answer, **extra})


def _order_and_statuses(query: Any) -> tuple[str, list[str]]:
    """``?order=asc|desc`` and ``?status=A,B`` of the trials routes (QueryError naming a bad one)."""
    order = query.get("order", "asc").lower()
    if order not in ("asc", "desc"):
        raise QueryError(f"order must be asc or desc, got {order!r}")
    statuses = [s for s in query.get("status", "").split(",") if s]
    unknown = [s for s in statuses if s not in ALL_STATES]
    if unknown:
        raise QueryError(f"unknown status {unknown[0]!r}; statuses: {', '.join(ALL_STATES)}")
    return order, statuses


def _open_in(directory: Path, name: str) -> int:
    """Open ``directory/name`` for reading without leaving ``directory``: a symlink a trial
    put in place of its log is refused (O_NOFOLLOW), and so is a path that resolves elsewhere."""
    path = directory / name
    if path.resolve().parent != directory.resolve():
        raise OSError(f"{path} leaves the trial directory")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    import stat
    if not stat.S_ISREG(os.fstat(fd).st_mode):   # no FIFOs or devices either
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def _read_tail(path: Path, limit: int, begin: int = 0, end: int | None = None) -> dict[str, Any]:
    """The last ``limit`` bytes of ``path``, or of its bytes ``[begin, end)`` (an attempt's part)."""
    try:
        with os.fdopen(_open_in(path.parent, path.name), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            stop = size if end is None else min(end, size)
            first = min(begin, stop)
            start = max(first, stop - limit)
            f.seek(start)
            raw = f.read(stop - start)
    except OSError:
        return {"exists": False, "size": 0, "truncated": False, "text": ""}
    if start > first:   # start at a line boundary when one is near
        newline = raw.find(b"\n", 0, 4096)
        if newline >= 0:
            raw = raw[newline + 1:]
    return {"exists": True, "size": size, "truncated": start > first, "text": raw.decode(errors="replace")}


async def ui_chart_data(request: web.Request) -> web.Response:
    """Every trial and final result, column-oriented, for the charts (cached per snapshot)."""
    # 100,000 trials: ~14 MB, ~4 MB gzipped
    return _json_bytes(request, await _chart_payload(request.app))


async def ui_metric_series(request: web.Request) -> web.Response:
    """The metric-by-trial chart's data only (cached per snapshot): the first chart of the
    overview and the charts page, without waiting for the rest of ``chart-data``."""
    return _json_bytes(request, await _metric_series_payload(request.app))


def _json_bytes(request: web.Request, payload: tuple[bytes, bytes]) -> web.Response:
    """JSON worked out before as (bytes, gzipped bytes): the gzipped ones when the browser takes them."""
    body, packed = payload
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=packed, content_type="application/json",
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return web.Response(body=body, content_type="application/json", headers={"Vary": "Accept-Encoding"})


def _packed(text: str) -> tuple[bytes, bytes]:
    body = text.encode()
    return body, gzip.compress(body, compresslevel=1)


async def _chart_payload(app: web.Application) -> tuple[bytes, bytes]:
    """The chart data as JSON bytes and gzipped, worked out once per snapshot."""
    data = app[UI_DATA_KEY]
    space = await _app_space(app)
    return await data.run(_cached, data, "chart-data", lambda: _packed(data.chart_data(space)))


async def _metric_series_payload(app: web.Application) -> tuple[bytes, bytes]:
    """The metric chart's data as JSON bytes and gzipped, worked out once per snapshot."""
    data = app[UI_DATA_KEY]
    return await data.run(_cached, data, "metric-series", lambda: _packed(data.metric_series()))


async def ui_intermediate(request: web.Request) -> web.Response:
    """Intermediate results of ``trials`` (comma-separated ids), or of the ``top`` best and running ones."""
    data = _data(request)
    top = _int_query(request, "top", 20, 1, 500)
    trials = [t for t in request.query.get("trials", "").split(",") if t][:500]
    ctx = await _context(request)
    return web.json_response(await data.run(data.intermediate, trials, top, ctx["optimizeMode"]))


async def ui_importance(request: web.Request) -> web.Response:
    """Hyperparameter importance of the final results (cached per snapshot); see importance.py."""
    data = _data(request)
    space = await _space(request)

    def compute() -> dict[str, Any]:
        names, rows = data.importance_input(space)
        return importance(names, rows)
    return web.json_response(await data.run(_cached, data, "importance", compute))


def _cached(data: UiData, name: str, compute: Any) -> Any:
    """``compute()``, reused while the snapshot has not changed (runs in the worker thread)."""
    key = data.key
    hit = data.cache.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = compute()
    data.cache[name] = (key, value)
    return value


async def _download(request: web.Request, path: Path, name: str) -> web.StreamResponse:
    """A whole file as an attachment, streamed in chunks, or 404 when it does not exist (yet).

    Opened like the log tails (:func:`_open_in`): a symlink a trial put in place of its log
    is never followed, so a download cannot leave the experiment's directory.
    """
    try:
        fd = _open_in(path.parent, path.name)
    except OSError:
        return _error(404, f"{path} does not exist (yet)")
    with os.fdopen(fd, "rb") as f:
        response = web.StreamResponse(headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        left = os.fstat(f.fileno()).st_size   # a log still growing is sent as it was now
        response.content_length = left
        await response.prepare(request)
        while left > 0 and (chunk := f.read(min(left, 1 << 16))):
            await response.write(chunk)
            left -= len(chunk)
        await response.write_eof()
    return response


def _experiment_dir(request: web.Request) -> ExperimentDir:
    return ExperimentDir.of_database(request.app[STORE_KEY].path)


async def ui_manager_log(request: web.Request) -> web.StreamResponse:
    """The manager's log (``log/nnimanager.log``), downloaded."""
    manager = request.app[MANAGER_KEY]
    name = manager.id if manager is not None else (await _data(request).run(_data(request).meta)).get("id", "experiment")
    return await _download(request, _experiment_dir(request).log, f"{name}-nnimanager.log")


EXPORT_FORMATS = ("csv", "json")


async def ui_trials_export(request: web.Request) -> web.Response:
    """The whole trials table as the page filters and sorts it, as CSV or JSON (``format``)."""
    data = _data(request)
    query = request.query
    fmt = query.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        raise QueryError(f"format must be csv or json, got {fmt!r}")
    order, statuses = _order_and_statuses(query)
    answer = await data.run(data.trials_export, sort=query.get("sort", "sequenceId"), order=order,
                            statuses=statuses, text=query.get("filter", ""), space=await _space(request))
    manager = request.app[MANAGER_KEY]
    name = manager.id if manager is not None else (await data.run(data.meta)).get("id", "experiment")
    disposition = {"Content-Disposition": f'attachment; filename="{name}-trials.{fmt}"'}
    if fmt == "json":
        return web.Response(text=json.dumps(answer["trials"]), content_type="application/json", headers=disposition)
    return web.Response(text=_csv(answer), content_type="text/csv", headers=disposition)


def _csv(answer: dict[str, Any]) -> str:
    """One row per trial: its facts, one column per parameter and per result key."""
    params, metrics = answer["parameterKeys"], answer["metricKeys"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sequenceId", "trialJobId", "status", *params, "metric", *[f"result:{k}" for k in metrics],
                     "intermediates", "latestIntermediate", "duration", "startTime", "endTime"])
    for t in answer["trials"]:
        parameters = t["parameters"] if isinstance(t["parameters"], dict) else {}
        final = t["final"] if isinstance(t["final"], dict) else {}
        writer.writerow([t["sequenceId"], t["trialJobId"], t["status"],
                         *[_cell(parameters.get(k)) for k in params], _cell(t["metric"]),
                         *[_cell(final.get(k)) for k in metrics], t["intermediates"], _cell(t["latestMetric"]),
                         _cell(t["duration"]), _cell(t["startTime"]), _cell(t["endTime"])])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


async def ui_experiments(request: web.Request) -> web.Response:
    """Every experiment of this user (registry and ``~/nni-experiments``), with status, tuner,
    trial counts, best metric, creation and last resume, read from each one's own store.

    Read-only and manager-free, so any running manager, a viewer or ``nnictl webui`` shows
    them all, as NNI's "All experiments" page does.
    """
    current = await _current_id(request)
    entries = await asyncio.get_running_loop().run_in_executor(None, experiments.list_experiments, current)
    return web.json_response({"current": current, "experiments": entries})


async def ui_experiments_compare(request: web.Request) -> web.Response:
    """``ids``: 2-8 experiments side by side: best-so-far curves, best trials, configs and their differences."""
    ids = experiments.parse_ids(request.query.get("ids", ""))
    answer = await asyncio.get_running_loop().run_in_executor(None, experiments.compare_experiments, ids)
    return web.json_response(answer)


async def _current_id(request: web.Request) -> str | None:
    """The experiment this server serves (None for ``nnictl webui``, which serves none)."""
    manager = request.app.get(MANAGER_KEY)
    if manager is not None:
        return manager.id
    data = request.app.get(UI_DATA_KEY)
    return None if data is None else (await data.run(data.meta)).get("id")
