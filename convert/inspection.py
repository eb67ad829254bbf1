"""What is in a .tflite: size, operators, and how close the file is to the bit-level bound of its weights."""

from __future__ import annotations

import math
import os

from bnas_tf.convert import flatbuffer
from bnas_tf.deploy import costs
from bnas_tf.deploy.convertibility import becomes_lce_binary_conv
from bnas_tf.deploy.layer_walk import leaf_layers

# Operators that do a convolution or matrix product in float.
FLOAT_KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
BINARY_KERNEL_OPS = ("LceBconv2d",)


def weight_bound_bytes(binary_params: int, float_params: int) -> int:
    """Bit-level lower bound of a model's weights in bytes: 1 bit per binary, 32 bits per float parameter.

    ``ceil((binary_params * 1 + float_params * 32) / 8)``; ``float_params``
    counts every non-binary variable, BatchNorm moving statistics included.

    >>> weight_bound_bytes(binary_params=64, float_params=2)
    16
    """
    return math.ceil(costs.memory_bits(binary_params, float_params) / 8)


def inspect(tflite: bytes | str | os.PathLike, model=None) -> dict:
    """Size and operator histogram of a .tflite; with ``model``, its size relative to the weights' bit bound.

    The bound is 1 bit per binary and 32 bits per float parameter of the Keras model
    (:func:`weight_bound_bytes`). The file can be slightly *below* the bound: LCE folds each BatchNorm's
    four per-channel numbers into two (a multiplier and a bias), while the
    bound counts all four. Above it are the graph, float activations'
    padding and per-op metadata, which matter only for tiny networks.

    Args:
        tflite: flatbuffer bytes (as returned by ``to_tflite``) or a .tflite path.
        model: the Keras model it was converted from; None (default) skips the bound and the layer count.

    Returns:
        A dict with ``size_bytes``, ``ops`` (operator name -> count,
        e.g. ``{"LceBconv2d": 18, "LceQuantize": 12, "CONV_2D": 1, ...}``),
        ``num_ops``, ``binary_kernel_ops`` (LceBconv2d count: binary convs that
        really became binary kernels) and ``float_kernel_ops`` (CONV_2D,
        DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV). With the Keras
        ``model`` it converted from, also ``binary_params``, ``float_params``
        (from :func:`bnas_tf.deploy.costs.profile`), ``bound_bytes``
        (:func:`weight_bound_bytes`), ``size_over_bound`` and
        ``binary_conv_layers``: Keras convs with sign input and binary kernel.
        Fewer ``binary_kernel_ops`` than that means some stayed float: LCE 0.16
        does so for dilated binary convs that read the same tensor as another
        conv of the same kernel size and dilation (their SpaceToBatchND is shared
        and the dilated-conv pattern no longer matches).

    Raises:
        TypeError: ``tflite`` is neither bytes nor a path, or ``model`` is not a ``tf.keras.Model``.
        ValueError: ``tflite`` is not a TFLite flatbuffer, or ``costs.profile`` refuses ``model``.
        OSError: the .tflite file cannot be read.
    """
    data = flatbuffer.read(tflite)
    ops = flatbuffer.op_histogram(data)
    report = {
        "size_bytes": len(data),
        "ops": ops,
        "num_ops": sum(ops.values()),
        "binary_kernel_ops": sum(ops.get(name, 0) for name in BINARY_KERNEL_OPS),
        "float_kernel_ops": sum(ops.get(name, 0) for name in FLOAT_KERNEL_OPS),
    }
    if model is not None:
        profile = costs.profile(model)
        bound = weight_bound_bytes(profile["binary_params"], profile["float_params"])
        report.update(
            binary_params=profile["binary_params"],
            float_params=profile["float_params"],
            bound_bytes=bound,
            size_over_bound=len(data) / bound if bound else float("inf"),
            binary_conv_layers=sum(becomes_lce_binary_conv(layer) for _, layer in leaf_layers(model)),
        )
    return report
