"""The names a setting may give a binarization: schemes and bit-width tags (SPEC "Binarization").

TensorFlow-free, so settings (``bnas_tf.recipes``) validate these names
without loading it; :mod:`bnas_tf.space.quantizers` builds the Larq
quantizers they stand for and re-exports both.
"""

from __future__ import annotations

__all__ = ["AMPLITUDE_GRANULARITIES", "BINARIZATION_TAGS", "BLOCK_ORDERS", "SCHEMES"]

#: ``Binarization.scheme`` values: which Larq quantizers binarize kernels and activations.
SCHEMES = ("xnor", "pcnn", "dorefa", "ste")
#: ``W<weight bits>/A<activation bits>`` tag -> (weight bits, activation bits).
BINARIZATION_TAGS = {"W1/A32": (1, 32), "W1/A1": (1, 1), "W32/A32": (32, 32)}
#: ``Binarization.amplitude`` values of the ``pcnn`` scheme: PCNN's amplitude per output channel, P1's per layer.
AMPLITUDE_GRANULARITIES = ("channel", "layer")
#: ``Binarization.block`` values, the order of a binary conv unit's layers: ``sign_conv_bn`` is
#: [ReLU] -> (sign) conv -> BN [-> PReLU]; ``bn_sign_conv`` is P2's code, BN [-> ReLU] -> (sign) conv [-> PReLU].
BLOCK_ORDERS = ("sign_conv_bn", "bn_sign_conv")
