"""The error nnictl prints as one line."""

from __future__ import annotations

from ..errors import NniError


class CliError(NniError):
    """A user-facing failure: printed as one line, exit code 1."""
