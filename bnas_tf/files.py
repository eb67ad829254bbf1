"""Crash-safe file writing: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import json
import os
import tempfile


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new file, never half of one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
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
