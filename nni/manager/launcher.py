"""Start one experiment: its directory, store, REST server and manager, until it is stopped.

The same coroutine runs the detached manager process of ``nnictl create`` and the
background thread of the Python API's ``Experiment.start()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import string
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from . import registry
from .manager import ExperimentManager
from .rest import build_app

_logger = logging.getLogger("nni.manager")


class LaunchError(RuntimeError):
    """The experiment could not start (bad config, port in use, ...); the message says why."""


def new_experiment_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _setup_logging(experiment_dir: Path, level: str, foreground: bool) -> None:
    log_dir = experiment_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("nni")
    logger.setLevel({"trace": logging.DEBUG, "fatal": logging.CRITICAL}.get(level, level.upper()))
    handler = logging.FileHandler(log_dir / "nnimanager.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
    logger.addHandler(handler)
    if foreground:
        logger.addHandler(logging.StreamHandler())


async def run_experiment(config: Any, *, port: int = 8080, experiment_id: str | None = None,
                         tuner: Any = None, foreground: bool = False,
                         on_ready: Callable[[dict[str, Any]], None] | None = None,
                         started: Callable[[ExperimentManager], None] | None = None) -> ExperimentManager:
    """Run an experiment from a canonical config until it is stopped; return its manager."""
    experiment_id = experiment_id or new_experiment_id()
    experiment_dir = Path(config.experiment_working_directory) / experiment_id
    experiment_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(experiment_dir, config.log_level or "info", foreground)
    manager = ExperimentManager(config, experiment_id, experiment_dir, tuner=tuner, port=port)
    app = build_app(manager.store, manager)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host = "127.0.0.1"
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        manager.store.close()
        raise LaunchError(f"port {port} on {host} is not available ({exc.strerror or exc}); "
                          "choose another with --port, or --port 0 for any free port") from exc
    manager.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    info = {"id": experiment_id, "port": manager.port, "url": f"http://{host}:{manager.port}",
            "dir": str(experiment_dir), "pid": os.getpid()}
    registry.update_entry(experiment_id, name=config.experiment_name, port=manager.port, pid=os.getpid(),
                          dir=str(experiment_dir), status="RUNNING", start_time=manager.start_time,
                          platform=config.training_service.platform)
    try:
        await manager.start()
        if manager.status == "ERROR":  # bad tuner name or classArgs, no GPU, ...: refuse to start
            raise LaunchError(manager.errors[0])
        if on_ready:
            on_ready(info)
        _logger.info("experiment %s serving on %s", experiment_id, info["url"])
        if started:
            started(manager)
        await manager.stopped.wait()
        await asyncio.sleep(0.05)  # let the response to the stop request go out
    finally:
        if not manager.stopped.is_set():
            await manager.stop()
        await runner.cleanup()
        registry.update_entry(experiment_id, status=manager.status, end_time=manager.end_time)
        manager.store.close()
    return manager
