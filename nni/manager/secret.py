"""The experiment's secret and its owner-only files.

Each experiment has one random secret, created with it and kept in
``<experiment dir>/secret`` (mode 0600, the directory 0700), so that only the user who
owns the experiment can read it. Every client route of the REST API asks for it (see
``docs/security.md``); ``nnictl`` and the Python API read it from that file, so the
owner never types it. Resume and view reuse the same file, so the owner's bookmarks, cookies
and scripts keep working, but only while it is provably private: a secret file that another
user wrote, or could read, is replaced by a new secret (it may be known to others).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ..errors import NniError

SECRET_FILE = "secret"


class SecretError(NniError, PermissionError):
    """The experiment's secret cannot be kept private (its directory is not this user's)."""


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


def _private_secret(path: Path) -> str | None:
    """The secret in ``path`` when only this user could have written or read it, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        return f.read(256).decode(errors="replace").strip() or None


def load_or_create_secret(experiment_dir: str | os.PathLike) -> str:
    """The experiment's secret, created (0600, directory 0700) on first use.

    An existing secret is reused (resume, view) only if this user owns the file and nobody
    else may read it; otherwise a new one replaces it. The directory must be this user's, or
    its owner could put a secret of their choosing there.
    """
    directory = private_dir(experiment_dir)
    info = os.stat(directory)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SecretError(f"experiment directory {directory} is not private to this user (owner uid {info.st_uid}, "
                       f"mode {stat.S_IMODE(info.st_mode):o}); its secret could be read or chosen by others")
    secret = _private_secret(directory / SECRET_FILE)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        write_private(directory / SECRET_FILE, secret + "\n")
    return secret


__all__ = ["SECRET_FILE", "SecretError", "load_or_create_secret", "private_dir", "private_file", "read_secret",
           "write_private"]
