"""Checks of counts given to public functions: one test and one wording for every bad integer argument.

Example:
    >>> count("repetitions", 3)
    3
    >>> count("repetitions", 0)
    Traceback (most recent call last):
    ValueError: repetitions must be a positive integer (got 0)
"""
from __future__ import annotations

import numbers


def count(name: str, value, minimum: int = 1, *, allow_none: bool = False):
    """``value`` as an ``int`` >= ``minimum`` (bools refused), or None when ``allow_none``.

    Raises:
        ValueError: ``"<name> must be a positive integer (got 0)"``, or ``"... an integer >= <minimum>"`` for
            other minimums, with ``" or None"`` when None is allowed.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''} (got {value!r})")
    return int(value)
