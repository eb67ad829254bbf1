"""How the commands talk to the terminal."""

from __future__ import annotations

import sys


def fit_verbosity(verbose: int) -> int:
    """Keras progress bars on a terminal; one line per epoch in a log file."""
    if not verbose:
        return 0
    return 1 if sys.stdout.isatty() else 2
