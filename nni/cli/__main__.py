"""``nnictl``: NNI's command line, a thin client of the manager's REST API."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..experiment import rest
from ..manager import registry


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _running_entries() -> list[dict[str, Any]]:
    return [e for e in registry.list_entries() if e["alive"]]


def _resolve(experiment_id: str | None, port: int | None = None) -> dict[str, Any]:
    """The registry entry the user means: by id, by port, or the only one running."""
    if experiment_id:
        entry = registry.get_entry(experiment_id)
        if entry is None:
            known = ", ".join(e["id"] for e in registry.list_entries()) or "none"
            raise CliError(f"no experiment with id {experiment_id!r} (known: {known})")
        return entry
    running = _running_entries()
    if port is not None:
        for entry in running:
            if entry.get("port") == port:
                return entry
        raise CliError(f"no running experiment on port {port}")
    if len(running) == 1:
        return running[0]
    if not running:
        raise CliError("no experiment is running")
    ids = ", ".join(e["id"] for e in running)
    raise CliError(f"several experiments are running ({ids}); name one")


# -- create ------------------------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    if not config_path.is_file():
        raise CliError(f"config file {args.config!r} not found")
    manager_args = [sys.executable, "-m", "nni.manager", "--config", str(config_path.resolve()),
                    "--port", str(args.port)]
    if args.debug:
        manager_args.append("--debug")
    if args.foreground:
        from ..manager.__main__ import main as manager_main
        return manager_main(manager_args[3:] + ["--foreground"])
    log_dir = registry.registry_dir().parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    launch_log = log_dir / f"manager-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    read_fd, write_fd = os.pipe()
    with open(launch_log, "ab") as log:
        process = subprocess.Popen(manager_args + ["--ready-fd", str(write_fd)], pass_fds=(write_fd,),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        line = ready.readline()
    if not line:
        process.wait(timeout=10)
        tail = launch_log.read_text(errors="replace")[-2000:].strip()
        raise CliError(f"the experiment manager exited (code {process.returncode}) before it was ready"
                       + (f":\n{tail}" if tail else ""))
    info = json.loads(line)
    if "error" in info:
        process.wait(timeout=10)
        raise CliError(info["error"])
    for note in info.get("notes", []):
        print(f"Note: {note}")
    print(f"Experiment {info['id']} started.")
    print(f"  REST API:     {info['url']}/api/v1/nni")
    print(f"  Directory:    {info['dir']}")
    print(f"  Stop it with: nnictl stop {info['id']}")
    return 0


# -- stop --------------------------------------------------------------------------------------
def _stop_entry(entry: dict[str, Any]) -> None:
    if not entry["alive"]:
        print(f"Experiment {entry['id']} is not running.")
        return
    try:
        rest.delete(entry["port"], "/experiment", timeout=60)
    except rest.RestError:
        # The manager does not answer: end its process; it cancels its trials on SIGTERM.
        os.kill(entry["pid"], 15)
    deadline = time.monotonic() + 10
    while registry.pid_alive(entry["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"Experiment {entry['id']} stopped.")


def cmd_stop(args: argparse.Namespace) -> int:
    if args.all:
        running = _running_entries()
        if not running:
            print("No experiment is running.")
        for entry in running:
            _stop_entry(entry)
        return 0
    _stop_entry(_resolve(args.id, args.port))
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnictl", description="Run and manage NNI experiments (nni-ng).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    create = commands.add_parser("create", help="create and start an experiment from a config file")
    create.add_argument("--config", "-c", required=True, help="experiment config file (YAML or JSON)")
    create.add_argument("--port", "-p", type=int, default=8080,
                        help="REST API / web UI port (default 8080; 0 picks a free port)")
    create.add_argument("--debug", "-d", action="store_true", help="debug logging")
    create.add_argument("--foreground", "-f", action="store_true", help="run in this terminal until stopped")
    create.add_argument("--url_prefix", "-u", help="URL prefix of the REST API (accepted for compatibility)")
    create.set_defaults(handler=cmd_create)

    stop = commands.add_parser("stop", help="stop a running experiment (its trials are killed)")
    stop.add_argument("id", nargs="?", help="experiment id (default: the only running one)")
    stop.add_argument("--port", "-p", type=int, help="the port of the experiment to stop")
    stop.add_argument("--all", "-a", action="store_true", help="stop every running experiment")
    stop.set_defaults(handler=cmd_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__
        print(__version__)
        return 0
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    try:
        return handler(args)
    except (CliError, rest.RestError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
