"""Runs trials on other machines over SSH (``platform: remote``), on asyncssh.

Per machine: one SSH connection, kept for the whole experiment. The trial code directory
is uploaded once (a gzipped tar over an exec channel, ``.nniignore`` honoured) into
``<remoteWorkingDirectory>/<experiment id>/code``; each trial runs in its own session and
process group from that directory, with ``<...>/trials/<trial id>`` as its
``NNI_SYS_DIR``/``NNI_OUTPUT_DIR``. The trial reaches the manager through a reverse port
forward of the same connection (``127.0.0.1:<port>`` on the remote host), so neither
``nniManagerIp`` nor an open firewall port is needed.

Trials are started by the machine's *spawner*: ``_subreaper.py --serve`` run by its
``python3`` in one SSH channel per connection (the local service's spawner and protocol,
through the same client, :class:`._spawner.Spawner`). Each trial is one JSON line on that
channel; the spawner forks the trial's launcher (a child subreaper, leader of the trial's
new session), relays its stdout/stderr back over the channel into the local trial directory
(``stdout``/``stderr``, the local layout) and reports its exit. No SSH channel, shell or
interpreter start per trial beyond the trial's own (and the lease keeper).

No orphans: when the spawner's stdin closes (manager stopped or killed, connection lost) it
tells every launcher to SIGKILL its tree; a launcher whose spawner is killed does the same
(``PR_SET_PDEATHSIG``). Where the machine's ``python3`` cannot run the spawner (checked at
connect, :data:`._common.LAUNCHER_PROBE`), or it did not start, each trial gets its own
channel as before, with a watchdog in its process group that reads the channel and SIGKILLs
the group when it closes (:func:`._common.watched_trial_script`, shared with the Ray service).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NniError
from ._common import (LAUNCHER_PROBE, STDERR_TAIL_BYTES, TrialQueue, end_message, launcher_env,
                      watched_trial_script)
from ._spawner import LaunchedTrial, Spawner
from ._upload import pack_code_dir
from .base import GpuNeeds, InterruptedTrial, ServiceContext, TrainingService, TrialEnded, TrialSpec
from .gpu import GpuError, choose_gpus

_log = logging.getLogger("nni.training_service.remote")

CONNECT_TIMEOUT_SECONDS = 15.0
# SSH keepalives find a dead peer (cable pulled, host down) that TCP alone notices only
# after minutes: 3 unanswered probes 5 s apart fail the connection.
KEEPALIVE_INTERVAL_SECONDS = 5.0
KEEPALIVE_COUNT_MAX = 3
KILL_GRACE_SECONDS = 1.0
RECONNECT_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)   # then 30 s forever
PGID_MARKER = b"NNI-NG-PGID "
# A user's shell start-up files (a ~/.bashrc that sshd's bash reads: banners, conda, pyenv) may
# print before our command runs; what we parse starts after this line, and what a trial's shell
# printed before its group id line is kept in the trial's stdout (bounded).
OUTPUT_MARKER = "NNI-NG-OUTPUT"
STARTUP_OUTPUT_LIMIT = 1 << 20

# Shell functions (POSIX sh): `_nni_start PID` prints when PID started there (from /proc, field 22
# of /proc/PID/stat, else `ps -o lstart=`; empty when neither can tell or there is no such
# process); `_nni_ours PGID START` is true when signalling group PGID can reach only the trial
# group whose leader started at START: the leader is still that process, or no process has the
# number (the group's members may outlive their leader, and the number is not given to a new
# process while the group exists). A pid the system has given to another process since, or a
# live one whose start cannot be told, is left alone. The same rule as
# nni.runtime.process.group_is_ours, on the remote machine.
_IDENTITY_FUNCTIONS = (
    "_nni_start() { s=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20); "
    "[ -n \"$s\" ] || s=$(ps -o lstart= -p $1 2>/dev/null | tr -s ' ' _); echo \"$s\"; }; "
    "_nni_ours() { c=$(_nni_start $1); if [ -n \"$c\" ]; then [ \"$c\" = \"$2\" ]; "
    "else ! kill -0 $1 2>/dev/null; fi; }; ")

# The lease keeper (nni.runtime.lease renews this attempt's lease while the shell $$, which
# becomes the trial's, runs), started in the background by the shell that starts the trial.
_LEASE_KEEPER = ('if [ -n "$NNI_TRIAL_LEASE_INTERVAL" ]; then '
                 '(if command -v python3 >/dev/null; then exec python3 -m nni.runtime.lease $$; '
                 'else exec python -m nni.runtime.lease $$; fi) </dev/null >/dev/null 2>&1 3<&- & fi; ')
# A trial started by the machine's spawner: the launcher (its parent, $PPID) leads the trial's
# group; this shell records it, starts the lease keeper, then becomes the trial's shell.
_SPAWNED_TRIAL = ('echo "$PPID" > "$NNI_SYS_DIR/trial.pid"; ' + _LEASE_KEEPER
                  + 'exec /bin/sh -c "$NNI_NG_TRIAL_COMMAND"')
# Without a spawner (a machine whose python3 cannot run it), a channel per trial; this runs
# inside the trial's new session as /bin/sh: record the group id and say it on stdout, start
# the watchdog on the channel, the lease keeper, then become the trial's launcher (or shell;
# same pid, so the group leader).
_INNER_SCRIPT = watched_trial_script(
    before=(_IDENTITY_FUNCTIONS + 'echo "$$" > "$NNI_SYS_DIR/trial.pid"; '
            'printf "NNI-NG-PGID %s %s\\n" "$$" "$(_nni_start $$)"; '),
    after_watchdog=_LEASE_KEEPER)


class RemoteError(NniError, RuntimeError):
    """A remote machine cannot be used (unreachable, authentication failed, missing tools)."""


class _SshPipe:
    """A machine's spawner as :class:`._spawner.SpawnerPipe`: the stdin and stdout of its SSH channel."""

    def __init__(self, process: Any) -> None:
        self._process = process   # asyncssh.SSHClientProcess, encoding None
        self._input_closed = False

    def write(self, data: bytes) -> None:
        self._process.stdin.write(data)

    async def drain(self) -> None:
        await self._process.stdin.drain()

    async def readline(self) -> bytes:
        return await self._process.stdout.readline()

    def close_input(self) -> None:
        if not self._input_closed:
            self._input_closed = True
            try:
                self._process.stdin.write_eof()
            except Exception:  # noqa: BLE001 - the channel is gone already: so is the spawner's stdin
                pass

    def input_closed(self) -> bool:
        return self._input_closed or self._process.stdin.is_closing()

    async def wait(self) -> None:
        try:
            await self._process.wait()
        except Exception:  # noqa: BLE001 - the connection went away: the channel is closed all the same
            pass

    def kill(self) -> None:
        self._process.close()


