"""The names a setting may give a binarization: schemes and bit-width tags (SPEC "Binarization").

TensorFlow-free, so settings (``bnas_tf.recipes``) validate these names
without loading it; :mod:`bnas_tf.space.quantizers` builds the Larq
quantizers they stand for and re-exports both.
"""

from __future__ import annotations

__all__ = ["BINARIZATION_TAGS", "SCHEMES"]

#: ``Binarization.scheme`` values: which Larq quantizers binarize kernels and activations.
SCHEMES = ("xnor", "pcnn", "dorefa", "ste")
#: ``W<weight bits>/A<activation bits>`` tag -> (weight bits, activation bits).
BINARIZATION_TAGS = {"W1/A32": (1, 32), "W1/A1": (1, 1), "W32/A32": (32, 32)}
