"""Crash-safe file writing: write to a temporary file beside the target, then rename.

The temporary file is created like ``open(path, "w")`` creates a file (mode 0666 less the process umask), so
the renamed file has the permissions the user's umask gives: 0644 under umask 022, 0600 under 077.
"""

from __future__ import annotations

import errno
import json
import os
import secrets

#: Attempts at a free temporary name before giving up (each draws 48 random bits).
_TEMPORARY_NAME_ATTEMPTS = 100


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new file ``folder/.tmp-<random>`` opened for writing, created with mode 0666 & ~umask.

    ``tempfile.mkstemp`` creates 0600 whatever the umask, which left every run-folder file private.
    """
    for _ in range(_TEMPORARY_NAME_ATTEMPTS):
        path = os.path.join(folder, f".tmp-{secrets.token_hex(6)}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new file, never half of one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = _create_temporary(folder)
    except OSError as error:
        raise OSError(f"cannot write {path}: {error.strerror}; choose a writable output folder") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def read_json(
    path, *, what: str = "state file", recovery: str = "delete it to start that part again or restore it from a backup"
):
    """Read JSON, turning a corrupt file into an error that names it and the way out (``recovery``)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f"{error.msg} at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else "not text"
        raise ValueError(f"{what} {path} is corrupt ({where}); {recovery}") from None
