"""Entry point of a manager process: ``python -m nni.manager --config FILE --port P``.

``nnictl create`` starts this detached and reads one JSON line from ``--ready-fd``:
the experiment's id, port and URL once it serves, or the error that stopped it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys


def _report(fd: int | None, payload: dict) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (json.dumps(payload) + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni.manager")
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--foreground", action="store_true")
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)

    from ..experiment.config import ConfigError, ExperimentConfig
    from .launcher import LaunchError, run_experiment
    try:
        config = ExperimentConfig.load(args.config)
        notes = list(config.conversion_notes)
        if args.debug:
            config.debug = True
        config = config.canonical_copy()
    except ConfigError as exc:
        _report(args.ready_fd, {"error": f"{args.config}: {exc}"})
        print(f"Error: {exc}", file=sys.stderr)
        return 1

    async def run() -> int:
        def started(manager) -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(manager.stop()))

        try:
            await run_experiment(config, port=args.port, foreground=args.foreground,
                                 on_ready=lambda info: _report(args.ready_fd, {**info, "notes": notes}),
                                 started=started)
        except LaunchError as exc:
            _report(args.ready_fd, {"error": str(exc)})
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
