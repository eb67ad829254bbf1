"""Checks of numbers given to public functions: one test and one wording for every bad count or number.

Example:
    >>> count("repetitions", 3)
    3
    >>> count("repetitions", 0)
    Traceback (most recent call last):
    ValueError: repetitions must be a positive integer (got 0)
"""

from __future__ import annotations

import math
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


def number(name: str, value, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float, optionally bounded below (``> minimum`` when ``strict``, else ``>=``).

    Raises:
        ValueError: ``"<name> must be a number"``, ``"... must be finite"`` or ``"... must be >= <minimum>"``,
            each with the value given.
    """
    try:
        result = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None:
        if strict and not result > minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value!r}")
        if not strict and not result >= minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return result


def finite_number(name: str, value, minimum: float = 0.0, strict: bool = False, *, allow_none: bool = False):
    """A setting given as a Python ``int`` or ``float`` (bools refused), finite and ``>= minimum`` (``>`` when
    ``strict``), as a float; or None when ``allow_none``. Unlike :func:`number`, strings and other types that
    ``float()`` would take are refused, and every failure is one sentence naming the whole requirement.

    Raises:
        ValueError: ``"<name> must be a finite number > 0 or None, got 0"`` (``>=`` unless strict, ``" or None"``
            when None is allowed).
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
        or (strict and value == minimum)
    ):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}{' or None' if allow_none else ''}, got {value!r}")
    return float(value)
