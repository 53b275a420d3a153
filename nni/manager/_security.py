"""The REST API's door: the experiment secret, the Host check and the CSRF rules.

One aiohttp middleware, applied before any handler (see ``docs/security.md``):

1. ``Host`` must name this machine's loopback (``127.0.0.1``, ``localhost``, ``::1``),
   the configured ``nniManagerIp`` or a host listed in ``allowedHosts``; anything else is
   403. This defeats DNS rebinding: a page that reaches 127.0.0.1 under its own name
   still sends its own name.
2. A request that changes state (POST, PUT, PATCH, DELETE) is refused (403) when it
   sends an ``Origin`` other than the manager's own, and (415) when it has a body that is
   not ``application/json``: a cross-site HTML form or ``fetch(no-cors)`` cannot send one.
3. Every client route (``/api/v1/nni/...``, the web UI's data included) is the owner's:
   a request on a loopback connection whose client socket belongs to the manager's own
   user (the kernel says whose: :func:`loopback_peer_uid`) is served as it is, as NNI
   served every local script; any other needs the experiment secret, as
   ``Authorization: Bearer <secret>`` or as the web UI's cookie; otherwise 401 with a
   one-line JSON error. A request that came through a proxy (a ``Forwarded`` /
   ``X-Forwarded-For`` / ``X-Real-IP`` header, or a ``Host`` other than loopback's) needs
   the secret even from the owner's socket: the proxy speaks for someone else. ``GET /?token=<secret>`` (the URL that
   ``nnictl`` and ``Experiment.start()`` print) sets that cookie (HttpOnly,
   SameSite=Strict) and redirects to ``/``, so the secret leaves the address bar.
   Trial routes (``/api/v1/trial/...``) keep their per-trial tokens; the UI's static
   files are public.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import struct
import weakref
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

API_PREFIX = "/api/v1/nni"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cookie_name(experiment_id: str) -> str:
    """The UI cookie's name; per experiment, since browsers share cookies across ports."""
    safe = "".join(c for c in str(experiment_id) if c.isalnum()) or "experiment"
    return f"nni_ng_{safe}"


def split_host(value: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` -> ``::1``), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def allowed_host_set(extra: Iterable[str | None]) -> frozenset[str]:
    hosts = set(LOOPBACK_HOSTS)
    for host in extra:
        if host:
            hosts.add(split_host(str(host)) if not _is_ipv6(str(host)) else str(host).strip("[]").lower())
    return frozenset(hosts)


def _is_ipv6(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value.strip("[]")), ipaddress.IPv6Address)
    except ValueError:
        return False


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(errors="replace"), secret.encode())


def unauthorized_message(experiment_id: str) -> str:
    return (f"this experiment's API needs its secret: open the URL printed by "
            f"'nnictl webui url {experiment_id}' (or by nnictl create / Experiment.start), "
            f"or send 'Authorization: Bearer <secret>' with the secret from <experiment dir>/secret")


_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _proc_net_address(host: str, port: int) -> tuple[str, str] | None:
    """``host:port`` as ``/proc/net/tcp{,6}`` writes it, and which of the two files lists it.

    The kernel prints each 32-bit word of the address as a host-order number (``%08X``) and
    the port as ``%04X``; ``struct``'s native order reads the words the same way.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    words = struct.unpack(f"={len(address.packed) // 4}I", address.packed)
    text = "".join(f"{word:08X}" for word in words) + f":{port:04X}"
    return text, ("tcp" if address.version == 4 else "tcp6")


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def loopback_peer_uid(transport: Any) -> int | None:
    """The uid owning the client end of a loopback TCP connection, or None when unknown.

    Linux lists every TCP socket of this network namespace in ``/proc/net/tcp`` (``tcp6``)
    with its owner's uid, as identd reads it: the client's socket is the line whose local
    address is our peer's and whose remote address is ours. Not Linux, not loopback, or
    not found (the client already gone): None, and the secret is asked for.
    """
    if transport is None:
        return None
    peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    if not (isinstance(peer, tuple) and isinstance(local, tuple) and _is_loopback(str(peer[0]))):
        return None
    client, server = _proc_net_address(str(peer[0]), int(peer[1])), _proc_net_address(str(local[0]), int(local[1]))
    if client is None or server is None or client[1] != server[1]:
        return None
    try:
        with open(f"/proc/net/{client[1]}", "rb") as table:
            for raw in table:
                fields = raw.split()
                # sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
                if len(fields) > 7 and fields[1].decode() == client[0] and fields[2].decode() == server[0]:
                    return int(fields[7])
    except (OSError, ValueError):
        return None
    return None


class OwnerCheck:
    """Whether a request comes from the manager's own user, asked once per connection."""

    def __init__(self, uid: int | None = None) -> None:
        self.uid = os.geteuid() if uid is None else uid
        self._known: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    def __call__(self, request: web.Request) -> bool:
        if any(name in request.headers for name in _PROXY_HEADERS):
            return False
        host = request.headers.get("Host")
        if host is not None and split_host(host) not in LOOPBACK_HOSTS:
            return False
        transport = request.transport
        if transport is None:
            return False
        try:
            return self._known[transport]
        except KeyError:
            pass
        except TypeError:      # a transport that takes no weak reference: ask every time
            return loopback_peer_uid(transport) == self.uid
        owner = loopback_peer_uid(transport) == self.uid
        self._known[transport] = owner
        return owner


def security_middleware(*, secret: str, experiment_id: str, allowed_hosts: frozenset[str],
                        owner_check: Callable[[web.Request], bool] | None = None) -> Any:
    """The middleware described in this module's docstring, for one experiment."""
    cookie = cookie_name(experiment_id)
    is_owner = owner_check if owner_check is not None else OwnerCheck()

    def authorized(request: web.Request) -> bool:
        if is_owner(request):
            return True
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and _same(auth[7:].strip(), secret):
            return True
        given = request.cookies.get(cookie)
        return given is not None and _same(given, secret)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        # No Host at all is an HTTP/1.0 client, not a browser (browsers always send one).
        if host is not None and split_host(host) not in allowed_hosts:
            return _error(403, f"Host {host!r} is not allowed; add it to the experiment config's "
                               "'allowedHosts' to reach the manager under that name")
        if request.method in _MUTATING:
            origin = request.headers.get("Origin")
            if origin is not None and not _same_origin(origin, host):
                return _error(403, f"cross-origin request from {origin!r} refused")
            if request.body_exists and request.content_type != "application/json":
                return _error(415, f"Content-Type must be application/json, got {request.content_type!r}")
        path = request.path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            if not authorized(request):
                return _error(401, unauthorized_message(experiment_id))
        elif path == "/" and "token" in request.query:
            return _exchange(request)
        return await handler(request)

    def _exchange(request: web.Request) -> web.StreamResponse:
        """``/?token=...``: trade the secret for the cookie and drop it from the address bar."""
        if not _same(request.query.get("token", ""), secret):
            return _error(401, "wrong token in the URL; " + unauthorized_message(experiment_id))
        response = web.Response(status=302, headers={"Location": "/"})
        response.set_cookie(cookie, secret, httponly=True, samesite="Strict", path="/")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return middleware


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether ``Origin`` names the server the request was sent to (scheme ignored: a proxy may add TLS)."""
    if host is None:
        return False
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host.strip().lower()


__all__ = ["LOOPBACK_HOSTS", "OwnerCheck", "allowed_host_set", "cookie_name", "loopback_peer_uid",
           "security_middleware", "split_host"]
