"""A small client for the manager's REST API (used by the Python API and by nnictl)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from ..errors import NniError

API = "/api/v1/nni"


class RestError(NniError, RuntimeError):
    """The manager answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# Secrets this process already knows, by (host, port): the experiments it started itself.
_secrets: dict[tuple[str, int], str] = {}


def remember_secret(port: int, secret: str, host: str = "127.0.0.1") -> None:
    """Use ``secret`` for requests to ``host:port`` (the Python API does this for what it starts)."""
    _secrets[(host, port)] = secret


def find_secret(port: int, host: str = "127.0.0.1") -> str | None:
    """The secret of the experiment served on ``host:port``, found the way the owner would.

    ``NNI_NG_SECRET`` wins when set (scripts, reverse proxies); then what this process
    remembers; then the registry (``~/.nni-ng/experiments``): the experiment registered on
    that port whose manager is the very process that registered it (pid and start time),
    from its directory's secret file (readable by its owner only).

    Never the secret of an experiment whose manager is gone: whatever listens on its port now
    (another user's server, on a shared machine) would be sent it. For the same reason a
    secret found in the registry is not kept: the next request checks the manager again.
    """
    explicit = os.environ.get("NNI_NG_SECRET")
    if explicit:
        return explicit
    known = _secrets.get((host, port))
    if known:
        return known
    from ..manager import registry
    from ..manager.secret import read_secret
    entries = [e for e in registry.list_entries() if e.get("port") == port and e.get("dir") and e["alive"]]
    for entry in sorted(entries, key=lambda e: -(e.get("start_time") or 0)):
        secret = read_secret(entry["dir"])
        if secret:
            return secret
    return None


def request(method: str, port: int, path: str, data: Any = None, *, timeout: float = 30,
            host: str = "127.0.0.1", prefix: str = "", secret: str | None = None) -> Any:
    """Send a JSON request to ``/api/v1/nni{path}`` and return the decoded reply.

    The experiment's secret goes along as ``Authorization: Bearer``: ``secret`` when
    given, else :func:`find_secret`.
    """
    given = secret
    secret = secret or find_secret(port, host)
    try:
        return _send(method, port, path, data, timeout=timeout, host=host, prefix=prefix, secret=secret)
    except RestError as exc:
        if exc.status != 401 or given or (host, port) not in _secrets:
            raise
        # A remembered secret of an earlier experiment on this port: look again.
        del _secrets[(host, port)]
        secret = find_secret(port, host)
        if not secret:
            raise
        return _send(method, port, path, data, timeout=timeout, host=host, prefix=prefix, secret=secret)


def _send(method: str, port: int, path: str, data: Any, *, timeout: float, host: str, prefix: str,
          secret: str | None) -> Any:
    url = f"http://{host}:{port}{prefix}{API}{path}"
    body = None if data is None else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise RestError(f"{method} {path}: HTTP {exc.code}: {detail}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RestError(f"no experiment manager answers on {host}:{port} ({reason})") from None
    return json.loads(payload) if payload else None


def webui_url(port: int, host: str = "127.0.0.1") -> str:
    """The web UI's address with the one-time ``?token=`` that logs a browser in."""
    secret = find_secret(port, host)
    base = f"http://{host}:{port}"
    return f"{base}/?token={secret}" if secret else base


def get(port: int, path: str, **kwargs: Any) -> Any:
    return request("GET", port, path, **kwargs)


def put(port: int, path: str, data: Any, **kwargs: Any) -> Any:
    return request("PUT", port, path, data, **kwargs)


def delete(port: int, path: str, **kwargs: Any) -> Any:
    return request("DELETE", port, path, **kwargs)
