"""Start one experiment: its directory, store, REST server and manager, until it is stopped.

The same coroutine runs the detached manager process of ``nnictl create`` and the
background thread of the Python API's ``Experiment.start()``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import shutil
import socket
import string
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ..errors import NniError
from . import registry
from .experiment_dir import ExperimentDir
from .loop_lag import LoopLagMonitor
from .manager import ExperimentManager
from .read_model import store_status
from .rest import build_app
from .secret import load_or_create_secret, private_dir, private_file
from .webui.routes import defer_warm_up

_logger = logging.getLogger("nni.manager")

# Connections the kernel queues before the loop accepts them (capped by net.core.somaxconn).
# A thousand trials reporting at once each open a connection; with a backlog of 128 the
# surplus SYNs are dropped and retried by the client's TCP after 1, 3, 7 s ... (the
# multi-second worst cases seen before), so the queue holds at least that many.
LISTEN_BACKLOG = 4096


def settle_heap() -> None:
    """Once a manager process serves: move everything allocated so far (modules, the web app,
    the tuner, a resumed experiment's trials) out of the garbage collector's sight.

    Every full collection otherwise walks all of it: 40-90 ms pauses of the whole loop, several
    a second under 1,000 reporting trials (the tail of the report latency). Only for a process
    of its own (``python -m nni.manager``): frozen objects are never collected, which a
    user's process that runs the manager in a thread should not get behind its back.
    """
    gc.collect()
    gc.freeze()


def raise_open_files_limit() -> None:
    """Let the manager hold one connection per running trial: trials keep their channel's
    connection open, and a thousand trials would exhaust the usual soft limit of 1,024 open
    files (the server then refuses connections). The soft limit goes up to the hard limit
    (at most 65,536)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):   # not POSIX, or not allowed: keep the limit as it is
        pass


class LaunchError(NniError, RuntimeError):
    """The experiment could not start (bad config, port in use, ...); the message says why."""


def new_experiment_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _setup_logging(experiment_dir: Path, level: str, foreground: bool) -> list[logging.Handler]:
    """Log to the experiment's ``log/nnimanager.log``; returns the handlers to remove at the end."""
    log_dir = private_dir(experiment_dir / "log")
    logger = logging.getLogger("nni")
    logger.setLevel({"trace": logging.DEBUG, "fatal": logging.CRITICAL}.get(level, level.upper()))
    handlers: list[logging.Handler] = [logging.FileHandler(private_file(log_dir / "nnimanager.log"))]
    if foreground:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
        logger.addHandler(handler)
    return handlers


def _drop_logging(handlers: list[logging.Handler]) -> None:
    logger = logging.getLogger("nni")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


def bind_hosts(config: Any) -> list[str]:
    """Loopback always; also ``nniManagerIp`` when set, so trials on other hosts can report."""
    hosts = ["127.0.0.1"]
    ip = getattr(config, "nni_manager_ip", None)
    if ip and ip not in hosts and ip != "localhost":
        hosts.append(ip)
    return hosts


def _bind(hosts: list[str], port: int) -> list[socket.socket]:
    """Listening sockets on every host, bound before anything of the experiment is created.

    Port 0 picks a free port (the same on every host). A port in use raises LaunchError and
    leaves nothing behind: no directory, no store, no registry entry.
    """
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            # As asyncio's own servers do: a port in TIME_WAIT from an earlier run may be reused.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
            port = port or sock.getsockname()[1]
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise LaunchError(f"port {port} on {host} is not available ({exc.strerror or exc}); "
                          "choose another with --port, or --port 0 for any free port") from exc
    return sockets