@dataclass
class _RemoteTrial:
    spec: TrialSpec
    machine: "_Machine"
    process: Any = None                 # asyncssh.SSHClientProcess (a trial without the spawner)
    launched: LaunchedTrial | None = None   # its launcher (a trial the machine's spawner started)
    pgid: int | None = None
    pgid_start: str = ""                # when the group's leader started there ('' if unknown)
    gpus: list[int] | None = None
    starter: asyncio.Task | None = None
    watcher: asyncio.Task | None = None
    ended: bool = False
    killing: bool = False


@dataclass
class _Machine:
    config: Any                         # RemoteMachineConfig
    conn: Any = None                    # asyncssh.SSHClientConnection
    listener: Any = None                # reverse port forward
    forward_port: int | None = None
    home: str = ""
    launcher: bool = False              # its python3 can run the launcher (see _common.LAUNCHER_PROBE)
    spawner: Spawner | None = None      # starts its trials (one SSH channel), see _start_spawner
    spawner_conn: Any = None            # the connection the spawner was started on (once per connection)
    banner: bytes = b""                 # what the shell's start-up printed before the spawner ran
    prepared_for: str | None = None     # experiment id whose code is uploaded
    trials: dict[str, _RemoteTrial] = field(default_factory=dict)
    lost_pgids: list[tuple[int, str]] = field(default_factory=list)   # (pgid, its leader's start)
    gpu_needs: GpuNeeds = field(default_factory=GpuNeeds)   # trialGpuNumber with this machine's rules
    gpus: list[int] | None = None       # usable GPU indices (None: not GPU-scheduled)
    gpu_load: dict[int, int] = field(default_factory=dict)
    reconnect: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_error: str = ""

    @property
    def name(self) -> str:
        return f"{self.config.user}@{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        return self.conn is not None


def _kill_command(groups: list[tuple[int, str]], signal_name: str) -> str:
    """``/bin/sh`` text that sends ``signal_name`` to the process groups ``(pgid, leader start)``.

    Each group is signalled only while ``_nni_ours`` holds (checked again before each signal):
    never a number the system has given to another process since. A SIGKILL to a group would
    end its leader, the trial's launcher, before the daemons the trial double-forked out of the
    group (still in the launcher's tree) could be found: the launcher is first asked to SIGKILL
    its tree (SIGUSR1) and given up to 2 s.
    """
    parts = [_IDENTITY_FUNCTIONS]
    for pgid, start in groups:
        ours = f"_nni_ours {int(pgid)} {shlex.quote(start)}"
        if signal_name == "KILL":
            parts.append(f"{ours} && {{ kill -USR1 {pgid} 2>/dev/null; i=0; while [ $i -lt 20 ] && "
                         f"kill -0 {pgid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; }}; ")
        parts.append(f"{ours} && kill -s {signal_name} -- -{pgid} 2>/dev/null; ")
    return "".join(parts) + "true"


async def _run_for_output(conn: Any, command: str) -> tuple[int | None, str, str]:
    """Run ``command``; its exit status, its stdout without what the shell's start-up printed, its stderr."""
    result = await conn.run(f"echo {OUTPUT_MARKER}; {command}", check=False)
    stdout = str(result.stdout or "")
    _, marked, after = stdout.partition(OUTPUT_MARKER + "\n")
    return result.exit_status, after if marked else stdout, str(result.stderr or "")


# Where a trial's process record was kept, in its local directory, before the store kept it
# (read by a resume of an experiment from an earlier version).
_REMOTE_FILE = "trial.remote"
_USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
_SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
_known_hosts_lock = threading.Lock()


