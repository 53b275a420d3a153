"""Runs one trial's shell as a child subreaper, so nothing the trial starts outlives it.

``python -I -S _subreaper.py COMMAND`` (started by the local training service in the
trial's own session) marks itself a *child subreaper* (Linux ``prctl``), then runs
``/bin/sh -c COMMAND``. A daemon the trial double-forks away (fork, setsid, fork, exit)
is re-parented to this process instead of to init, so it stays in the trial's process
tree where a kill finds it. When the shell exits, every descendant still alive is
SIGKILLed and reaped, and this process exits with the shell's status (a shell killed
by signal N ends this process by signal N). SIGTERM/SIGINT/SIGHUP are passed on to
the whole tree; this process keeps going until the shell has exited. SIGUSR1 means "end
it all now": the whole tree is SIGKILLed (a SIGKILL to the process group would kill this
process first and set the double-forked daemons free to init).

Kept to the standard library (and to what Python 3.6 has: on a remote machine it runs under
whatever ``python3`` is there) and started with ``-I -S`` so it costs a trial only a few
milliseconds. The remote and Ray services pass its source in ``$NNI_NG_LAUNCHER`` and run
it with ``-I -S -c`` under ``$NNI_NG_LAUNCHER_PYTHON`` (remote: the machine's ``python3``;
Ray: the worker's interpreter).
"""

import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):   # not Linux: descendants that double-fork may escape
        pass


def descendants(*roots: int) -> list:
    """Every descendant of the ``roots`` (not the roots), from one walk of Linux's ``/proc``.

    Also used by the local training service and the reaper (this module is their one
    ``/proc`` walker); it stays standard-library only, as this script runs without nni.
    """
    children: dict = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid for root in roots for pid in children.get(root, ())]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _signal_all(sig: int) -> None:
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def main() -> None:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: _subreaper.py COMMAND\n")
        sys.exit(2)
    _become_subreaper()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: _signal_all(signum))
    signal.signal(signal.SIGUSR1, lambda signum, frame: _signal_all(signal.SIGKILL))
    shell = os.fork()
    if shell == 0:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        for name in ("NNI_NG_LAUNCHER", "NNI_NG_LAUNCHER_PYTHON"):   # set by the remote/Ray services
            os.environ.pop(name, None)
        try:
            os.execv("/bin/sh", ["/bin/sh", "-c", sys.argv[1]])
        finally:
            os._exit(127)
    status = None
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == shell:
            status = wait_status
        if status is not None:
            # The trial is over: whatever it left behind (in its group or double-forked
            # away and re-parented here, also later orphans of those) goes now.
            _signal_all(signal.SIGKILL)
    # Every child has been reaped (os.wait raised ChildProcessError).
    if status is None:
        sys.exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":
    main()
