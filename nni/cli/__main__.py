"""``nnictl``: NNI's command line, a thin client of the managers' REST APIs.

Commands and flags follow NNI's; see docs/cli.md. Every failure prints one line,
``Error: ...``, and exits with code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from ..experiment import rest
from ..status import TrialStatus
from . import _algo, _commands, _webui
from ._errors import CliError

__all__ = ["CliError", "build_parser", "main"]


def _id(parser: argparse.ArgumentParser, required: bool = False) -> None:
    if required:
        parser.add_argument("id", help="experiment id")
    else:
        parser.add_argument("id", nargs="?", help="experiment id (default: the only running one)")


def _port(parser: argparse.ArgumentParser, default: int | None = 8080,
          help: str = "REST API / web UI port on 127.0.0.1 (default 8080; 0 picks a free port)") -> None:
    parser.add_argument("--port", "-p", type=int, default=default, help=help)


def _head_tail(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--head", type=int, help=f"only the first N {what}")
    group.add_argument("--tail", type=int, help=f"only the last N {what}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnictl", description="Run and manage NNI experiments (nni-ng).")
    parser.add_argument("--version", "-v", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Callable, help: str, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    create = command("create", _commands.create, "create and start an experiment from a config file")
    create.add_argument("--config", "-c", required=True, help="experiment config file (YAML or JSON, v2 or v1)")
    _port(create)
    create.add_argument("--debug", "-d", action="store_true", help="debug logging")
    create.add_argument("--foreground", "-f", action="store_true", help="run in this terminal until stopped")
    create.add_argument("--warm-start", action="append", metavar="ID", dest="warm_start",
                        help="give the tuner this earlier experiment's finished results before the first trial "
                             "(repeatable; added to the config's warmStart; docs/warm_start.md)")
    create.add_argument("--url_prefix", "-u", help="not supported yet: refused with a message if given")

    resume = command("resume", _commands.resume, "resume a stopped or crashed experiment where it left off")
    _id(resume, required=True)
    _port(resume, default=None, help="REST API / web UI port on 127.0.0.1 (default: the port the experiment had, "
                                      "or a free one if that is in use; 0 picks a free port)")
    resume.add_argument("--debug", "-d", action="store_true", help="debug logging")
    resume.add_argument("--foreground", "-f", action="store_true", help="run in this terminal until stopped")

    view = command("view", _commands.view, "serve a stopped experiment read-only (REST API and web UI)")
    _id(view, required=True)
    _port(view)
    view.add_argument("--foreground", "-f", action="store_true", help="serve in this terminal until Ctrl-C")

    stop = command("stop", _commands.stop, "stop a running experiment (its trials are killed)")
    _id(stop)
    _port(stop, default=None, help="stop the running experiment on this port")
    stop.add_argument("--all", "-a", action="store_true", help="stop every running experiment")

    update = command("update", None, "change a running experiment's search space or limits")
    update_commands = update.add_subparsers(dest="what", metavar="WHAT", required=True)
    for what, help_text in (("searchspace", "replace the search space (--filename FILE)"),
                            ("concurrency", "set trialConcurrency (--value N)"),
                            ("duration", "set maxExperimentDuration (--value 30m, 2h, 1d, ...)"),
                            ("trialnum", "set maxTrialNumber (--value N)")):
        sub = command(what, _commands.update, help_text, update_commands)
        _id(sub)
        if what == "searchspace":
            sub.add_argument("--filename", "-f", required=True, help="search space file (JSON or YAML)")
        else:
            sub.add_argument("--value", "-v", required=True, help="the new value")

    experiment = command("experiment", None, "list, show, export, import and delete experiments")
    exp_commands = experiment.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    listing = command("list", _commands.experiment_list, "list running experiments", exp_commands)
    listing.add_argument("--all", action="store_true", help="include stopped experiments")
    _id(command("show", _commands.experiment_show, "print an experiment's profile (JSON)", exp_commands))
    _id(command("status", _commands.experiment_status, "print an experiment's status", exp_commands))
    delete = command("delete", _commands.experiment_delete, "delete a stopped experiment and its files",
                     exp_commands)
    delete.add_argument("id", nargs="?", help="experiment id")
    delete.add_argument("--all", action="store_true", help="delete every stopped experiment")
    export = command("export", _commands.experiment_export, "export results to CSV or JSON", exp_commands)
    _id(export)
    export.add_argument("--filename", "-f", required=True, help="output file")
    export.add_argument("--type", "-t", choices=("csv", "json"), required=True, help="file format")
    export.add_argument("--intermediate", "-i", action="store_true", help="include intermediate results")
    imp = command("import", _commands.experiment_import, "give a running experiment's tuner prior results",
                  exp_commands)
    _id(imp)
    imp.add_argument("--filename", "-f", required=True,
                     help="JSON list of {parameter, value} or a CSV written by 'experiment export'")

    trial = command("trial", None, "list and kill trials")
    trial_commands = trial.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    ls = command("ls", _commands.trial_ls, "list an experiment's trials", trial_commands)
    _id(ls)
    _head_tail(ls, "trials by default metric (best first)")
    ls.add_argument("--pareto", action="store_true",
                    help="only the trials whose final result is on the Pareto front (multi-objective experiments)")
    ls.add_argument("--status", "-s", type=str.upper, choices=[s.value for s in TrialStatus], metavar="STATUS",
                    help="only the trials in this state (FAILED, SUCCEEDED, RUNNING, ...; any case)")
    feasible = ls.add_mutually_exclusive_group()   # experiments with constraints (docs/constraints.md)
    feasible.add_argument("--feasible", action="store_true", help="only trials whose result meets every constraint")
    feasible.add_argument("--infeasible", action="store_true", help="only trials whose result violates a constraint")
    kill = command("kill", _commands.trial_kill, "kill a running trial", trial_commands)
    _id(kill)
    kill.add_argument("--trial_id", "-T", required=True, help="the trial to kill")
    rerun = command("rerun", _commands.trial_rerun,
                    "run ended trials again with the same parameters (new attempts of the same trials)",
                    trial_commands)
    _id(rerun)
    which = rerun.add_mutually_exclusive_group(required=True)
    which.add_argument("--status", "-s", choices=("FAILED", "USER_CANCELED"), help="every trial in this state")
    which.add_argument("--trial_id", "-T", nargs="+", help="these trials")
    which.add_argument("--all-failed", action="store_true", help="every FAILED trial (same as --status FAILED)")
    rerun.add_argument("--no-extend-budget", action="store_true",
                       help="each re-run uses one trial of what maxTrialNumber has left (default: on top of it)")

    log = command("log", None, "show the manager's or a trial's output")
    log_commands = log.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    for stream in ("stdout", "stderr"):
        sub = command(stream, _commands.log_manager, f"the experiment manager's {stream}", log_commands)
        sub.set_defaults(stream=stream)
        _id(sub)
        _head_tail(sub, "lines")
        sub.add_argument("--path", action="store_true", help="print the log file's path only")
    log_trial = command("trial", _commands.log_trial,
                        "a trial's stdout and stderr (and, when it failed, why)", log_commands)
    log_trial.add_argument("ids", nargs="*", metavar="ID",
                           help="[EXPERIMENT_ID] TRIAL_ID; the experiment defaults to the only running one, "
                                "else the one that has that trial")
    log_trial.add_argument("--trial_id", "-T", help="the trial (NNI's form; the same as giving it after the id)")
    _head_tail(log_trial, "lines")
    log_trial.add_argument("--path", action="store_true", help="print the trial's directory only")

    top = command("top", _commands.top, "a live table of running trials and the best result (Ctrl-C ends)")
    _id(top)
    top.add_argument("--time", "-t", type=float, default=5.0, help="refresh at least every T seconds (default 5)")

    webui = command("webui", _webui.serve, "serve every experiment's web UI pages (no experiment needed); "
                    "'webui url': an experiment's web UI address")
    _port(webui, default=8070, help="port on 127.0.0.1 (default 8070; 0 picks a free port)")
    webui_commands = webui.add_subparsers(dest="subcommand", metavar="[url]")
    _id(command("url", _webui.url, "print the web UI URL of a running or viewed experiment", webui_commands))

    algo = command("algo", None, "list built-in algorithms, register custom ones by name")
    algo_commands = algo.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    command("list", _algo.algo_list, "list built-in and registered tuners and assessors", algo_commands)
    register = command("register", _algo.algo_register, "register a custom tuner/assessor", algo_commands)
    register.add_argument("--meta", "-m", required=True,
                          help="YAML file with algoType (tuner|assessor|advisor), builtinName, className")
    unregister = command("unregister", _algo.algo_unregister, "unregister a custom algorithm", algo_commands)
    unregister.add_argument("name", help="its builtinName")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__
        print(__version__)
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    if getattr(args, "url_prefix", None):
        print("Error: --url_prefix is not supported yet; the REST API and web UI are served at '/'",
              file=sys.stderr)
        return 1
    try:
        return handler(args)
    except (CliError, rest.RestError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`nnictl top | head -4`): that is its choice, not an error.
        # Point stdout at /dev/null so the interpreter's final flush cannot complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


if __name__ == "__main__":
    sys.exit(main())
