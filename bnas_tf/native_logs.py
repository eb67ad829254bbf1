"""Quiet the log lines TensorFlow, absl and Larq Compute Engine's converter write themselves.

TensorFlow's C++ runtime logs to the process's stderr (oneDNN, CUDA and TensorRT notices when it loads), and so
does the LCE converter on every conversion (SavedModel loading, "Estimated count of arithmetic ops", MLIR
``loc(...)`` diagnostics, op summaries) through a copy of TensorFlow linked into it. ``bnas-tf`` shows its own
lines, Keras progress bars and errors; :func:`quiet` hides the libraries' lines, and ``bnas-tf COMMAND --verbose``
skips it. A ``TF_CPP_MIN_LOG_LEVEL`` set by the user is kept.

Call :func:`quiet` before TensorFlow is imported, and run each conversion inside ``with
converter_output_hidden():``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile

import absl.logging

_STDERR_FD = 2
_quiet = False


def quiet() -> None:
    """Hide TensorFlow's C++ log lines and its and absl's Python log lines below ERROR; turn on
    :func:`converter_output_hidden`.

    TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` when it loads, so call this before the first TensorFlow import.
    """
    global _quiet
    _quiet = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl.logging.set_verbosity(absl.logging.ERROR)


def _writes_to(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def converter_output_hidden():
    """After :func:`quiet`: what native code writes to file descriptor 2 inside the block goes to a temporary
    file, not the terminal (the converter's C++ and MLIR lines do not all honour ``TF_CPP_MIN_LOG_LEVEL``).

    Python's ``sys.stderr`` keeps writing to the terminal. When the block raises, the hidden lines are written
    out before the error propagates, since they may say why. Without :func:`quiet` the block runs unchanged.
    """
    if not _quiet:
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved_fd = os.dup(_STDERR_FD)
    with tempfile.TemporaryFile() as hidden:
        os.dup2(hidden.fileno(), _STDERR_FD)
        if _writes_to(python_stderr, _STDERR_FD):
            sys.stderr = open(  # closed by _restore; the saved descriptor stays open until then
                saved_fd, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace", closefd=False
            )
        try:
            yield
        except BaseException:
            _restore(python_stderr, saved_fd)
            hidden.seek(0)
            python_stderr.write(hidden.read().decode(errors="replace"))
            python_stderr.flush()
            raise
        else:
            _restore(python_stderr, saved_fd)


def _restore(python_stderr, saved_fd: int) -> None:
    if sys.stderr is not python_stderr:
        sys.stderr.close()
        sys.stderr = python_stderr
    os.dup2(saved_fd, _STDERR_FD)
    os.close(saved_fd)
