"""Host-side schedules of the search losses, in pure Python (no TensorFlow): numbers that change once per epoch."""

from __future__ import annotations

import math

from bnas_tf.arguments import count, number


def diversity_weight(epoch, lam=1.0, tau=7.7):
    """Weight of the diversity regulariser at epoch t, SPEC P2 Eq. 5.

    ``lam * exp(-t / tau)``; the loss is ``L_S - weight * H(alpha)``. P2
    uses ``lam = 1.0``, ``tau = 7.7``. ``bnas_tf.space.losses.DiversityRegularizer`` and
    the differentiable search call it.

    Args:
        epoch: t, a finite number >= 0.
        lam: finite float >= 0.
        tau: finite float > 0.

    Returns:
        ``float``.

    Example:
        >>> round(diversity_weight(7.7), 6)  # exp(-1)
        0.367879
    """
    t = number("epoch", epoch, minimum=0.0)
    weight = number("lam", lam, minimum=0.0)
    scale = number("tau", tau, minimum=0.0, strict=True)
    return weight * math.exp(-t / scale)


def one_cycle_rate(step, total_steps, max_rate, min_rate, annihilation=0.1, reduce_factor=0.01):
    """Learning rate of the one-cycle policy at ``step``, as P2 retrains its CIFAR-10 networks.

    Leslie Smith's one cycle, as P2's code (``utils.OneCycleLR``) steps it: the first
    ``(1 - annihilation)`` of the steps form the cycle, rising linearly from ``min_rate`` to
    ``max_rate`` over its first half and falling back to ``min_rate`` over its second half; the last
    ``annihilation`` of the steps fall linearly from ``min_rate`` to ``min_rate * reduce_factor``.
    P2 §5 (CIFAR-10): ``max_rate = 5e-2``, ``min_rate = 4e-4``. Steps beyond ``total_steps`` keep
    the last rate. (P2's code also cycles the momentum 0.95 -> 0.85 -> 0.95; P2's text says momentum
    0.9, which the retraining keeps fixed.)

    Args:
        step: the optimizer step, a finite number >= 0.
        total_steps: all steps of the retraining, an int >= 1.
        max_rate: the peak rate, > 0.
        min_rate: the rate at the start and end of the cycle, in (0, max_rate].
        annihilation: the fraction of the steps after the cycle, in [0, 1).
        reduce_factor: the last rate is ``min_rate * reduce_factor``, in [0, 1].

    Returns:
        ``float``.

    Example:
        >>> one_cycle_rate(0, 100, 0.05, 4e-4), one_cycle_rate(45, 100, 0.05, 4e-4)
        (0.0004, 0.05)
        >>> round(one_cycle_rate(100, 100, 0.05, 4e-4), 8)
        4e-06
    """
    cycle, half = _one_cycle_phases(total_steps, annihilation)
    peak = number("max_rate", max_rate, minimum=0.0, strict=True)
    low = number("min_rate", min_rate, minimum=0.0, strict=True)
    if low > peak:
        raise ValueError(f"min_rate must be <= max_rate (got {min_rate} > {max_rate})")
    factor = number("reduce_factor", reduce_factor, minimum=0.0)
    if factor > 1.0:
        raise ValueError(f"reduce_factor must be in [0, 1] (got {reduce_factor})")
    last = low * factor
    t = min(number("step", step, minimum=0.0), float(total_steps))
    if t <= half:
        return low + (peak - low) * t / half
    if t <= cycle:
        return peak - (peak - low) * (t - half) / (cycle - half)
    return low - (low - last) * (t - cycle) / (total_steps - cycle)


def _one_cycle_phases(total_steps, annihilation) -> tuple[int, int]:
    """(steps in the cycle, steps in its rising half) of :func:`one_cycle_rate`, as P2's code rounds them."""
    total = count("total_steps", total_steps)
    tail = number("annihilation", annihilation, minimum=0.0)
    if tail >= 1.0:
        raise ValueError(f"annihilation must be < 1 (got {annihilation}): the cycle needs some of the steps")
    cycle = max(int(total * (1.0 - tail)), 2)
    return cycle, cycle // 2
