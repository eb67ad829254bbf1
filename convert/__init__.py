"""Verified Larq Compute Engine export of searched networks for ARM devices.

* :func:`to_tflite` - Keras model to .tflite through LCE's converter, after
  checking every layer converts faithfully (:func:`check_convertible`).
* :func:`verify` - Keras vs. the flatbuffer in LCE's interpreter: top-1
  agreement and logit differences.
* :func:`inspect` - file size, operator histogram (LceBconv2d, CONV_2D, ...)
  and the ratio to the 1-bit/32-bit lower bound of the weights.
* :func:`benchmark` - host latency against a float .tflite (reference only
  off ARM).
* :func:`load_model` - load a saved model or run folder in Keras safe mode.

Command line: ``bnas-tf convert MODEL -o model.tflite --verify-on digits --benchmark``.
"""

from bnas_tf.convert.benchmarking import benchmark
from bnas_tf.convert.export import float_tflite, to_tflite
from bnas_tf.convert.inspection import inspect, weight_bound_bytes
from bnas_tf.convert.loading import load_model
from bnas_tf.convert.verification import verify
from bnas_tf.deploy.convertibility import check_convertible

__all__ = [
    "benchmark",
    "check_convertible",
    "float_tflite",
    "inspect",
    "load_model",
    "to_tflite",
    "verify",
    "weight_bound_bytes",
]
