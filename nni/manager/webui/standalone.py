"""``nnictl webui``: the experiments pages without an experiment.

A small read-only server over this user's experiments (the registry and ``~/nni-experiments``):
the UI's own shell and experiments routes (``routes.add_ui_shell``, ``add_experiments_routes``:
the same code a manager serves), behind the same door as a manager's UI (``_security``: the
owner's own loopback connections, or the secret, kept owner-only in ``$NNI_NG_HOME/webui/secret``,
traded once for a cookie by the printed ``?token=`` address). It binds 127.0.0.1 only.

Opening an experiment from the page: a running one (or one already viewed) is linked to its own
manager's UI; a stopped one is served read-only in this process by ``launcher.view_experiment``,
exactly as ``nnictl view`` does (registered as ``VIEWED``), until this server stops. Ctrl-C or
SIGTERM stops the server and those views, with nothing left running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ...errors import NniError
from ...runtime.process import is_same_process, process_start
from .._errors import error_middleware
from .._security import allowed_host_set, security_middleware
from ..secret import load_or_create_secret, private_dir, write_private
from . import experiments
from .routes import PLOTLY_BASIC, UI_API, _asset, add_experiments_routes, add_ui_shell

DEFAULT_PORT = 8070
VIEWS_KEY = web.AppKey("webui_views", dict)   # experiment id -> (stop event, task, url)


class WebuiError(NniError, RuntimeError):
    """A stopped experiment could not be opened read-only from the experiments page."""


def state_dir() -> Path:
    """``$NNI_NG_HOME/webui``: the server's secret and where it runs (owner-only)."""
    return Path(os.environ.get("NNI_NG_HOME", "~/.nni-ng")).expanduser() / "webui"


def running_server() -> dict[str, Any] | None:
    """``{port, pid, url}`` of this user's running ``nnictl webui`` (its process checked), else None."""
    try:
        state = json.loads((state_dir() / "server.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not is_same_process(state.get("pid"), state.get("pid_start")):
        return None
    return state


def build_standalone_app(secret: str) -> web.Application:
    app = web.Application(middlewares=[
        error_middleware,
        security_middleware(secret=secret, experiment_id="webui", allowed_hosts=allowed_host_set([]))])
    add_ui_shell(app, mode="standalone")
    add_experiments_routes(app)
    app.add_routes([web.post(f"{UI_API}/experiments/{{experiment_id}}/open", open_experiment)])
    app[VIEWS_KEY] = {}
    app.on_startup.append(_compress_assets)
    app.on_shutdown.append(_stop_views)
    return app


async def _compress_assets(app: web.Application) -> None:
    """plotly.js's basic bundle gzipped in the background as the server starts, as a manager does."""
    asyncio.get_running_loop().run_in_executor(None, _asset, PLOTLY_BASIC)


async def open_experiment(request: web.Request) -> web.Response:
    """The address (with its token) of an experiment's own UI: its manager's, or a read-only
    view started here for a stopped one."""
    experiment_id = request.match_info["experiment_id"]
    loop = asyncio.get_running_loop()
    found = await loop.run_in_executor(None, experiments.find_one, experiment_id)
    views = request.app[VIEWS_KEY]
    if experiment_id in views and not views[experiment_id]["task"].done():
        view = views[experiment_id]
        return web.json_response({"id": experiment_id, "url": await view["ready"], "readOnly": True})
    if found.alive:
        from ...experiment.rest import webui_url
        url = await loop.run_in_executor(None, webui_url, int(found.entry["port"]))
        return web.json_response({"id": experiment_id, "url": url, "readOnly": found.entry.get("status") == "VIEWED"})
    from ..launcher import view_experiment
    if found.entry is None:   # found under ~/nni-experiments only: registered, as `nnictl view` needs it
        from .. import registry
        facts = await loop.run_in_executor(None, experiments.experiment_facts, found)
        await loop.run_in_executor(None, lambda: registry.update_entry(
            experiment_id, dir=str(found.dir), status=facts["status"], name=facts["name"],
            start_time=(facts["createdTime"] or 0) / 1000 or None))
    stop = asyncio.Event()
    ready: asyncio.Future[str] = loop.create_future()

    def on_ready(info: dict[str, Any]) -> None:
        if not ready.done():
            ready.set_result(info["webui_url"])
    task = asyncio.ensure_future(view_experiment(experiment_id, found.dir, port=0, on_ready=on_ready, stop=stop))
    def ended(t: asyncio.Future) -> None:
        if not ready.done():   # it ended before serving: say why
            error = None if t.cancelled() else t.exception()
            ready.set_exception(error or WebuiError(f"the read-only view of {experiment_id} ended at once"))
    task.add_done_callback(ended)
    views[experiment_id] = {"stop": stop, "task": task, "ready": ready}
    return web.json_response({"id": experiment_id, "url": await ready, "readOnly": True})


async def _stop_views(app: web.Application) -> None:
    views = list(app[VIEWS_KEY].values())
    for view in views:
        view["stop"].set()
    if views:
        await asyncio.gather(*(v["task"] for v in views), return_exceptions=True)


async def serve(port: int = DEFAULT_PORT, on_ready: Callable[[dict[str, Any]], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set, or SIGINT / SIGTERM."""
    directory = private_dir(state_dir())
    secret = load_or_create_secret(directory)
    from ..launcher import _bind, _serve   # the manager's own: same socket options and messages
    sockets = _bind(["127.0.0.1"], port)
    bound = sockets[0].getsockname()[1]   # port 0: the one the system chose
    runner = await _serve(build_standalone_app(secret), sockets)
    url = f"http://127.0.0.1:{bound}"
    info = {"port": bound, "pid": os.getpid(), "pid_start": process_start(os.getpid()), "url": url}
    write_private(directory / "server.json", json.dumps(info))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready:
            on_ready({**info, "webui_url": f"{url}/?token={secret}"})
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()   # runs _stop_views: every view it opened ends, its registry entry restored
        try:
            if json.loads((directory / "server.json").read_text()).get("pid") == os.getpid():
                (directory / "server.json").unlink()
        except (OSError, ValueError):
            pass


def main(port: int = DEFAULT_PORT) -> int:
    """Run the server in this process, printing its address (``nnictl webui``)."""
    def ready(info: dict[str, Any]) -> None:
        print(f"Experiments web UI: {info['webui_url']}", flush=True)
        print("  (127.0.0.1 only; Ctrl-C stops it and the read-only views it opened)", flush=True)
    try:
        asyncio.run(serve(port, ready))
    except KeyboardInterrupt:
        pass
    print("Experiments web UI stopped.", file=sys.stderr, flush=True)
    return 0


__all__ = ["DEFAULT_PORT", "WebuiError", "build_standalone_app", "main", "running_server", "serve", "state_dir"]
