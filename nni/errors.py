"""The errors nni-ng raises: one base class, :class:`NniError`.

Every error of this project derives from it, so ``except nni.errors.NniError`` catches what
nni-ng itself refuses (a bad config, a search space, a REST answer, a launch, ...) and
nothing else. Each also keeps the built-in base it had (``ValueError`` for bad input,
``RuntimeError`` for a failed operation), so code written against NNI's exception types
still works.
"""

from __future__ import annotations


class NniError(Exception):
    """The base class of every error nni-ng raises."""


class NoMoreTrialError(NniError):
    """Raised by a tuner when the search is over: no parameter set is left to try."""

    def __init__(self, message: str = "Search space fully explored") -> None:
        super().__init__(message)


__all__ = ["NniError", "NoMoreTrialError"]
