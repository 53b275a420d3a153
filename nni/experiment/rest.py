"""A small client for the manager's REST API (used by the Python API and by nnictl)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

API = "/api/v1/nni"


class RestError(RuntimeError):
    """The manager answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def request(method: str, port: int, path: str, data: Any = None, *, timeout: float = 30,
            host: str = "127.0.0.1", prefix: str = "") -> Any:
    """Send a JSON request to ``/api/v1/nni{path}`` and return the decoded reply."""
    url = f"http://{host}:{port}{prefix}{API}{path}"
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body is not None else {})
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


def get(port: int, path: str, **kwargs: Any) -> Any:
    return request("GET", port, path, **kwargs)


def put(port: int, path: str, data: Any, **kwargs: Any) -> Any:
    return request("PUT", port, path, data, **kwargs)


def delete(port: int, path: str, **kwargs: Any) -> Any:
    return request("DELETE", port, path, **kwargs)
