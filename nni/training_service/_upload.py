"""Packing the trial code directory for other machines, honouring ``.nniignore``.

``.nniignore`` (NNI's file, in the code directory) lists gitignore-style patterns of files
that are not uploaded: ``#`` comments, ``!`` to re-include, a trailing ``/`` for
directories only, a leading or inner ``/`` anchors the pattern at the code directory,
``*``/``?``/``[...]`` inside one path component and ``**`` across components.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

__all__ = ["IgnoreRules", "pack_code_dir", "read_nniignore"]

IGNORE_FILE = ".nniignore"


def _component_regex(text: str) -> str:
    """Regex for glob text without '/', where ``*`` and ``?`` never cross a '/'."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = text.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = text[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "\\" and i + 1 < len(text):
            i += 1
            out.append(re.escape(text[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    parts = pattern.split("/")
    regex_parts = []
    for index, part in enumerate(parts):
        if part == "**":
            # "**/" matches zero or more leading directories; a trailing "**" everything inside.
            regex_parts.append("(?:.*/)?" if index < len(parts) - 1 else ".*")
        else:
            regex_parts.append(_component_regex(part) + ("/" if index < len(parts) - 1 else ""))
    body = "".join(regex_parts)
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{body}$")


class IgnoreRules:
    """Compiled ``.nniignore`` patterns; ``ignored(relative_path, is_dir)`` applies them in order."""

    def __init__(self, lines: list[str]) -> None:
        self._rules: list[tuple[re.Pattern[str], bool, bool]] = []   # (regex, negated, dir only)
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            dir_only = line.endswith("/")
            self._rules.append((_pattern_regex(line), negated, dir_only))

    def ignored(self, relative_path: str, is_dir: bool) -> bool:
        """Whether ``relative_path`` (with '/' separators) is excluded; the last matching rule wins."""
        result = False
        for regex, negated, dir_only in self._rules:
            if dir_only and not is_dir:
                continue
            if regex.match(relative_path):
                result = not negated
        return result


def read_nniignore(code_dir: str | os.PathLike[str]) -> IgnoreRules:
    """The rules of ``code_dir/.nniignore`` (no rules when the file is absent)."""
    path = Path(code_dir) / IGNORE_FILE
    try:
        return IgnoreRules(path.read_text().splitlines())
    except FileNotFoundError:
        return IgnoreRules([])


def pack_code_dir(code_dir: str | os.PathLike[str]) -> tuple[bytes, int]:
    """A gzipped tar of ``code_dir`` without what ``.nniignore`` excludes; (bytes, file count).

    Ignored directories are not descended into, so a large ignored ``data/`` costs nothing.
    """
    root = Path(code_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"trialCodeDirectory {str(root)!r} is not a directory")
    rules = read_nniignore(root)
    buffer = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = sorted(d for d in dirnames if not rules.ignored(rel_dir + d, True))
            for name in sorted(dirnames):
                tar.add(os.path.join(dirpath, name), arcname=rel_dir + name, recursive=False)
            for name in sorted(filenames):
                rel = rel_dir + name
                full = os.path.join(dirpath, name)
                if rules.ignored(rel, False) or not (os.path.isfile(full) or os.path.islink(full)):
                    continue
                tar.add(full, arcname=rel, recursive=False)
                count += 1
    return buffer.getvalue(), count
