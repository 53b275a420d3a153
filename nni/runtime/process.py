"""Whether a process is alive and which one it is, without psutil (light: the trial side uses it too).

A pid alone does not name a process: once it ends, the system gives the number to the next
one. Everywhere nni-ng keeps a pid to signal, or to trust later (the registry's manager, a
trial's process group, on this machine or a remote one), it keeps the pair (pid, start time)
and checks both with :func:`is_same_process` (or :func:`group_is_ours` for a process group).
"""

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


def process_start(pid: int | None) -> str | None:
    """``pid``'s start time as an opaque token, None when there is no such process.

    ``/proc`` where there is one (the same value as :func:`start_ticks`); elsewhere
    ``ps -o lstart=`` (to the second). Only tokens taken on the same machine compare.
    """
    if not pid:
        return None
    ticks = start_ticks(pid)
    if ticks is not None or os.path.isdir("/proc/self"):
        return ticks
    import subprocess   # only without /proc: the lease renewer starts without it (~5 ms)
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return "_".join(out.split()) or None


def is_same_process(pid: int | None, start: str | None) -> bool:
    """True while ``pid`` runs and is the process that started at ``start`` (:func:`process_start`).

    Without a recorded start nothing can be checked, so the answer is False: the caller must
    not signal that pid or trust whatever it finds there.
    """
    return bool(start) and pid_alive(pid) and process_start(pid) == start


def group_is_ours(pgid: int, start: str | None) -> bool:
    """Whether signalling process group ``pgid`` (led by the process ``(pgid, start)``) can only
    reach that group's members.

    True while its leader is that same process; also when no process has the number any more:
    the group's members may outlive their leader, and the system does not give a number to a
    new process while a group of that id exists, so ``killpg`` then reaches either them or
    nobody. False when another process now has the number (its start differs), or when the
    leader's start was never known and the number is taken.
    """
    current = process_start(pgid)
    if current is None:
        return not pid_alive(pgid)
    return bool(start) and current == start


def signal_process(pid: int | None, start: str | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process ``(pid, start)``; True if sent.

    Where the system has pidfds (Linux 5.3+) the check and the signal cannot be split by the
    process ending and its number being reused: the pidfd keeps naming the process it opened.
    """
    if not pid or not start:
        return False
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if not is_same_process(pid, start):
            return False
        try:
            if fd is not None:
                import signal as _signal
                _signal.pidfd_send_signal(fd, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    finally:
        if fd is not None:
            os.close(fd)
