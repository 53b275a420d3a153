"""The Pareto-front page of a multi-objective experiment, served by the manager at ``/pareto``
(nni-ng extension; a separate page from the main web UI in ``nni/manager/webui``).

A static HTML page and one plain ES module (``static/pareto.js``) that read the REST API
(``/experiment``, ``/export-data``, ``/pareto-front``) and draw with the plotly.js the web UI
serves at ``/webui/plotly.min.js``.  See docs/multi_objective.md.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["add_pareto_page"]

STATIC_DIR = Path(__file__).parent / "static"


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "pareto.html", headers={"Cache-Control": "no-cache"})


def add_pareto_page(app: web.Application) -> None:
    """Register ``/pareto`` and its static files on the manager's application."""
    app.router.add_get("/pareto", _page)
    app.router.add_static("/pareto/static", STATIC_DIR, append_version=False)
