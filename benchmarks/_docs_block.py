"""A block of a docs file that a benchmark writes: the text between two marker comments.

Every benchmark that quotes its figures in docs/ keeps them between its own pair of markers,
rewrites them from its raw output (``--update-docs``) and lets a test compare them with what
that raw output gives (:meth:`DocsBlock.read`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DocsBlock:
    """The text between ``begin`` and ``end`` (two marker lines) of the file at ``path``."""

    path: Path
    begin: str
    end: str

    def _split(self) -> tuple[str, str, str]:
        text = self.path.read_text()
        if self.begin not in text or self.end not in text:
            raise SystemExit(f"{self.path} has no {self.begin} ... {self.end} markers")
        head, rest = text.split(self.begin, 1)
        inside, tail = rest.split(self.end, 1)
        return head, inside, tail

    def read(self) -> str:
        """What is between the markers now (without the line breaks next to them)."""
        return self._split()[1].strip("\n")

    def write(self, text: str) -> None:
        """Put ``text`` between the markers, each on its own line."""
        head, _, tail = self._split()
        self.path.write_text(f"{head}{self.begin}\n{text}\n{self.end}{tail}")
