"""The trial's side of the trial <-> manager channel: JSON over HTTP.

HTTP keeps the channel working when the trial runs on another host (SSH, Ray): the
manager's address travels in ``NNI_TRIAL_CHANNEL`` and each request carries the
trial's own token. The client speaks HTTP/1.0 over a bare socket because importing
``http.client`` costs about 25 ms, more than half of a bare interpreter start, and
every trial would pay it.
"""

from __future__ import annotations

import json
import _socket as socket   # the C module: the 'socket' wrapper costs 4 ms to import
import time

from ..errors import NniError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a trial 5 ms to import
    from typing import Any

_RETRIES = 5


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

    def request_parameter(self, index: int) -> dict[str, Any] | None:
        """Parameter record number ``index`` of this trial (None when the tuner has no more)."""
        return self._post("parameter", {"index": index})

    def send_metric(self, parameter_id: int | None, metric_type: str, sequence: int, value: str) -> None:
        self._post("metric", {"parameter_id": parameter_id, "type": metric_type,
                              "sequence": sequence, "value": value})

    def renew_lease(self, machine: str | None = None) -> Any:
        """Renew this attempt's lease once (no retries: the next renewal is the retry).

        Raises :class:`ChannelError` with ``status`` 409 when this attempt was superseded.
        """
        return self._post("lease", {"machine": machine} if machine else {}, retries=1)

    def _post(self, action: str, payload: dict[str, Any], retries: int = _RETRIES) -> Any:
        path = f"{self._prefix}/api/v1/trial/{self._trial_id}/{action}"
        body = json.dumps(payload).encode()
        head = (f"POST {path} HTTP/1.0\r\nHost: {self._host}:{self._port}\r\n"
                f"Authorization: Bearer {self._token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        delay = 0.2
        for attempt in range(retries):
            try:
                status, data = self._exchange(head + body)
            except OSError as exc:
                # Requests are idempotent on the manager side, so a retry cannot double-count.
                if attempt == retries - 1:
                    raise ChannelError(f"cannot reach the NNI manager at {self._host}:{self._port}: {exc}") from exc
                time.sleep(delay)
                delay *= 2
                continue
            if status != 200:
                raise ChannelError(f"manager refused {action} (HTTP {status}): {data.decode(errors='replace')}",
                                   status)
            return json.loads(data) if data else None
        raise AssertionError("unreachable")

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        sock = _connect(self._host, self._port, timeout=60)
        try:
            sock.sendall(request)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            sock.close()
        raw = b"".join(chunks)
        header, _, body = raw.partition(b"\r\n\r\n")
        status_line = header.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2:
            raise OSError("malformed HTTP response from manager")
        return int(status_line[1]), body


def _connect(host: str, port: int, timeout: float) -> Any:
    """A connected TCP socket to the first address of ``host`` that answers."""
    error: OSError = OSError(f"no address found for {host}")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error
