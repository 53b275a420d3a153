"""Runs each trial's shell under a child subreaper, so nothing the trial starts outlives it.

The *launcher* of one trial marks itself a *child subreaper* (Linux ``prctl``), then runs
``/bin/sh -c COMMAND``. A daemon the trial double-forks away (fork, setsid, fork, exit)
is re-parented to the launcher instead of to init, so it stays in the trial's process
tree where a kill finds it. When the shell exits, every descendant still alive is
SIGKILLed and reaped, and the launcher exits with the shell's status (a shell killed
by signal N ends the launcher by signal N). SIGTERM/SIGINT/SIGHUP are passed on to
the whole tree; the launcher keeps going until the shell has exited. SIGUSR1 means "end
it all now": the whole tree is SIGKILLed (a SIGKILL to the process group would kill the
launcher first and set the double-forked daemons free to init).

Two ways to get a launcher:

* ``python -I -S _subreaper.py --serve``: a *spawner* that reads one JSON request a line on
  stdin and forks, per trial, a launcher in a new session (no interpreter start per trial:
  the fork of this small process is the launcher). It answers each request with the
  launcher's pid (or the error that kept it from starting: a missing code directory) and
  reports each launcher's exit status, all on stdout. When its stdin closes (the manager
  stopped or died, or the SSH connection was lost) every launcher still running is told
  SIGUSR1, so no trial outlives its manager; a launcher whose spawner is killed is told
  SIGUSR1 too (``PR_SET_PDEATHSIG``). The local service runs one per experiment; the remote
  service one per machine, from this source (``python3 -I -S -c SOURCE --serve``) over one
  SSH channel, with the trials' stdout and stderr relayed over it. See :func:`serve`.
* ``python -I -S _subreaper.py COMMAND``, or its source passed in ``$NNI_NG_LAUNCHER`` and run
  with ``-I -S -c`` under ``$NNI_NG_LAUNCHER_PYTHON`` (Ray: the worker's interpreter; the
  remote service on a machine where the spawner could not start): one launcher, this process.

Kept to the standard library (and to what Python 3.6 has: on a remote machine it runs under
whatever ``python3`` is there) and started with ``-I -S`` so it starts in a few milliseconds.
"""

import os
import sys

try:
    # The C module: the same functions and numbers; 'signal' adds its enums, and importing
    # 'enum' cost every start of this script (the spawner's, each remote trial's launcher) ~6 ms.
    import _signal as signal
except ImportError:   # not CPython
    import signal

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
# Set by the remote and Ray services for the shell that starts the launcher; not the trial's.
_LAUNCHER_VARS = ("NNI_NG_LAUNCHER", "NNI_NG_LAUNCHER_PYTHON")
_PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# The spawner: how long launchers get to end after its stdin closed, before SIGKILL.
_END_GRACE_SECONDS = 5.0


_prctl = []   # libc's prctl once loaded: the spawner loads it before it forks launchers


def _load_prctl() -> None:
    if not _prctl:
        try:
            import ctypes
            _prctl.append(ctypes.CDLL(None, use_errno=True).prctl)
        except (OSError, AttributeError):   # not Linux: descendants that double-fork may escape
            _prctl.append(None)


