"""Start a manager process for ``create``, ``resume`` and ``view``, detached or in the foreground."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from ..manager import registry
from ._errors import CliError


def start_manager(manager_args: list[str], *, foreground: bool) -> dict[str, Any] | None:
    """Run ``python -m nni.manager ARGS``; detached: return its ready info once it serves.

    In the foreground the manager runs in this process until it is stopped (returns None).
    """
    if foreground:
        from ..manager.__main__ import main as manager_main
        code = manager_main(manager_args + ["--foreground"])
        if code:
            raise CliError("the experiment manager failed (see above)")
        return None
    log_dir = registry.registry_dir().parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # Where a manager that fails before its experiment directory exists says why.
    launch_log = log_dir / f"manager-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    read_fd, write_fd = os.pipe()
    with open(launch_log, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "nni.manager", *manager_args, "--ready-fd", str(write_fd)],
                                   pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
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
    launch_log.unlink(missing_ok=True)
    return info
