"""Ends a manager's trials when the manager itself dies (``kill -9``, a crash, a lost terminal).

The local training service starts this small process (``python -I -S _reaper.py``) with a pipe on its stdin and
writes ``+PGID`` when a trial's process group (led by its ``_subreaper`` launcher) starts and ``-PGID`` when it has ended.
When the pipe closes without a ``stop`` line (the manager is gone), every group still
listed is killed, so no trial outlives its experiment.

A group is known by its leader's pid and start time (``+PGID START``, or read here when the
line comes, while the leader has just started): a group whose number the system has given
to another process since is left alone.
"""

from __future__ import annotations

import os
import signal
import sys
import time

if __package__:
    from ..runtime.process import group_is_ours, is_same_process, process_start
    from ._subreaper import descendants
else:
    # Run by path (``python -I -S .../_reaper.py``, as the local service starts it): no site
    # and no ``nni.training_service`` package (asyncio, ...), which cost the manager ~30 ms of
    # CPU per experiment. Only ``nni.runtime.process`` and the stdlib-only ``_subreaper`` load.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_HERE, os.path.dirname(os.path.dirname(_HERE))]
    from _subreaper import descendants
    from nni.runtime.process import group_is_ours, is_same_process, process_start


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for a foreground manager
    groups: dict[int, str | None] = {}
    for line in sys.stdin:
        fields = line.split()
        if fields == ["stop"]:
            return
        if not fields or fields[0][:1] not in "+-" or not fields[0][1:].isdigit():
            continue
        pgid = int(fields[0][1:])
        if fields[0][0] == "+":
            groups[pgid] = fields[1] if len(fields) > 1 else process_start(pgid)
        else:
            groups.pop(pgid, None)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid, start in list(groups.items()):
            if not group_is_ours(pgid, start):
                groups.pop(pgid)
                continue
            # The group leader is the trial's launcher, a child subreaper: its tree also
            # holds what the trial double-forked away (those left the group).
            for pid in descendants(pgid) if is_same_process(pgid, start) else ():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                groups.pop(pgid)
        if groups and sig == signal.SIGTERM:
            time.sleep(0.5)

if __name__ == "__main__":
    main()
