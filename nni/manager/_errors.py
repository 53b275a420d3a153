"""The one mapping from exceptions to HTTP answers, as an aiohttp middleware on every route.

- An :class:`~nni.errors.NniError` (bad input, something unknown, a state conflict; config,
  search-space and query validation errors included) is the caller's to fix: a 4xx, its
  ``status`` when it has one (``nni.errors.RequestError`` and its subclasses), else 400.
- An aiohttp ``HTTPException`` of 4xx/5xx (a body over the size limit, an unknown path, a
  method not allowed) keeps its status and headers.
- Anything else is our bug: logged once with its traceback, answered 500.

Every error answer has one shape, ``{"error": "<message>"}``, on client routes, the web UI's
routes and the trial routes alike. Handlers raise; they do not build error answers.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from ..errors import NniError

_logger = logging.getLogger("nni.manager")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_status(exc: NniError) -> int:
    """The HTTP status an NniError is answered with: its own 4xx ``status``, else 400."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and 400 <= status < 500 else 400


def error_body(message: str) -> dict[str, str]:
    return {"error": message}


def error_response(status: int, message: str, headers: Any = None) -> web.Response:
    return web.json_response(error_body(message), status=status, headers=headers)


def _http_exception_answer(exc: web.HTTPException) -> web.Response:
    text = exc.text or exc.reason
    try:   # already our shape (a JSON body with "error"): keep it
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            text = parsed["error"]
    except ValueError:
        pass
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
    return error_response(exc.status, text, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise     # redirects are answers, not errors
        return _http_exception_answer(exc)
    except NniError as exc:
        if _answer_started(request):
            raise
        return error_response(error_status(exc), str(exc))
    except (ConnectionResetError, BrokenPipeError):
        raise         # the client went away mid-answer: nobody to answer, nothing of ours broke
    except Exception as exc:
        if _answer_started(request):
            raise     # part of the answer is out: aiohttp logs it and closes the connection
        _logger.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"internal error in the manager ({type(exc).__name__}); "
                                   "the manager's log has the traceback")


def _answer_started(request: web.Request) -> bool:
    writer = getattr(request, "writer", None)
    return writer is not None and getattr(writer, "output_size", 0) > 0


__all__ = ["error_body", "error_middleware", "error_response", "error_status"]