def _become_subreaper() -> None:
    _load_prctl()
    if _prctl[0] is not None:
        _prctl[0](PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def descendants(*roots: int) -> list:
    """Every descendant of the ``roots`` (not the roots), from one walk of Linux's ``/proc``.

    Also used by the local training service and the reaper (this module is their one
    ``/proc`` walker); it stays standard-library only, as this script runs without nni.
    """
    children = {}   # type: dict
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
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


def _has_children() -> bool:
    """Whether this process has a child, running or not yet reaped (none reaped here).

    A child subreaper with no child has no descendant at all (an orphan below it would have
    been re-parented to it), so the ``/proc`` walk that ends a trial's leftovers (a few ms,
    more on a busy machine) is skipped for the common trial that leaves nothing behind.
    """
    if not hasattr(os, "waitid"):   # macOS: no waitid; the walk decides (it finds nothing without /proc)
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


# A command made only of these characters (and words quoted with ' or ") means to the
# shell exactly what splitting it on spaces and dropping the quotes gives: no expansion,
# redirection, pipe, list, glob, comment or escape can be written without another one.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,+=@%^ '\"")
# Words the shell would run itself (dash's builtins and reserved words), never a program.
_SHELL_WORDS = frozenset((
    ". : [ alias bg break cd chdir command continue echo eval exec exit export false fg getopts hash "
    "jobs kill local printf pwd read readonly return set shift test times trap true type ulimit umask "
    "unalias unset wait ! case do done elif else esac fi for if in then until while { }").split())


def _plain_words(command: str):
    """The words of ``command`` when the shell would only run them as one program; else None.

    None for anything else the shell does more than split on spaces and drop quotes for
    (see ``_PLAIN``), an unclosed quote, a leading ``NAME=value`` or a builtin.
    """
    if not command or not _PLAIN.issuperset(command):
        return None
    words, word, started, quote = [], [], False, None
    for char in command:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                word.append(char)
        elif char in "'\"":
            quote, started = char, True
        elif char == " ":
            if started:
                words.append("".join(word))
                word, started = [], False
        else:
            word.append(char)
            started = True
    if quote is not None:
        return None
    if started:
        words.append("".join(word))
    if not words or words[0] in _SHELL_WORDS or "=" in words[0]:
        return None
    return words


def _find_program(name: str, env: dict):
    """The file the shell would run for ``name``: searched in the trial's ``PATH``, as dash
    does (an empty entry is the working directory); None when not found (the shell says so)."""
    if "/" in name:
        return name
    path = env.get("PATH")
    if path is None:
        return None
    for folder in path.split(":"):
        candidate = os.path.join(folder, name) if folder else name
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _shell_env(env: dict) -> dict:
    """The environment the shell would have given the program: names that are not shell
    variable names dropped (dash does not pass them on), ``PWD`` the working directory."""
    given = {name: value for name, value in env.items()
             if name and name.isascii() and (name[0].isalpha() or name[0] == "_")
             and name.replace("_", "a").isalnum()}
    pwd = given.get("PWD")
    try:
        # dash keeps a PWD that names the working directory (a path through a symlink), else getcwd()
        if not (pwd and pwd.startswith("/") and os.path.samestat(os.stat(pwd), os.stat("."))):
            given["PWD"] = os.getcwd()
    except OSError:
        given["PWD"] = os.getcwd()
    return given


def _start_command(command: str, env: dict):
    """Start the trial's command; ``(pid, direct)``, its signals at their defaults.

    ``direct``: a plain command (one program and its words, ``_plain_words``) runs without
    ``/bin/sh -c``: the shell would only have forked and waited for it (dash does not exec
    the last command), ~1.5 ms of CPU a trial. Anything else, or a program that cannot be
    started (not found, not executable, a script without ``#!``), goes to the shell, which
    does what it always did and says what is wrong.

    ``posix_spawn`` (Python 3.8+; a vfork in glibc) where there is one: a fork would copy this
    interpreter's page tables and then every page its objects' reference counts touch before
    the exec, a few ms of CPU a trial.
    """
    # Python ignores SIGPIPE (and SIGXFSZ); the trial gets the defaults, as subprocess gives them.
    defaults = _PASSED_ON + (signal.SIGUSR1, signal.SIGPIPE, signal.SIGXFSZ)
    shell = ["/bin/sh", "-c", command]
    if hasattr(os, "posix_spawn"):
        words = _plain_words(command)
        program = _find_program(words[0], env) if words else None
        if program is not None:
            try:
                return os.posix_spawn(program, words, _shell_env(env), setsigdef=defaults), True
            except OSError:
                pass
        return os.posix_spawn(shell[0], shell, env, setsigdef=defaults), False
    # Without posix_spawn (Python < 3.8, a remote machine's) always the shell: a failed exec
    # in a forked child could not be told from the program's own exit code 127.
    child = os.fork()
    if child == 0:
        try:
            for sig in defaults:
                signal.signal(sig, signal.SIG_DFL)
            os.execve(shell[0], shell, env)
        finally:
            os._exit(127)
    return child, False


_received = []   # the first of _PASSED_ON (or SIGUSR1) the launcher got, passed on to the trial


def _pass_on(signum: int, kill_all: bool = False) -> None:
    if not _received:
        _received.append(signal.SIGKILL if kill_all else signum)
    _signal_all(signal.SIGKILL if kill_all else signum)


def _launch(command: str, env: dict) -> int:
    """Be the launcher of ``/bin/sh -c command`` (this process, see the module's text).

    Returns the exit code to end with; a shell killed by signal N ends this process by
    signal N here.
    """
    _become_subreaper()
    for sig in _PASSED_ON:
        signal.signal(sig, lambda signum, frame: _pass_on(signum))
    signal.signal(signal.SIGUSR1, lambda signum, frame: _pass_on(signum, kill_all=True))
    trial, direct = _start_command(command, env)
    status = None
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == trial:
            status = wait_status
        if status is not None and _has_children():
            # The trial is over: whatever it left behind (in its group or double-forked
            # away and re-parented here, also later orphans of those) goes now.
            _signal_all(signal.SIGKILL)
    # Every child has been reaped (os.wait raised ChildProcessError).
    if status is None:
        return 1
    if direct:
        status = _as_shell_status(status)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _as_shell_status(status: int) -> int:
    """The wait status ``/bin/sh -c`` would have ended with around a program that ended with
    ``status`` (and its message), so a trial ends the same with or without the shell.

    The signal passed on to the tree, if any: the shell got it too and died of it (dash keeps
    their default actions). Else the program's exit code, or for a program killed by signal N
    exit code 128 + N and, on stderr, what dash prints then: ``Killed``, ``Segmentation fault
    (core dumped)``, ... (nothing for SIGINT and SIGPIPE).
    """
    if _received:
        return _received[0]   # the wait status of "killed by signal N" is N
    if not os.WIFSIGNALED(status):
        return status
    sig = os.WTERMSIG(status)
    if sig not in (signal.SIGINT, signal.SIGPIPE):
        text = signal.strsignal(sig) or "Signal %d" % sig
        if os.WCOREDUMP(status):
            text += " (core dumped)"
        try:
            os.write(2, (text + "\n").encode())
        except OSError:
            pass
    return (128 + sig) << 8


def _start_ticks(pid: int):
    """When ``pid`` started (Linux ``/proc``; as nni.runtime.process.start_ticks); None elsewhere."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _returncode(wait_status: int) -> int:
    """A wait status as asyncio and subprocess tell it: ``-N`` when killed by signal N."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 1


def _fork_launcher(request: dict, keep_closed: tuple, outputs=None) -> int:
    """Fork the launcher of ``request`` in a new session; its pid, or OSError when its setup
    (directories, working directory, output files) failed and nothing runs.

    ``outputs``: the write ends of the two pipes the spawner relays (``"relay"`` requests),
    for the launcher's stdout and stderr; else the files the request names.
    """
    spawner = os.getpid()
    errors_r, errors_w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the launcher: never returns to the spawner's loop
        code, set_up = 127, False
        try:
            os.close(errors_r)
            for fd in keep_closed:
                os.close(fd)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if _prctl and _prctl[0] is not None:
                # The spawner killed (OOM, SIGKILL): SIGUSR1 ends this trial's whole tree, as the
                # spawner's own end would have. Checked after: it may have died before the prctl.
                _prctl[0](PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)
                if os.getppid() != spawner:
                    os._exit(code)
            os.setsid()
            for folder in request.get("mkdir", ()):
                os.makedirs(folder, exist_ok=True)
            os.chdir(request["cwd"])
            if outputs is None:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
                files = [os.open(os.devnull, os.O_RDONLY), os.open(request["stdout"], flags, 0o666),
                         os.open(request["stderr"], flags, 0o666)]
            else:
                files = [os.open(os.devnull, os.O_RDONLY)] + list(outputs)
            for target, fd in enumerate(files):
                os.dup2(fd, target)
                os.close(fd)
            os.close(errors_w)   # the spawner reads EOF: the trial starts
            set_up = True
            code = _launch(request["command"], request["env"])
        except BaseException as exc:
            if not set_up:
                error = getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc), \
                    getattr(exc, "filename", None)
                try:
                    os.write(errors_w, repr(error).encode())
                except OSError:
                    pass
        finally:
            os._exit(code)
    os.close(errors_w)
    report = b""
    while True:
        chunk = os.read(errors_r, 65536)
        if not chunk:
            break
        report += chunk
    os.close(errors_r)
    if report:
        import ast
        errno, strerror, filename = ast.literal_eval(report.decode())
        raise OSError(errno, strerror, filename) if errno else OSError(strerror)
    return pid


