"""Ends a manager's trials when the manager itself dies (``kill -9``, a crash, a lost terminal).

The local training service starts this small process with a pipe on its stdin and
writes ``+PGID`` when a trial's process group (led by its ``_launcher``) starts and ``-PGID`` when it has ended.
When the pipe closes without a ``stop`` line (the manager is gone), every group still
listed is killed, so no trial outlives its experiment.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ._launcher import descendants


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for a foreground manager
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line == "stop":
            return
        if line[:1] in "+-" and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in list(groups):
            # The group leader is the trial's launcher, a child subreaper: its tree also
            # holds what the trial double-forked away (those left the group).
            for pid in descendants(pgid):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                groups.discard(pgid)
            except PermissionError:
                groups.discard(pgid)
        if groups and sig == signal.SIGTERM:
            time.sleep(0.5)


if __name__ == "__main__":
    main()