def _known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names ``host:port`` in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def _known_host_keys(host: str, port: int) -> Any:
    """What known_hosts (the user's, then the system's) says about ``host:port``, for asyncssh's
    ``known_hosts`` option; None when it does not list that host at all.

    Read at each connection, so a key added by hand (or by accept-new) counts on the next.
    """
    import asyncssh

    files = [f for f in (os.path.expanduser(_USER_KNOWN_HOSTS), _SYSTEM_KNOWN_HOSTS) if os.path.isfile(f)]
    if not files:
        return None
    matched = asyncssh.read_known_hosts(files).match(host, "", None if port == 22 else port)
    # (host keys, CA keys, revoked keys, X.509 ...): a CA or a revocation also counts as listed.
    return matched if any(matched[:3]) else None


def _accept_new_host_key(machine: "_Machine", key: Any) -> None:
    """``hostKeyCheck: accept-new``: add the key the host showed on its first connection."""
    cfg = machine.config
    path = Path(os.path.expanduser(_USER_KNOWN_HOSTS))
    algorithm, data = key.export_public_key("openssh").decode().split()[:2]
    with _known_hosts_lock:   # machines connect concurrently; each host is added once
        if _known_host_keys(cfg.host, cfg.port) is not None:
            return
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "a") as f:
            if f.tell() and not path.read_bytes().endswith(b"\n"):
                f.write("\n")
            f.write(f"{_known_hosts_name(cfg.host, cfg.port)} {algorithm} {data}\n")
    _log.warning("machine %s: host key %s %s was not known; added to %s (hostKeyCheck: accept-new)",
                 machine.name, algorithm, key.get_fingerprint(), path)


def _auth_hint(config: Any) -> str:
    if config.password is not None:
        return "password"
    if config.ssh_key_file is not None:
        return f"sshKeyFile {config.ssh_key_file}"
    return "the SSH agent / default keys (~/.ssh/id_*)"


