"""The trial's side of the trial <-> manager channel: JSON over HTTP.

HTTP keeps the channel working when the trial runs on another host (SSH, Ray): the
manager's address travels in ``NNI_TRIAL_CHANNEL`` and each request carries the
trial's own token. The client speaks HTTP/1.1 over a bare socket because importing
``http.client`` costs about 25 ms, more than half of a bare interpreter start, and
every trial would pay it.

One connection is kept open and reused (HTTP keep-alive): opening and closing a TCP
connection per report was most of what a report cost the manager (a thousand trials
reporting every second: ~0.17 ms of the manager's CPU per connection against ~0.08 ms
per request on an open one). The manager closes a connection idle for a while (aiohttp:
75 s); a request that finds its reused connection closed before any byte of the answer
came is sent again at once on a new one. A forked child opens its own connection; a lock
keeps threads from interleaving requests.

Every request carries an id (``Nni-Request: <attempt>.<pid>.<n>``) that its retries repeat:
the manager answers a repeat with the first answer instead of acting twice, even when the
first is still being worked out (a retry after the socket timed out on a slow tuner).
"""

from __future__ import annotations

import json
import os
import _socket as socket   # the C module: the 'socket' wrapper costs 4 ms to import
import _thread
import itertools
import time

from ..errors import NniError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a trial 5 ms to import
    from typing import Any

_RETRIES = 5
# Seconds a request waits for the manager's answer before it is sent again (same request id).
_TIMEOUT = 60.0


class ChannelError(NniError, RuntimeError):
    """The manager could not be reached or refused the request (``status``: the HTTP status, if any).

    409 means this attempt of the trial was superseded by a newer one (its lease lapsed).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TrialChannel:
    def __init__(self, url: str, trial_id: str, token: str) -> None:
        if not url.startswith("http://"):
            raise ChannelError(f"NNI_TRIAL_CHANNEL must be an http:// URL, got {url!r}")
        hostport, _, prefix = url[len("http://"):].partition("/")
        host, _, port = hostport.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._trial_id = trial_id
        self._token = token
        self._sock: Any = None           # the open connection (None: connect on the next request)
        self._pid = os.getpid()          # the process the connection and the lock belong to
        self._lock = _thread.allocate_lock()
        self._attempt = os.environ.get("NNI_TRIAL_ATTEMPT", "1")
        self._numbers = itertools.count(1)   # next() is atomic: threads share it

    def request_parameter(self, index: int) -> dict[str, Any] | None:
        """Parameter record number ``index`` of this trial (None when the tuner has no more)."""
        return self._post("parameter", {"index": index})

    def send_metric(self, parameter_id: int | None, metric_type: str, sequence: int, value: str) -> Any:
        """Send one metric; the manager's reply (``{"warning": ...}`` or None)."""
        return self._post("metric", {"parameter_id": parameter_id, "type": metric_type,
                                     "sequence": sequence, "value": value})

    def renew_lease(self, machine: str | None = None) -> Any:
        """Renew this attempt's lease once (no retries: the next renewal is the retry).

        Raises :class:`ChannelError` with ``status`` 409 when this attempt was superseded.
        """
        return self._post("lease", {"machine": machine} if machine else {}, retries=1)

    def _post(self, action: str, payload: dict[str, Any], retries: int = _RETRIES) -> Any:
        path = f"{self._prefix}/api/v1/trial/{self._trial_id}/{action}"
        body = json.dumps(payload).encode()
        # The pid keeps a forked child's numbers apart from its parent's (it inherits the counter).
        request_id = f"{self._attempt}.{os.getpid()}.{next(self._numbers)}"
        head = (f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                f"Authorization: Bearer {self._token}\r\nContent-Type: application/json\r\n"
                f"Nni-Request: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        delay = 0.2
        for attempt in range(retries):
            try:
                status, data = self._exchange(head + body)
            except OSError as exc:
                # The same request id: the manager answers a retry with its first answer.
                if attempt == retries - 1:
                    raise ChannelError(f"cannot reach the NNI manager at {self._host}:{self._port}: {exc}") from exc
                time.sleep(delay)
                delay *= 2
                continue
            if status != 200:
                raise ChannelError(f"manager refused {action} (HTTP {status}): {_error_text(data)}", status)
            return json.loads(data) if data else None
        raise AssertionError("unreachable")

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._pid != os.getpid():
            # A forked child: the connection is its parent's, and so is the lock (which
            # another thread of the parent may have held at the fork).
            self._pid, self._sock, self._lock = os.getpid(), None, _thread.allocate_lock()
        with self._lock:
            reused = self._sock is not None
            if not reused:
                self._sock = _connect(self._host, self._port, timeout=_TIMEOUT)
            try:
                return self._send(request)
            except _Stale:
                if not reused:
                    raise OSError("the manager closed the connection without an answer") from None
                # The manager closed the idle connection: the same request on a new one.
                self._sock = _connect(self._host, self._port, timeout=_TIMEOUT)
                try:
                    return self._send(request)
                except _Stale:
                    raise OSError("the manager closed the connection without an answer") from None

    def _send(self, request: bytes) -> tuple[int, bytes]:
        """One request and its answer on the open connection; closes it on any error, and when
        the answer says so (or has no length)."""
        sock = self._sock
        keep = False
        try:
            try:
                sock.sendall(request)
                raw = sock.recv(65536)
            except (BrokenPipeError, ConnectionResetError):
                raise _Stale() from None
            if not raw:
                raise _Stale()
            while b"\r\n\r\n" not in raw:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("the manager closed the connection in the middle of an answer")
                raw += chunk
            header, _, body = raw.partition(b"\r\n\r\n")
            lines = header.split(b"\r\n")
            status_line = lines[0].split()
            if len(status_line) < 2 or not status_line[1].isdigit():
                raise OSError("malformed HTTP response from manager")
            length, close = None, status_line[0] != b"HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length is None:       # no length: the answer ends with the connection
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            else:
                while len(body) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise OSError("the manager closed the connection in the middle of an answer")
                    body += chunk
                keep = not close
            return int(status_line[1]), body
        finally:
            if not keep:
                self._sock = None
                sock.close()


def _error_text(data: bytes) -> str:
    """The message of an error answer (``{"error": ...}``), or its text as it came."""
    text = data.decode(errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed["error"] if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) else text


class _Stale(Exception):
    """The connection was closed before any byte of the answer arrived."""


def _connect(host: str, port: int, timeout: float) -> Any:
    """A connected TCP socket to the first address of ``host`` that answers."""
    error: OSError = OSError(f"no address found for {host}")
    # An ASCII name goes as bytes: for a str, getaddrinfo imports the 'idna' codec (with
    # stringprep and unicodedata), ~1 ms of every trial's start for "127.0.0.1".
    name = host.encode() if host.isascii() else host
    for family, kind, proto, _, address in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error
