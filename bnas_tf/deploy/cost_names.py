"""The deployment costs a search can weigh: entries of :func:`bnas_tf.deploy.lce_profile.lce_profile`.

TensorFlow-free, so settings (``bnas_tf.recipes``) validate a cost name
without loading it; :mod:`bnas_tf.deploy.lce_profile` re-exports the list
and ``bnas_tf.tuners.deployment`` records every one of them per trial.
"""

from __future__ import annotations

__all__ = ["COSTS"]

#: ``lce_profile`` keys: modelled .tflite bytes, LCE-accelerated binary MACs, float MACs, and the part of the
#: float MACs from layers with a 1-bit kernel or input in Keras.
COSTS = ("size_bytes", "binary_macs", "float_macs", "fallback_macs")