def serve() -> None:
    """The spawner: launchers on request, their ends reported (see the module's text).

    Requests (stdin), one JSON object a line: ``{"id", "command", "cwd", "env", "stdout",
    "stderr"}`` (env: the trial's own variables, added to the spawner's environment, which it
    inherited from whoever started it; stdout and stderr are files, appended to), optionally
    ``"mkdir"`` (directories to create first) and ``"relay": true`` (no files: the launcher's
    stdout and stderr are pipes whose data comes back here, for a spawner on another machine).
    Answers (stdout), one a line: ``{"id", "pid", "start"}`` (start: the launcher's start
    time, as ``nni.runtime.process.start_ticks``) or ``{"id", "errno", "error", "filename"}``;
    for a relayed launcher ``{"out": pid, "fd": 1 or 2, "data": text}`` (the bytes as latin-1)
    as its output comes; then ``{"exit": pid, "returncode": N}`` when that launcher ended
    (``-N``: killed by signal N), after the last of its relayed output.
    """
    import json
    import select
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for a foreground manager
    _load_prctl()
    wake_r, wake_w = os.pipe()   # SIGCHLD wakes the select below through this pipe
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    launchers = set()   # type: set
    relayed = {}   # read end of a relayed launcher's stdout/stderr pipe -> (launcher pid, 1 or 2)
    # poll, not select: a remote machine's hundreds of trials hold two pipes each (select stops at fd 1024)
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    base_env = dict(os.environ)   # the manager's (or the SSH session's), when the spawner started
    pending = b""
    stdin_open = True
    closed_at = 0.0

    def answer(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            try:
                data = data[os.write(1, data):]
            except OSError:   # the manager is gone (a broken pipe or SSH channel): its stdin end closes too
                return

    def relay(fd: int, drain: bool) -> None:
        """Pass on what the pipe ``fd`` holds (all of it up to EOF when ``drain``); closed at EOF."""
        pid, target = relayed[fd]
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:   # a writer that escaped the launcher holds it open: enough
                data = None
            if data:
                answer({"out": pid, "fd": target, "data": data.decode("latin-1")})
                if drain:
                    continue
                return
            if data is not None or drain:
                poller.unregister(fd)
                os.close(fd)
                del relayed[fd]
            return

    while stdin_open or launchers:
        timeout = None
        if not stdin_open:
            timeout = max(0.0, closed_at + _END_GRACE_SECONDS - time.monotonic())
        readable = [fd for fd, _ in poller.poll(None if timeout is None else int(timeout * 1000) + 1)]
        if wake_r in readable:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        for fd in readable:
            if fd in relayed:
                relay(fd, drain=False)
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in launchers:
                launchers.discard(pid)
                for fd in [fd for fd, (owner, _) in relayed.items() if owner == pid]:
                    relay(fd, drain=True)   # its tree is gone: what it wrote comes before its exit
                answer({"exit": pid, "returncode": _returncode(wait_status)})
        if not stdin_open and launchers and time.monotonic() >= closed_at + _END_GRACE_SECONDS:
            for pid in launchers:   # stopped or stuck: the whole tree goes now
                for victim in [pid] + descendants(pid):
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except OSError:
                        pass
            closed_at = time.monotonic()
        if 0 not in readable:
            continue
        data = os.read(0, 65536)
        if not data:
            # The manager stopped (its trials have ended) or died, or its connection is lost:
            # no trial outlives it.
            stdin_open, closed_at = False, time.monotonic()
            poller.unregister(0)
            for pid in launchers:
                try:
                    os.kill(pid, signal.SIGUSR1)
                except OSError:
                    pass
            continue
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            request = json.loads(line.decode())
            request["env"] = dict(base_env, **request["env"])
            pipes = (os.pipe(), os.pipe()) if request.get("relay") else ()
            try:
                pid = _fork_launcher(request, (wake_r, wake_w) + tuple(relayed) + tuple(r for r, _ in pipes),
                                     tuple(w for _, w in pipes) or None)
            except OSError as exc:
                for read_end, write_end in pipes:
                    os.close(read_end)
                    os.close(write_end)
                answer({"id": request["id"], "errno": exc.errno, "error": exc.strerror or str(exc),
                        "filename": exc.filename})
                continue
            for target, (read_end, write_end) in enumerate(pipes, 1):
                os.close(write_end)
                os.set_blocking(read_end, False)
                relayed[read_end] = (pid, target)
                poller.register(read_end, select.POLLIN)
            launchers.add(pid)
            # Read here, where the launcher cannot have been reaped yet: with the pid it names the process.
            answer({"id": request["id"], "pid": pid, "start": _start_ticks(pid)})


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    if len(sys.argv) != 2:
        sys.stderr.write("usage: _subreaper.py COMMAND | _subreaper.py --serve\n")
        sys.exit(2)
    env = {name: value for name, value in os.environ.items() if name not in _LAUNCHER_VARS}
    sys.exit(_launch(sys.argv[1], env))


if __name__ == "__main__":
    main()
