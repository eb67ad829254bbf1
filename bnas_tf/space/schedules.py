"""Host-side schedules of the search losses, in pure Python (no TensorFlow): numbers that change once per epoch."""

from __future__ import annotations

import math

from bnas_tf.arguments import number


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
