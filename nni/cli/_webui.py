"""``nnictl webui``: serve every experiment's page without an experiment; ``nnictl webui url``:
the address of a running experiment's, a viewed one's or that server's web UI."""

from __future__ import annotations

import argparse

from ..errors import NniError
from ..experiment import rest
from ._errors import CliError
from ._experiment import resolve


def serve(args: argparse.Namespace) -> int:
    """The experiments pages on 127.0.0.1 until Ctrl-C (nni/manager/webui/standalone.py)."""
    from ..manager.webui import standalone
    try:
        return standalone.main(args.port)
    except NniError as exc:   # a port in use, a state directory that is not private
        raise CliError(str(exc)) from None


def url(args: argparse.Namespace) -> int:
    """The web UI's address with its ``?token=`` (opening it logs the browser in).

    Without an id: the one experiment served now, running or viewed (``nnictl view``), else
    the ``nnictl webui`` server when one runs.
    """
    from ..manager import registry
    if args.id:
        entry = resolve(args.id)
        if not entry["alive"]:
            raise CliError(f"experiment {entry['id']} is not running; serve it with 'nnictl view {entry['id']}'")
        print(rest.webui_url(entry["port"]))
        return 0
    served = [e for e in registry.list_entries() if e["alive"] and e.get("port")]
    if len(served) == 1:
        print(rest.webui_url(served[0]["port"]))
        return 0
    if len(served) > 1:
        ids = ", ".join(f"{e['id']} ({'viewed' if e.get('status') == 'VIEWED' else 'running'})" for e in served)
        raise CliError(f"several experiments are served ({ids}); name one")
    from ..manager.webui.standalone import running_server, state_dir
    server = running_server()
    if server is not None:
        from ..manager.secret import read_secret
        secret = read_secret(state_dir())
        print(f"{server['url']}/?token={secret}" if secret else server["url"])
        return 0
    raise CliError("no experiment is running or viewed; name one by id (see 'nnictl experiment list --all'), "
                   "or start 'nnictl webui' to browse them all")
