"""Entry point of a manager process: ``python -m nni.manager``.

``nnictl create|resume|view`` start this detached and read one JSON line from
``--ready-fd``: the experiment's id, port and URL once it serves, or the error that
stopped it. A detached manager then writes its own stdout/stderr to the experiment's
``log/nnictl_stdout.log`` and ``log/nnictl_stderr.log`` (what ``nnictl log`` shows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def _report(fd: int | None, payload: dict) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (json.dumps(payload) + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def _redirect_output(experiment_dir: str) -> None:
    log_dir = Path(experiment_dir) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for fd, name in ((1, "nnictl_stdout.log"), (2, "nnictl_stderr.log")):
        target = os.open(log_dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)


def _load_config(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The canonical config: from ``--config``, or (resume) the one the experiment's store holds."""
    from ..experiment.config import ExperimentConfig
    from .experiment_dir import ExperimentDir, MissingStoreError
    if args.resume:
        try:
            stored = ExperimentDir(args.dir).stored_config()
        except MissingStoreError as exc:
            raise MissingStoreError(f"experiment {args.resume}: {exc}") from None
        config = ExperimentConfig.from_dict(stored)
        if config.tuner is None or not (getattr(config.tuner, "name", None) or
                                        getattr(config.tuner, "class_name", None)):
            raise ValueError(f"experiment {args.resume} was run with a tuner object from Python; "
                             "resume it from Python with Experiment.resume(id, tuner=...)")
        config.experiment_working_directory = str(Path(args.dir).parent)
        return config.canonical_copy(), []
    config = ExperimentConfig.load(args.config)
    notes = list(config.conversion_notes)
    if args.debug:
        config.debug = True
    if args.warm_start:   # nnictl create --warm-start ID: added to the config's warmStart
        ids = list((config.warm_start or {}).get("experiments") or []) + list(args.warm_start)
        config.warm_start = {"experiments": ids}
    return config.canonical_copy(), notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni.manager")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--config", help="create an experiment from this config file")
    mode.add_argument("--resume", metavar="ID", help="resume this experiment (needs --dir)")
    mode.add_argument("--view", metavar="ID", help="serve this stopped experiment read-only (needs --dir)")
    parser.add_argument("--dir", help="the experiment's directory (resume and view)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--warm-start", action="append", metavar="ID",
                        help="warm start from this experiment's results (repeatable; added to warmStart)")
    parser.add_argument("--foreground", action="store_true")
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)
    if (args.resume or args.view) and not args.dir:
        parser.error("--resume and --view need --dir")

    from ..experiment.config import ConfigError
    from .launcher import LaunchError, run_experiment, settle_heap, view_experiment

    def fail(message: str) -> int:
        _report(args.ready_fd, {"error": message})
        print(f"Error: {message}", file=sys.stderr)
        return 1

    def ready(info: dict, notes: list[str]) -> None:
        _report(args.ready_fd, {**info, "notes": notes})
        if args.ready_fd is not None and not args.foreground:
            _redirect_output(info["dir"])

    if not args.view:
        try:
            config, notes = _load_config(args)
        except (ConfigError, ValueError) as exc:
            return fail(f"{args.config}: {exc}" if args.config else str(exc))

    async def run() -> int:
        loop = asyncio.get_running_loop()
        try:
            if args.view:
                stop = asyncio.Event()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
                await view_experiment(args.view, Path(args.dir), port=args.port, stop=stop,
                                      on_ready=lambda info: ready(info, []))
                return 0

            def started(manager) -> None:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, lambda: asyncio.ensure_future(manager.stop()))
                settle_heap()

            await run_experiment(config, port=args.port, foreground=args.foreground,
                                 experiment_id=args.resume, resume=bool(args.resume),
                                 on_ready=lambda info: ready(info, notes), started=started, own_process=True)
        except LaunchError as exc:
            return fail(str(exc))
        return 0

    code = asyncio.run(run())
    _exit_despite_stuck_threads(code)
    return code


def _exit_despite_stuck_threads(code: int, grace: float = 5.0) -> None:
    """End the process even if a thread (a tuner stuck in user code) would keep it alive.

    Algorithm threads are daemons already; this also covers threads user code started.
    """
    import threading
    import time
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
        if not others:
            return
        others[0].join(max(0.0, deadline - time.monotonic()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
