"""Keras learning-rate schedules the retraining uses beyond Keras' own (cosine, piecewise constant)."""

from __future__ import annotations

import tensorflow as tf

from bnas_tf.space.schedules import _one_cycle_phases, one_cycle_rate


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class OneCycle(tf.keras.optimizers.schedules.LearningRateSchedule):
    """P2's one-cycle learning rate as a Keras schedule, the rate of :func:`~bnas_tf.space.schedules.one_cycle_rate`.

    Example: ``tf.keras.optimizers.SGD(OneCycle(total_steps=600 * 196, max_rate=5e-2, min_rate=4e-4), 0.9)``.

    Args:
        total_steps: all steps of the training, an int >= 1.
        max_rate: the peak rate.
        min_rate: the rate at the start and end of the cycle.
        annihilation: the fraction of the steps after the cycle (default 0.1, as P2's code).
        reduce_factor: the last rate is ``min_rate * reduce_factor`` (default 0.01, as P2's code).

    Raises:
        ValueError: as :func:`~bnas_tf.space.schedules.one_cycle_rate`.
    """

    def __init__(self, total_steps, max_rate, min_rate, annihilation=0.1, reduce_factor=0.01):
        one_cycle_rate(0, total_steps, max_rate, min_rate, annihilation, reduce_factor)  # checks every argument
        self.total_steps = int(total_steps)
        self.max_rate = float(max_rate)
        self.min_rate = float(min_rate)
        self.annihilation = float(annihilation)
        self.reduce_factor = float(reduce_factor)
        self._cycle, self._half = _one_cycle_phases(total_steps, annihilation)

    def __call__(self, step):
        t = tf.minimum(tf.cast(step, tf.float32), float(self.total_steps))
        low, peak = self.min_rate, self.max_rate
        last = low * self.reduce_factor
        cycle, half = float(self._cycle), float(self._half)
        rising = low + (peak - low) * t / half
        falling = peak - (peak - low) * (t - half) / (cycle - half)
        tail = low - (low - last) * (t - cycle) / max(self.total_steps - cycle, 1.0)
        return tf.where(t <= half, rising, tf.where(t <= cycle, falling, tail))

    def get_config(self):
        return {
            "total_steps": self.total_steps,
            "max_rate": self.max_rate,
            "min_rate": self.min_rate,
            "annihilation": self.annihilation,
            "reduce_factor": self.reduce_factor,
        }
