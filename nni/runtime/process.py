"""Whether a process is alive and which one it is, without psutil (light: the trial side uses it too)."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """True while ``pid`` runs (also when it is another user's); a zombie is not alive."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return True


def start_ticks(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, Linux ``/proc``), to tell it from a later
    process that reuses its pid; None when it is gone (or not on Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None
