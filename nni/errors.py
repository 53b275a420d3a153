"""Exceptions shared by the trial API, the SDK and the manager."""

from __future__ import annotations


class NoMoreTrialError(Exception):
    """Raised by a tuner when the search is over: no parameter set is left to try."""

    def __init__(self, message: str = "Search space fully explored") -> None:
        super().__init__(message)
