"""The Pareto-front page of a multi-objective experiment, served by the manager at ``/pareto``
(nni-ng extension; a separate page from the main web UI in ``nni/manager/webui``).

A static HTML page and one plain ES module (``static/pareto.js``) that read the REST API
(``/experiment``, ``/export-data``, ``/pareto-front``) and draw with the plotly.js the web UI
serves at ``/webui/plotly.min.js``.  See docs/multi_objective.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from .._app_keys import MANAGER_KEY, STORE_KEY
from .._objectives import ParetoAnswers, experiment_objectives

__all__ = ["PARETO_ANSWERS_KEY", "add_pareto_page"]

#: The application's :class:`ParetoAnswers` (the ``/pareto-front`` routes answer through it).
PARETO_ANSWERS_KEY = web.AppKey("pareto_answers", ParetoAnswers)

STATIC_DIR = Path(__file__).parent / "static"


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "pareto.html", headers={"Cache-Control": "no-cache"})


async def _start_worker(app: web.Application) -> None:
    """Start the worker process of a multi-objective experiment in the background as the
    server starts, so the first Pareto answer does not wait for it (nor for numpy)."""
    manager = app[MANAGER_KEY]
    config = manager.config if manager is not None else app[STORE_KEY].get_meta("config", {})
    if experiment_objectives(config):
        # not awaited: the server starts meanwhile; close() waits for it (the worker's lock)
        asyncio.get_running_loop().run_in_executor(None, app[PARETO_ANSWERS_KEY].start)


async def _end_worker(app: web.Application) -> None:
    await asyncio.to_thread(app[PARETO_ANSWERS_KEY].close)


def add_pareto_page(app: web.Application) -> None:
    """Register ``/pareto`` and its static files on the manager's application (``build_app``
    stored the store on it first)."""
    app[PARETO_ANSWERS_KEY] = ParetoAnswers(app[STORE_KEY].path)
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_end_worker)
    app.router.add_get("/pareto", _page)
    app.router.add_static("/pareto/static", STATIC_DIR, append_version=False)
