"""The errors nni-ng raises: one base class, :class:`NniError`.

Every error of this project derives from it, so ``except nni.errors.NniError`` catches what
nni-ng itself refuses (a bad config, a search space, a REST answer, a launch, ...) and
nothing else. Each also keeps the built-in base it had (``ValueError`` for bad input,
``RuntimeError`` for a failed operation), so code written against NNI's exception types
still works.

The manager's HTTP server answers every ``NniError`` that reaches it with a 4xx and
``{"error": str(exc)}`` (one middleware, ``nni.manager._errors``): the status is the
error's ``status`` when that is a 4xx (the classes below set one), else 400.
"""

from __future__ import annotations


class NniError(Exception):
    """The base class of every error nni-ng raises."""


class NoMoreTrialError(NniError):
    """Raised by a tuner when the search is over: no parameter set is left to try."""

    def __init__(self, message: str = "Search space fully explored") -> None:
        super().__init__(message)


class AlgorithmError(NniError, ValueError, RuntimeError):
    """A tuner or assessor failed: it cannot be found or built from its config (a bad name or
    ``classArgs``), or one of its methods raised (the experiment goes to ERROR with the message).

    One class for both, with both built-in bases (``ValueError`` as a bad config was,
    ``RuntimeError`` as a failed call was), so either ``except`` keeps catching it.
    """


class RequestError(NniError, ValueError):
    """A request the manager cannot honour, answered with ``status`` and the message.

    A ``ValueError`` too: a request refused is bad input from the caller's side.
    """

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(RequestError):
    """A request that does not fit (400); the message names the field."""

    status = 400


class Forbidden(RequestError):
    """A caller that may not do this (403): a wrong trial token."""

    status = 403


class NotFound(RequestError):
    """Something the request names does not exist (404)."""

    status = 404


class Conflict(RequestError):
    """The request clashes with the experiment's state (409): view mode, a superseded attempt,
    a second final result."""

    status = 409


__all__ = ["AlgorithmError", "BadRequest", "Conflict", "Forbidden", "NniError", "NoMoreTrialError", "NotFound", "RequestError"]
