"""The Pareto-front answers of a multi-objective experiment (nni-ng extension) and the old
address of its page.

The page itself is a view of the main web UI (``webui/static/js/pages/pareto.js``, at
``/#/pareto``: its navigation, trial links and phone layout); ``/pareto``, where it used to be
a separate page, redirects there. What stays here is the :class:`ParetoAnswers` the REST
routes ``/pareto-front[/hypervolume]`` answer through, whose worker process is started with
the server. See docs/multi_objective.md.
"""

from __future__ import annotations

import asyncio
from aiohttp import web

from .._app_keys import MANAGER_KEY, STORE_KEY
from .._objectives import ParetoAnswers, experiment_objectives

__all__ = ["PARETO_ANSWERS_KEY", "add_pareto_page"]

#: The application's :class:`ParetoAnswers` (the ``/pareto-front`` routes answer through it).
PARETO_ANSWERS_KEY = web.AppKey("pareto_answers", ParetoAnswers)



async def _page(request: web.Request) -> web.Response:
    """The page's old address (bookmarks, links of older versions): its view in the main UI."""
    raise web.HTTPFound("/#/pareto")


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
    """Register the Pareto answers and ``/pareto`` (a redirect to the UI's view) on the
    manager's application (``build_app`` stored the store on it first)."""
    app[PARETO_ANSWERS_KEY] = ParetoAnswers(app[STORE_KEY].path)
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_end_worker)
    app.router.add_get("/pareto", _page)
