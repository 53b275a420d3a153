"""What the manager's aiohttp application holds, shared by the REST routes (``rest.py``), the
web UI (``webui/``) and the Pareto page, so none of them imports another for it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .store import Store

#: NNI's prefix of the client routes.
API = "/api/v1/nni"
#: The prefix of the trial channel's routes.
TRIAL_API = "/api/v1/trial"
#: The running ``ExperimentManager``, or None when a stopped experiment is served read-only.
MANAGER_KEY = web.AppKey("manager", Any)
#: The experiment's :class:`~nni.manager.store.Store`.
STORE_KEY = web.AppKey("store", Store)
#: An ``asyncio.Event`` a stop request sets in read-only mode (``nnictl view`` ends with it), or None.
STOP_VIEW_KEY = web.AppKey("stop_view", Any)

__all__ = ["API", "MANAGER_KEY", "STOP_VIEW_KEY", "STORE_KEY", "TRIAL_API"]
