"""The experiment's secret and its owner-only files.

Each experiment has one random secret, created with it and kept in
``<experiment dir>/secret`` (mode 0600, the directory 0700), so that only the user who
owns the experiment can read it. Every client route of the REST API asks for it (see
``docs/security.md``); ``nnictl`` and the Python API read it from that file, so the
owner never types it. Resume and view reuse the same file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "secret"


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and make it owner-only (0700)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except PermissionError:   # someone else's directory: reading it read-only still works
        pass
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Create ``path`` if missing and make it owner-only (0600); symlinks are refused."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def write_private(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to an owner-only file, atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_secret(experiment_dir: str | os.PathLike) -> str | None:
    """The experiment's secret, or None when there is none (or it is not ours to read)."""
    try:
        fd = os.open(Path(experiment_dir) / SECRET_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        text = f.read(256).decode(errors="replace").strip()
    return text or None


def load_or_create_secret(experiment_dir: str | os.PathLike) -> str:
    """The experiment's secret, created (0600, directory 0700) on first use."""
    directory = private_dir(experiment_dir)
    secret = read_secret(directory)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        write_private(directory / SECRET_FILE, secret + "\n")
    return secret


__all__ = ["SECRET_FILE", "load_or_create_secret", "private_dir", "private_file", "read_secret",
           "write_private"]