class RemoteTrainingService(TrainingService):
    """Trials on the machines of ``trainingService.machineList``, least loaded machine first."""

    def __init__(self, context: ServiceContext) -> None:
        super().__init__()
        self._context = context
        service = context.service
        gpu_number = context.gpu.trial_gpu_number
        self._machines = [_Machine(m, gpu_needs=GpuNeeds.of(gpu_number, m)) for m in service.machine_list]
        self._working_dir: str = service.remote_working_directory
        self._trials: dict[str, _RemoteTrial] = {}
        # One dispatcher at a time (the queue's): it awaits (nvidia-smi, callbacks) between
        # picking a trial and a machine, and two interleaved ones could start a trial twice.
        self._queue = TrialQueue(self, self._dispatch_locked)
        self._stopping = False
        self._rr = 0
        self._tasks: set[asyncio.Task] = set()   # background tasks, referenced until done

    def _background(self, coroutine: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections -----------------------------------------------------------------------
    async def start(self) -> None:
        results = await asyncio.gather(*(self._connect(m) for m in self._machines), return_exceptions=True)
        errors = [str(r) for r in results if isinstance(r, BaseException)]
        if errors:
            await self._close_all()
            raise RemoteError("; ".join(errors))

    async def _connect(self, machine: _Machine) -> None:
        import asyncssh

        cfg = machine.config
        known = _known_host_keys(cfg.host, cfg.port)
        accept_new = known is None and cfg.host_key_check == "accept-new"
        options: dict[str, Any] = {
            "host": cfg.host, "port": cfg.port, "username": cfg.user,
            # Not listed: no key is trusted (b""), or with accept-new any key, added below.
            "known_hosts": None if accept_new else (known or b""),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "keepalive_interval": KEEPALIVE_INTERVAL_SECONDS,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        }
        if cfg.password is not None:
            options["password"] = cfg.password
            options["client_keys"] = None
        if cfg.ssh_key_file is not None:
            options["client_keys"] = [os.path.expanduser(str(cfg.ssh_key_file))]
            if cfg.ssh_passphrase is not None:
                options["passphrase"] = cfg.ssh_passphrase
        try:
            conn = await asyncssh.connect(**options)
        except asyncssh.PermissionDenied as exc:
            raise RemoteError(f"machine {machine.name}: authentication failed with {_auth_hint(cfg)} "
                              f"({exc.reason or exc})") from None
        except asyncssh.KeyImportError as exc:
            raise RemoteError(f"machine {machine.name}: cannot read sshKeyFile {cfg.ssh_key_file} "
                              f"({exc}); a wrong or missing sshPassphrase?") from None
        except asyncssh.HostKeyNotVerifiable:
            listed = _known_hosts_name(cfg.host, cfg.port)
            if known is None:
                raise RemoteError(
                    f"machine {machine.name}: host key not verified: {listed} is not in {_USER_KNOWN_HOSTS}, so the "
                    f"host cannot be told from a man in the middle (who would get the password); connect once "
                    f"with 'ssh -p {cfg.port} {cfg.user}@{cfg.host}' and check the fingerprint it shows, or set "
                    f"hostKeyCheck: accept-new for this machine") from None
            raise RemoteError(
                f"machine {machine.name}: host key verification failed: the key {listed} showed does not match "
                f"{_USER_KNOWN_HOSTS}: someone may be intercepting the connection, or the host was reinstalled "
                f"(if you know it was, remove the old key with 'ssh-keygen -R {shlex.quote(listed)}')") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise RemoteError(f"machine {machine.name}: cannot connect ({reason})") from None
        try:
            if accept_new:
                _accept_new_host_key(machine, conn.get_server_host_key())
            _, stdout, _ = await _run_for_output(conn, 'echo "$HOME"; command -v setsid >/dev/null && echo setsid-ok')
            lines = stdout.splitlines()
            if "setsid-ok" not in lines:
                raise RemoteError(f"machine {machine.name}: 'setsid' (util-linux) is not installed there; "
                                  "it is needed to run each trial in its own process group")
            machine.home = lines[0] if lines else ""
            _, stdout, _ = await _run_for_output(conn, self._with_path(machine, LAUNCHER_PROBE))
            machine.launcher = "launcher-ok" in stdout.splitlines()
            if not machine.launcher:
                _log.warning("machine %s: no python3 (3.6+) on the trials' PATH there; its trials run without "
                             "the launcher, so a daemon a trial double-forks may outlive it", machine.name)
            if machine.gpu_needs.trial_gpu_number and machine.gpus is None:
                machine.gpus = await self._detect_gpus(machine, conn)
        except BaseException:
            conn.close()
            raise
        machine.conn = conn
        machine.last_error = ""
        self._background(self._watch_connection(machine, conn))

    async def _watch_connection(self, machine: _Machine, conn: Any) -> None:
        """Wait for ``conn`` to close; if unexpected, fail its trials and reconnect in the background."""
        try:
            await conn.wait_closed()
        except Exception:  # noqa: BLE001 - any way of closing counts
            pass
        if machine.conn is not conn:
            return
        machine.conn = None
        machine.listener = None
        machine.forward_port = None
        machine.spawner = None   # it ended with its channel: its launchers were told SIGUSR1
        if self._stopping:
            return
        reason = f"lost the SSH connection to machine {machine.name}"
        _log.warning("%s; failing its %d running trial(s) and reconnecting", reason, len(machine.trials))
        for trial in list(machine.trials.values()):
            if trial.pgid is not None:
                machine.lost_pgids.append((trial.pgid, trial.pgid_start))
            await self._trial_ended(trial, None, f"{reason} while the trial ran", lost=True)
        machine.reconnect = self._background(self._reconnect(machine))

    async def _reconnect(self, machine: _Machine) -> None:
        attempt = 0
        while not self._stopping:
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
            try:
                await self._connect(machine)
            except Exception as exc:  # noqa: BLE001 - keep trying whatever went wrong
                machine.last_error = str(exc)
                _log.info("reconnect %d to %s failed: %s", attempt, machine.name, exc)
                continue
            _log.info("reconnected to %s", machine.name)
            if machine.lost_pgids:
                # The watchdogs should have ended these when the channels closed; make sure.
                await self._kill_groups(machine, list(machine.lost_pgids), "KILL")
                machine.lost_pgids.clear()
            machine.prepared_for = None   # re-create the forward (and re-check the code)
            await self._queue.dispatch()
            return

    async def _close_all(self) -> None:
        for machine in self._machines:
            if machine.reconnect is not None:
                machine.reconnect.cancel()
            spawner, machine.spawner = machine.spawner, None
            if spawner is not None:
                # Its stdin closes: it ends what still runs (nothing, after stop's kills) and exits.
                await spawner.close()
            conn, machine.conn = machine.conn, None
            if conn is not None:
                conn.close()
                try:
                    await asyncio.wait_for(conn.wait_closed(), 5)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                    pass

    # -- GPUs ------------------------------------------------------------------------------
    async def _smi(self, machine: _Machine, conn: Any) -> tuple[list[tuple[int, str]], dict[str, set[int]], dict[int, int]]:
        """GPUs (index, uuid), GPU uuid -> pids computing on it, and pid -> process group on the machine."""
        fmt = "--format=csv,noheader,nounits"
        status, stdout, stderr = await _run_for_output(conn, self._with_path(
            machine, f"nvidia-smi --query-gpu=index,uuid {fmt} && echo --- && "
                     f"nvidia-smi --query-compute-apps=gpu_uuid,pid {fmt} && echo --- && ps -eo pid=,pgid="))
        if status != 0:
            raise GpuError(f"machine {machine.name}: nvidia-smi failed (exit code {status}): "
                           f"{(stderr or stdout).strip()[:500]}")
        sections = stdout.split("---\n")
        gpus = [(int(r[0]), r[1]) for r in (line.split(", ") for line in sections[0].splitlines() if line.strip())]
        busy: dict[str, set[int]] = {}
        for line in sections[1].splitlines() if len(sections) > 1 else ():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 2 and parts[1].isdigit():
                busy.setdefault(parts[0], set()).add(int(parts[1]))
        groups = {}
        for line in sections[2].splitlines() if len(sections) > 2 else ():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                groups[int(parts[0])] = int(parts[1])
        return gpus, busy, groups

    async def _detect_gpus(self, machine: _Machine, conn: Any) -> list[int]:
        gpus, _, _ = await self._smi(machine, conn)
        indices = [index for index, _ in gpus]
        needs = machine.gpu_needs
        allowed = needs.gpu_indices
        if allowed is not None:
            missing = sorted(set(allowed) - set(indices))
            if missing:
                raise GpuError(f"machine {machine.name}: gpuIndices {missing} do not exist there (found {indices})")
            indices = [i for i in indices if i in set(allowed)]
        if len(indices) < (needs.trial_gpu_number or 0):
            raise GpuError(f"trialGpuNumber is {needs.trial_gpu_number} but machine {machine.name} has only "
                           f"{len(indices)} usable GPU(s) {indices}")
        return indices

    async def _allocate_gpus(self, machine: _Machine, number: int) -> tuple[list[int] | None, str]:
        """Same rules as the local service: maxTrialNumberPerGpu per GPU, busy GPUs skipped unless useActiveGpu."""
        assert machine.gpus is not None
        busy: set[int] = set()
        if not machine.gpu_needs.use_active_gpu:
            gpus, apps, groups = await self._smi(machine, machine.conn)
            own = {t.pgid for t in machine.trials.values() if t.pgid is not None}
            for index, uuid in gpus:
                if any(groups.get(pid) not in own for pid in apps.get(uuid, ())):
                    busy.add(index)
        chosen, reason = choose_gpus(machine.gpus, busy, machine.gpu_load, machine.gpu_needs.max_trial_number_per_gpu,
                                     number)
        return chosen, (f"{machine.name}: {reason}" if chosen is None else "")

    # -- preparing a machine for the experiment ------------------------------------------------
    def _remote_root(self, machine: _Machine) -> str:
        base = self._working_dir
        if base == "~":
            base = machine.home
        elif base.startswith("~/"):
            base = machine.home.rstrip("/") + base[1:]
        return f"{base.rstrip('/')}/{self._context.experiment_id}"

    def _with_path(self, machine: _Machine, command: str) -> str:
        python_path = machine.config.python_path
        if python_path:
            # "~/venv/bin" is common in configs; quoting would stop the shell expanding it.
            parts = [machine.home + p[1:] if p == "~" or p.startswith("~/") else p for p in python_path.split(":")]
            return f"export PATH={shlex.quote(':'.join(parts))}:\"$PATH\"; {command}"
        return command

    async def _prepare(self, machine: _Machine, spec: TrialSpec) -> None:
        """Upload the code (once per experiment), open the reverse forward to the manager and
        start the machine's spawner (once per connection)."""
        async with machine.lock:
            if machine.prepared_for != self._context.experiment_id or not machine.connected:
                await self._upload_and_forward(machine, spec)
            if machine.launcher and machine.spawner_conn is not machine.conn:
                machine.spawner_conn = machine.conn
                machine.spawner = await self._start_spawner(machine)

    async def _start_spawner(self, machine: _Machine) -> Spawner | None:
        """The machine's spawner (``_subreaper.py --serve`` run by its python3 over one SSH
        channel); None, with a warning, where it does not start (its trials then get a
        channel each, as on a machine whose python3 cannot run the launcher)."""
        command = self._with_path(machine, f"echo {OUTPUT_MARKER}; exec python3 -I -S -c "
                                           f"{shlex.quote(launcher_env('python3')['NNI_NG_LAUNCHER'])} --serve")
        try:
            process = await machine.conn.create_process(command, encoding=None)
            banner = b""
            while True:   # what the user's shell start-up files printed comes first
                line = await process.stdout.readline()
                if not line or line.rstrip(b"\r\n") == OUTPUT_MARKER.encode():
                    break
                banner += line
            if not line:
                stderr = await process.stderr.read()
                raise RemoteError((banner + stderr).decode(errors="replace").strip()[:500] or "no output")
        except Exception as exc:  # noqa: BLE001 - any failure: the per-trial way still works
            _log.warning("machine %s: the trial spawner did not start (%s); each trial there gets its own "
                         "SSH channel and launcher", machine.name, exc)
            return None
        machine.banner = banner[:STARTUP_OUTPUT_LIMIT]
        self._background(self._log_spawner_stderr(machine, process))
        return Spawner(_SshPipe(process), remote=True)

    @staticmethod
    async def _log_spawner_stderr(machine: _Machine, process: Any) -> None:
        """Read the spawner's stderr (an unread channel stream would stall it), for the log."""
        try:
            while line := await process.stderr.readline():
                _log.info("machine %s: trial spawner: %s", machine.name, line.decode(errors="replace").rstrip())
        except Exception:  # noqa: BLE001 - the connection went away
            pass

    async def _upload_and_forward(self, machine: _Machine, spec: TrialSpec) -> None:
        """Upload the code and open the reverse forward (:meth:`_prepare`, under the machine's lock)."""
        conn = machine.conn
        if conn is None:
            raise RemoteError(f"machine {machine.name} is not connected")
        root = self._remote_root(machine)
        code_dir = f"{root}/code"
        marker = f"{root}/code.done"
        check = await conn.run(f"test -f {shlex.quote(marker)}", check=False)
        if check.exit_status != 0:
            data, count = await asyncio.get_running_loop().run_in_executor(None, pack_code_dir, spec.code_dir)
            started = time.monotonic()
            command = (f"rm -rf {shlex.quote(code_dir)} && mkdir -p {shlex.quote(code_dir)} "
                       f"{shlex.quote(root + '/trials')} && tar -xzf - -C {shlex.quote(code_dir)} && "
                       f"touch {shlex.quote(marker)}")
            result = await conn.run(command, input=data, encoding=None, check=False)
            if result.exit_status != 0:
                raise RemoteError(f"machine {machine.name}: uploading trialCodeDirectory to {code_dir} failed: "
                                  f"{(result.stderr or b'').decode(errors='replace').strip()[:500]}")
            _log.info("uploaded %d file(s) (%d bytes) to %s:%s in %.2f s", count, len(data), machine.name,
                      code_dir, time.monotonic() - started)
        if machine.listener is None:
            try:
                machine.listener = await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1",
                                                                  self._context.manager_port)
                machine.forward_port = machine.listener.get_port()
            except Exception as exc:  # noqa: BLE001 - forwarding disabled by the server
                # Fall back to the address the manager gave (nniManagerIp must then be reachable).
                _log.warning("machine %s refused the reverse port forward (%s); trials there use %s",
                             machine.name, exc, self._context.trial_channel)
                machine.listener = False
                machine.forward_port = None
        machine.prepared_for = self._context.experiment_id

    # -- trials ----------------------------------------------------------------------------
    async def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)
        await self._queue.dispatch()

    async def _dispatch_locked(self) -> None:
        """Start queued trials on the least loaded connected machines that can take them (run by the queue)."""
        while self._queue and not self._stopping:
            spec = self._queue.specs[0]
            candidates = [m for m in self._machines if m.connected]
            if not candidates:
                down = "; ".join(f"{m.name}: {m.last_error or 'reconnecting'}" for m in self._machines)
                for queued in list(self._queue.specs):
                    await self._queue.wait(queued, f"waiting for a remote machine: none is connected ({down})")
                return
            # Least loaded first; equal loads rotate so trials spread over the machines.
            order = sorted(range(len(candidates)),
                           key=lambda i: (len(candidates[i].trials), (i - self._rr) % len(candidates)))
            chosen, gpus, reasons = None, None, []
            for i in order:
                machine = candidates[i]
                if spec.gpu_number > 0 and machine.gpus is not None:
                    try:
                        gpus, reason = await self._allocate_gpus(machine, spec.gpu_number)
                    except Exception as exc:  # noqa: BLE001 - nvidia-smi failed: skip this machine for now
                        gpus, reason = None, f"{machine.name}: {exc}"
                    if gpus is None:
                        reasons.append(reason)
                        continue
                chosen = machine
                break
            if chosen is None:
                for queued in list(self._queue.specs):
                    await self._queue.wait(queued, f"waiting for {spec.gpu_number} free GPU(s): " + " | ".join(reasons))
                # GPUs held by other programs free up without telling us: look again later.
                self._queue.recheck_later()
                return
            if not self._queue.take(spec):   # killed while nvidia-smi ran
                if gpus is not None:
                    self._release_gpus(chosen, gpus)
                continue
            self._rr += 1
            trial = _RemoteTrial(spec, chosen, gpus=gpus)
            self._trials[spec.trial_id] = trial
            chosen.trials[spec.trial_id] = trial
            # Started concurrently: an SSH session takes a while to open, trials need not queue for it.
            trial.starter = self._background(self._start(trial))

    async def _start(self, trial: _RemoteTrial) -> None:
        try:
            await self._spawn(trial)
        except Exception as exc:  # noqa: BLE001 - one trial's start failing must not stop the others
            await self._trial_ended(trial, None, f"could not start the trial on {trial.machine.name}: {exc}",
                                    lost=not trial.machine.connected)

    @staticmethod
    def _release_gpus(machine: _Machine, gpus: list[int]) -> None:
        for i in gpus:
            machine.gpu_load[i] = max(0, machine.gpu_load.get(i, 0) - 1)

    def _trial_env(self, trial: _RemoteTrial) -> dict[str, str]:
        """The trial's own variables (the machine's environment, as its SSH sessions get it, adds the rest)."""
        machine, spec = trial.machine, trial.spec
        env = dict(spec.env)
        env["NNI_PLATFORM"] = "remote"
        env["NNI_SYS_DIR"] = env["NNI_OUTPUT_DIR"] = self._remote_trial_dir(trial)
        if machine.forward_port:
            env["NNI_TRIAL_CHANNEL"] = f"http://127.0.0.1:{machine.forward_port}"
        env.update(machine.gpu_needs.cuda_env(trial.gpus))
        env["NNI_NG_TRIAL_COMMAND"] = spec.command
        return env

    def _remote_trial_dir(self, trial: _RemoteTrial) -> str:
        return f"{self._remote_root(trial.machine)}/trials/{trial.spec.trial_id}"

    def _command(self, trial: _RemoteTrial) -> str:
        """The SSH command of a trial started without the spawner (its own channel)."""
        machine = trial.machine
        env = self._trial_env(trial)
        if machine.launcher:
            env.update(launcher_env("python3"))
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return self._with_path(machine, (
            f"mkdir -p {shlex.quote(self._remote_trial_dir(trial))} && "
            f"cd {shlex.quote(self._remote_root(machine) + '/code')} && "
            f"export {exports} && exec setsid -w /bin/sh -c {shlex.quote(_INNER_SCRIPT)}"))

    async def _spawn(self, trial: _RemoteTrial) -> None:
        machine, spec = trial.machine, trial.spec
        await self._prepare(machine, spec)
        trial_dir = Path(spec.trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        spawner = machine.spawner
        if spawner is not None and spawner.running:
            await self._spawn_through_spawner(trial, spawner)
        else:
            if spawner is not None:   # killed there: not restarted on this connection (no crash loop)
                machine.spawner = None
                _log.warning("machine %s: its trial spawner ended; until it reconnects, each trial there gets "
                             "its own SSH channel and launcher", machine.name)
            await self._spawn_in_channel(trial)
        trial.watcher = self._background(self._watch(trial))
        if self.on_trial_start is not None:
            # For a resumed manager (stored with the attempt): which machine ran the trial and its
            # process group there, with its leader's start (by then the number may be another process's).
            await self.on_trial_start(spec.trial_id, machine=machine.name, process=(
                f"{machine.name} {trial.pgid} {self._remote_root(machine)} {trial.pgid_start or '-'}"))

    async def _spawn_through_spawner(self, trial: _RemoteTrial, spawner: Spawner) -> None:
        """Start the trial with the machine's spawner: no SSH channel of its own, no interpreter
        start; its launcher (a fork of the spawner) leads its group, its output is relayed."""
        machine, trial_dir = trial.machine, Path(trial.spec.trial_dir)
        if machine.banner:
            # What the shell's start-up files printed stays in each trial's log, as when each
            # trial had its own channel (and shell).
            with open(trial_dir / "stdout", "ab") as f:
                f.write(machine.banner)
        trial.launched = await spawner.spawn(
            _SPAWNED_TRIAL, cwd=f"{self._remote_root(machine)}/code", env=self._trial_env(trial),
            stdout=trial_dir / "stdout", stderr=trial_dir / "stderr", mkdir=(self._remote_trial_dir(trial),))
        trial.pgid, trial.pgid_start = trial.launched.pid, trial.launched.start or ""
        if trial.launched.start is None:
            # No /proc there (the spawner reads it): the leader's start as the kill check reads it (ps).
            _, stdout, _ = await _run_for_output(machine.conn, f"{_IDENTITY_FUNCTIONS} _nni_start {trial.pgid}")
            trial.pgid_start = stdout.strip()

    async def _spawn_in_channel(self, trial: _RemoteTrial) -> None:
        """Start the trial in an SSH channel of its own (a machine without a spawner)."""
        machine, trial_dir = trial.machine, Path(trial.spec.trial_dir)
        process = await machine.conn.create_process(self._command(trial), encoding=None)
        trial.process = process
        startup_output = b""
        while True:
            line = await process.stdout.readline()
            if line.startswith(PGID_MARKER) or not line or len(startup_output) > STARTUP_OUTPUT_LIMIT:
                break
            startup_output += line
        if startup_output:
            with open(trial_dir / "stdout", "ab") as f:
                f.write(startup_output[:STARTUP_OUTPUT_LIMIT])
        if not line.startswith(PGID_MARKER):
            # The wrapper failed before the trial started (missing directory, no /bin/sh ...).
            rest = await process.stderr.read()
            await process.wait()
            raise RemoteError((line + rest).decode(errors="replace").strip()[:STDERR_TAIL_BYTES]
                              or f"exit status {process.exit_status}")
        pgid, _, start = line[len(PGID_MARKER):].decode(errors="replace").strip().partition(" ")
        trial.pgid, trial.pgid_start = int(pgid), start.strip()

    async def _pump(self, stream: Any, path: Path) -> None:
        with open(path, "ab") as f:
            while True:
                try:
                    chunk = await stream.read(65536)
                except Exception:  # noqa: BLE001 - the connection went away; the watcher reports it
                    return
                if not chunk:
                    return
                f.write(chunk)
                f.flush()   # `nnictl log trial` and the web UI read the file while the trial runs

    async def _watch(self, trial: _RemoteTrial) -> None:
        if trial.launched is not None:
            await self._watch_launched(trial, trial.launched)
            return
        process, trial_dir = trial.process, Path(trial.spec.trial_dir)
        await asyncio.gather(self._pump(process.stdout, trial_dir / "stdout"),
                             self._pump(process.stderr, trial_dir / "stderr"))
        try:
            await process.wait()
        except Exception:  # noqa: BLE001
            pass
        if trial.ended:
            return
        status, signal_name = process.exit_status, process.exit_signal
        lost = False
        if status is None and signal_name is None:
            if await self._connection_gone(trial):
                return
            exit_code, reason, lost = None, "the SSH channel closed without an exit status", True
        elif status is None:
            exit_code, reason = -1, f"killed by signal {signal_name[0] if isinstance(signal_name, tuple) else signal_name}"
        else:
            exit_code, reason = status, f"exit code {status}"
        message = end_message(exit_code, trial_dir / "stderr", where=trial.machine.name, reason=reason)
        await self._trial_ended(trial, exit_code, message, lost=lost)

    async def _watch_launched(self, trial: _RemoteTrial, launched: LaunchedTrial) -> None:
        """Report the end of a trial the spawner started (its output was relayed until then)."""
        exit_code = await launched.wait()
        if trial.ended:
            return
        machine, lost = trial.machine, exit_code is None
        if lost:
            if await self._connection_gone(trial):
                return
            # The spawner alone ended (killed there): its launchers were told to end their trees
            # (PR_SET_PDEATHSIG); make sure.
            self._background(self._kill_groups(machine, [(trial.pgid, trial.pgid_start)], "KILL"))
        reason = "the trial spawner there ended without the trial's exit status" if lost else None
        message = end_message(exit_code, Path(trial.spec.trial_dir) / "stderr", where=machine.name, reason=reason)
        await self._trial_ended(trial, exit_code, message, lost=lost)

    @staticmethod
    async def _connection_gone(trial: _RemoteTrial) -> bool:
        """Whether a trial's channel closed because its machine's connection did (or the trial
        ended meanwhile): the connection's watcher reports that loss itself, so it is given up
        to a second to notice."""
        for _ in range(20):
            if trial.ended or not trial.machine.connected:
                return True
            await asyncio.sleep(0.05)
        return False

    async def _trial_ended(self, trial: _RemoteTrial, exit_code: int | None, message: str,
                           lost: bool = False) -> None:
        if trial.ended:
            return
        trial.ended = True
        machine = trial.machine
        machine.trials.pop(trial.spec.trial_id, None)
        self._trials.pop(trial.spec.trial_id, None)
        if trial.gpus is not None:
            self._release_gpus(machine, trial.gpus)
        if self.on_trial_end is not None:
            await self.on_trial_end(TrialEnded(trial.spec.trial_id, exit_code, message, lost=lost,
                                               attempt=trial.spec.attempt, machine=machine.name))
        if self._queue:
            # Not awaited: this may run inside the dispatcher itself.
            self._queue.dispatch_soon()

    async def _kill_groups(self, machine: _Machine, groups: list[tuple[int, str]], signal_name: str) -> None:
        if not groups or machine.conn is None:
            return
        command = f"/bin/sh -c {shlex.quote(_kill_command(groups, signal_name))}"
        try:
            await asyncio.wait_for(machine.conn.run(command, check=False), 10 + 2 * len(groups))
        except Exception as exc:  # noqa: BLE001 - connection gone: the watchdogs end the groups
            _log.debug("kill -%s on %s failed: %s", signal_name, machine.name, exc)

    async def kill(self, trial_id: str) -> None:
        if await self._queue.cancel(trial_id):
            return
        trial = self._trials.get(trial_id)
        if trial is None or trial.ended or trial.killing:
            return
        trial.killing = True
        machine = trial.machine
        if trial.starter is not None and not trial.starter.done():
            await asyncio.shield(trial.starter)   # its process group is known once it started
            if trial.ended:
                return
        if trial.pgid is not None:
            await self._kill_groups(machine, [(trial.pgid, trial.pgid_start)], "TERM")
        if trial.watcher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(trial.watcher), KILL_GRACE_SECONDS)
            except asyncio.TimeoutError:
                pass
        if trial.pgid is not None:
            # also when the shell ended in time: the TERM ended the watchdog too, so whatever of
            # the group outlived it (a stopped process, one that ignores TERM) is ended here
            await self._kill_groups(machine, [(trial.pgid, trial.pgid_start)], "KILL")
        if trial.process is not None:
            # Closing stdin makes the watchdog SIGKILL the group even if the exec above failed.
            try:
                trial.process.stdin.write_eof()
            except Exception:  # noqa: BLE001
                pass
        if trial.watcher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(trial.watcher), 10)
            except asyncio.TimeoutError:
                await self._trial_ended(trial, None, f"killed; no exit status came back from {machine.name}")

    async def cleanup_interrupted(self, trials: list[InterruptedTrial]) -> None:
        """Kill the process groups of trials a previous manager left, on the machines still reachable."""
        by_machine: dict[str, list[tuple[int, str]]] = {}
        for trial in trials:
            try:
                # "<machine> <pgid> <root> <leader start>", from the store or, for an experiment
                # of an earlier version, the trial's directory; an even earlier record has no
                # start: its group is then killed only if no process has the number any more.
                record = trial.process or (Path(trial.trial_dir) / _REMOTE_FILE).read_text()
                name, pgid, _root, *start = record.split()
                by_machine.setdefault(name, []).append((int(pgid), "".join(start[:1]).strip("-")))
            except (OSError, ValueError):
                continue
        for machine in self._machines:
            if machine.connected and machine.name in by_machine:
                await self._kill_groups(machine, by_machine[machine.name], "KILL")

    async def stop(self) -> None:
        await self._queue.close()
        await asyncio.gather(*(self.kill(t) for t in list(self._trials)), return_exceptions=True)
        self._stopping = True
        await self._close_all()
