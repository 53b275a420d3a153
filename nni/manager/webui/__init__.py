"""The web UI, served by each experiment's manager: a small single-page app in plain ES
modules (``static/``), plotly.js from the ``plotly`` package, and JSON endpoints under
``/api/v1/nni/ui`` that page, sort and filter trials in SQL. See docs/webui.md."""

from .routes import add_webui_routes

__all__ = ["add_webui_routes"]