async def _serve(app: web.Application, sockets: list[socket.socket]) -> web.AppRunner:
    """Serve ``app`` on sockets from :func:`_bind`."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    for sock in sockets:
        # backlog again here: aiohttp calls listen() once more, with 128 unless told.
        await web.SockSite(runner, sock, backlog=LISTEN_BACKLOG).start()
    return runner


def _ready_info(experiment_id: str, port: int, experiment_dir: Path, secret: str) -> dict[str, Any]:
    """What a started manager reports: ``url`` is the plain address (REST clients add paths to
    it), ``webui_url`` the web UI address with the secret that logs the browser in once."""
    url = f"http://127.0.0.1:{port}"
    return {"id": experiment_id, "port": port, "url": url, "webui_url": f"{url}/?token={secret}",
            "dir": str(experiment_dir), "pid": os.getpid()}


async def run_experiment(config: Any, *, port: int = 8080, experiment_id: str | None = None,
                         tuner: Any = None, foreground: bool = False, resume: bool = False,
                         on_ready: Callable[[dict[str, Any]], None] | None = None,
                         started: Callable[[ExperimentManager], None] | None = None,
                         own_process: bool = False) -> ExperimentManager:
    """Run an experiment from a canonical config until it is stopped; return its manager.

    With ``resume`` the experiment's directory must hold its store: stored trials and
    results are taken up again (see ``ExperimentManager._restore``). ``own_process``: this
    process runs this experiment only (``python -m nni.manager``), so its environment may
    carry the experiment's ``NNI_CHECKPOINT_DIRECTORY`` (never set for ``Experiment.start()``,
    which runs in the user's process; see ``nni.recoverable``).
    """
    experiment_id = experiment_id or new_experiment_id()
    experiment_dir = Path(config.experiment_working_directory) / experiment_id
    if resume and not ExperimentDir(experiment_dir).has_store():
        raise LaunchError(f"experiment {experiment_id} has no database at {ExperimentDir(experiment_dir).database}")
    raise_open_files_limit()
    sockets = _bind(bind_hosts(config), port)    # first: a busy port must not leave a half-made experiment
    port = sockets[0].getsockname()[1]
    try:
        private_dir(experiment_dir)
        secret = load_or_create_secret(experiment_dir)   # the same one again on resume
        handlers = _setup_logging(experiment_dir, config.log_level or "info", foreground)
        if own_process:
            # NNI's contract for algorithms that read os.environ directly (NNI sets it for its
            # dispatcher process); nni-ng's own read nni.recoverable.checkpoint_directory().
            os.environ["NNI_CHECKPOINT_DIRECTORY"] = str(ExperimentDir(experiment_dir).checkpoint)
        manager = ExperimentManager(config, experiment_id, experiment_dir, tuner=tuner, port=port, resume=resume)
        app = build_app(manager.store, manager, secret=secret)
        warm_up = defer_warm_up(app)
        runner = await _serve(app, sockets)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    info = _ready_info(experiment_id, manager.port, experiment_dir, secret)
    registry.update_entry(experiment_id, name=config.experiment_name, port=manager.port, pid=os.getpid(),
                          dir=str(experiment_dir), status="RUNNING", start_time=manager.start_time,
                          end_time=None, platform=config.training_service.platform)
    refused = False
    monitor = LoopLagMonitor()   # logs any stall of this loop over 100 ms (nni/manager/loop_lag.py)
    monitor.start()
    try:
        await manager.start()
        warm_up.set()
        if manager.status == "ERROR":  # bad tuner name or classArgs, no GPU, ...: refuse to start
            refused = True
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
        await monitor.stop()
        # pid None: nothing serves it any more (the Python API's process lives on after stop()).
        registry.update_entry(experiment_id, status=manager.status, end_time=manager.end_time, pid=None)
        manager.store.close()
        _drop_logging(handlers)
        if refused and not resume:
            # Nothing ran: leave no experiment behind in `experiment list` or on disk.
            registry.remove_entry(experiment_id)
            shutil.rmtree(experiment_dir, ignore_errors=True)
    return manager


async def view_experiment(experiment_id: str, experiment_dir: Path, *, port: int = 8080,
                          on_ready: Callable[[dict[str, Any]], None] | None = None,
                          stop: asyncio.Event | None = None) -> None:
    """Serve a stopped experiment read-only (REST and web UI) until ``stop`` is set or a stop request."""
    directory = ExperimentDir(experiment_dir)
    if not directory.has_store():
        raise LaunchError(f"experiment {experiment_id} has no database at {directory.database}")
    sockets = _bind(["127.0.0.1"], port)
    port = sockets[0].getsockname()[1]
    store = directory.open_store(readonly=True)
    stop = stop or asyncio.Event()
    try:
        secret = load_or_create_secret(experiment_dir)
        runner = await _serve(build_app(store, None, stop_view=stop, secret=secret), sockets)
    except BaseException:
        for sock in sockets:
            sock.close()
        store.close()
        raise
    info = _ready_info(experiment_id, port, Path(experiment_dir), secret)
    registry.update_entry(experiment_id, port=port, pid=os.getpid(), status="VIEWED")
    try:
        if on_ready:
            on_ready(info)
        await stop.wait()
        await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
        store.close()
        registry.update_entry(experiment_id, status=store_status(experiment_dir), pid=None)
