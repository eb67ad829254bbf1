"""The per-layer rules of :func:`bnas_tf.deploy.lce_profile.lce_profile`: what LCE 0.16 makes of each layer call,
and its constants.

Each rule returns an entry: the layer's kind (binary, float, rejected,
folded), the reason, the TFLite ops it becomes and its constant tensors as
``(bytes, key)``. Keys are the constants' values where lce_profile can
compute them (BatchNorm terms, biases, PReLU slopes, small int vectors),
because the converter stores equal constants once; kernels get unique keys.
The rules are measured behaviour (see :mod:`bnas_tf.deploy.lce_profile`).
"""

from __future__ import annotations

import collections

import larq as lq
import numpy as np
import tensorflow as tf

from bnas_tf.deploy import costs
from bnas_tf.deploy.convertibility import layer_problem
from bnas_tf.space.ops import Zero
from bnas_tf.space.quantizers import LearnableAmplitudeSign

BINARY, FLOAT, REJECTED, FOLDED = "binary", "float", "rejected", "folded"
# The ops whose counts lce_profile predicts exactly (tests/lce); the other op counts are estimates.
KERNEL_OPS = ("LceBconv2d", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
FLOAT_BYTES = 4
BITPACK_WORD_BITS = 32  # LceBconv2d stores its filter as int32 words of 32 input channels

__all__ = ["FOLDING_LIMIT_WEIGHTS", "bconv_weight_bytes", "classify"]

# Measured on our stack (TF 2.15.1, LCE 0.16): the converter stops constant-folding a binarized kernel's scale
# above 2**25 weights (3x3x2048x1820 folds, 3x3x2048x1821 does not).
FOLDING_LIMIT_WEIGHTS = 2**25

_CONV_FAMILY = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv2D)
_KERNEL_LAYERS = _CONV_FAMILY + (tf.keras.layers.Dense,)
# Ops a following ReLU fuses into.
_FUSES_RELU = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "LceBconv2d")
_SIMPLE_OPS = {  # weightless layer type -> its float op
    tf.keras.layers.AveragePooling2D: "AVERAGE_POOL_2D",
    tf.keras.layers.Concatenate: "CONCATENATION",
    tf.keras.layers.Multiply: "MUL",
    tf.keras.layers.Flatten: "RESHAPE",
    tf.keras.layers.Reshape: "RESHAPE",
}
_NO_OP = (tf.keras.layers.InputLayer, tf.keras.layers.Dropout, tf.keras.layers.SpatialDropout2D)


# --------------------------------------------------------------------------
# Constants, keyed by value: the converter stores equal constants once (untrained networks share many).


def bconv_weight_bytes(kernel_height: int, kernel_width: int, input_channels: int, output_channels: int) -> int:
    """Bytes of an ``LceBconv2d``'s constants: the bit-packed filter plus two floats per output channel.

    The filter is stored as int32 words, one per 32 input channels (padded);
    the BatchNorm after the conv (and a magnitude-aware kernel scale) folds
    into a float output multiplier and bias per channel:

    bytes = 4 * C_out * K_h * K_w * ceil(C_in / 32) + 2 * 4 * C_out.

    >>> bconv_weight_bytes(3, 3, 64, 64)  # 64*9*2 words + 128 floats
    5120
    """
    words = costs.round_up(input_channels, BITPACK_WORD_BITS) // BITPACK_WORD_BITS
    return FLOAT_BYTES * output_channels * kernel_height * kernel_width * words + 2 * FLOAT_BYTES * output_channels


def _float_key(values):
    values = np.asarray(values, dtype=np.float32)
    return ("float32", values.shape, values.tobytes())


def _int_key(values):
    values = np.asarray(values, dtype=np.int32)
    return ("int32", values.shape, values.tobytes())


def _unique(nbytes):
    return (int(nbytes), object())


def _floats(values):
    return (FLOAT_BYTES * int(np.size(values)), _float_key(values))


def _ints(values):
    return (4 * int(np.size(values)), _int_key(values))


def _batch_norm_terms(layer):
    """(multiplier, offset) of an inference-mode BatchNorm: gamma / sqrt(var + eps) and beta - mean * multiplier."""
    channels = int(layer.moving_mean.shape[0])
    gamma = layer.gamma.numpy() if layer.gamma is not None else np.ones(channels, np.float32)
    beta = layer.beta.numpy() if layer.beta is not None else np.zeros(channels, np.float32)
    multiplier = (gamma / np.sqrt(layer.moving_variance.numpy() + np.float32(layer.epsilon))).astype(np.float32)
    return multiplier, (beta - layer.moving_mean.numpy() * multiplier).astype(np.float32)


def _kernel_scale(layer):
    """Per-output-channel magnitude of the binarized kernel (folded into LCE's multiplier), or None if unknown."""
    quantizer = layer.kernel_quantizer
    kernel = layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else np.asarray(layer.kernel)
    if isinstance(quantizer, lq.quantizers.MagnitudeAwareSign):
        return np.mean(np.abs(kernel), axis=tuple(range(kernel.ndim - 1)), dtype=np.float32)
    if isinstance(quantizer, LearnableAmplitudeSign) and hasattr(quantizer, "amplitude"):
        return quantizer.amplitude.numpy()
    if isinstance(quantizer, costs.LCE_INPUT_QUANTIZERS):
        return np.ones(kernel.shape[-1], np.float32)
    return None


# --------------------------------------------------------------------------
# One entry per layer call: kind, reason, ops, constants.


def _entry(kind, reason, ops=(), constants=(), output_op=None):
    ops = list(ops)
    return {
        "kind": kind,
        "reason": reason,
        "ops": ops,
        "constants": list(constants),
        "output_op": output_op or (ops[0] if ops else None),
    }


def _sign_input(layer) -> bool:
    return isinstance(getattr(layer, "input_quantizer", None), costs.LCE_INPUT_QUANTIZERS)


def _binary_kernel(layer) -> bool:
    quantizer = getattr(layer, "kernel_quantizer", None) or getattr(layer, "depthwise_quantizer", None)
    return costs.is_binary_quantizer(quantizer) and not isinstance(quantizer, lq.quantizers.NoOp)


def binary_in_keras(layer) -> bool:
    return _binary_kernel(layer) or costs.is_binary_quantizer(getattr(layer, "input_quantizer", None))


def _dilated_group_key(name, layer, graph):
    if not isinstance(layer, _CONV_FAMILY) or max(layer.dilation_rate) == 1:
        return None
    family = "depthwise" if isinstance(layer, tf.keras.layers.DepthwiseConv2D) else "conv"
    return (
        family,
        graph.input_of(name),
        tuple(layer.kernel_size),
        tuple(layer.dilation_rate),
        tuple(layer.strides),
        layer.padding,
        float(getattr(layer, "pad_values", 0.0)),
        _sign_input(layer),
    )


def _shared_dilated_groups(graph) -> dict:
    """call name -> its group's names, for dilated convs sharing a SPACE_TO_BATCH_ND with another."""
    groups = collections.defaultdict(list)
    for name, layer in graph.layers.items():
        key = None if name in graph.merged_into else _dilated_group_key(name, layer, graph)
        if key is not None:
            groups[key].append(name)
    return {name: members for members in groups.values() if len(members) > 1 for name in members}


def _unfolded_scale(layer):
    """How the converter leaves a scaled binary kernel too large for its constant folding, or None.

    Measured: above ``FOLDING_LIMIT_WEIGHTS`` (2**25 weights, 128 MiB as
    float32) a magnitude-aware scale stays a run-time MEAN, MUL and TRANSPOSE
    (``"runtime"``, both |W| and sign(W) stored as floats), and a learned
    amplitude folds into a float filter LCE does not binarize (``"float"``).
    Plain-sign kernels still become LceBconv2d.
    """
    if not (_sign_input(layer) and _binary_kernel(layer)) or isinstance(
        layer.kernel_quantizer, costs.LCE_INPUT_QUANTIZERS
    ):
        return None
    if int(np.prod(layer.kernel.shape)) <= FOLDING_LIMIT_WEIGHTS:
        return None
    return "runtime" if isinstance(layer.kernel_quantizer, lq.quantizers.MagnitudeAwareSign) else "float"


def _folded_batch_norm(name, graph):
    """The BatchNorm right after ``name`` (its only reader), which the converter folds into it, or None."""
    reader = graph.sole_reader(name)
    if name in graph.shared_dilated:
        return None  # the BATCH_TO_SPACE_ND between conv and BatchNorm stops the folding (measured)
    if isinstance(graph.layers[name], tf.keras.layers.Conv2D) and _unfolded_scale(graph.layers[name]) == "runtime":
        return None  # the filter is computed at run time: nothing to fold into
    if reader is not None and isinstance(graph.layers[reader], tf.keras.layers.BatchNormalization):
        return graph.layers[reader]
    return None


def _bias(name, layer, graph, channels) -> list:
    """The float bias constant of a float kernel: its own bias and/or a folded BatchNorm's offset."""
    batch_norm = _folded_batch_norm(name, graph)
    bias = layer.bias.numpy() if getattr(layer, "use_bias", False) and layer.bias is not None else None
    if batch_norm is not None:
        multiplier, offset = _batch_norm_terms(batch_norm)
        return [_floats(offset if bias is None else bias * multiplier + offset)]
    return [_floats(bias)] if bias is not None and np.any(bias) else []


def _dilation_ops(name, layer, shared) -> tuple:
    """Extra ops and constants of a dilated conv whose SPACE_TO_BATCH_ND is shared (it is fused otherwise)."""
    if name not in shared:
        return [], []
    dilation, kernel = tuple(layer.dilation_rate), tuple(layer.kernel_size)
    ops, constants = ["BATCH_TO_SPACE_ND"], [_ints(dilation), _ints(np.zeros((2, 2)))]
    if shared[name][0] == name:  # the group's one SPACE_TO_BATCH_ND (and PADV2 for one-padded inputs)
        ops.append("SPACE_TO_BATCH_ND")
        padding = _explicit_padding(layer)
        if padding is not None:  # padded by a PADV2 first: SPACE_TO_BATCH_ND pads nothing
            ops.append("PADV2")
            constants += [_ints(np.zeros((2, 2))), _ints([[0, 0], *padding, [0, 0]]), _floats(float(layer.pad_values))]
        else:
            constants.append((16, ("space_to_batch_paddings", kernel, dilation)))
    return ops, constants


def _binary_conv_constants(name, layer, graph):
    k_h, k_w, c_group, c_out = (int(d) for d in layer.kernel.shape)
    filter_bytes = bconv_weight_bytes(k_h, k_w, c_group * layer.groups, c_out) - 2 * FLOAT_BYTES * c_out
    scale, batch_norm = _kernel_scale(layer), _folded_batch_norm(name, graph)
    multiplier, offset = (np.ones(c_out, np.float32), np.zeros(c_out, np.float32))
    if batch_norm is not None:
        multiplier, offset = _batch_norm_terms(batch_norm)
    multiplier = _unique(FLOAT_BYTES * c_out) if scale is None else _floats(scale * multiplier)
    return [_unique(filter_bytes), multiplier, _floats(offset)]


def _unfolded_binary_conv(layer, unfolded, float_constants):
    weights = int(np.prod(layer.kernel.shape))
    padding = _explicit_padding(layer)
    pad_ops = ["PADV2"] if padding is not None else []
    pad_constants = [_ints([[0, 0], *padding, [0, 0]]), _floats(float(layer.pad_values))] if pad_ops else []
    reason = (
        f"{type(layer).__name__}'s scaled binary kernel has {weights:,} weights, over the converter's "
        f"folding limit of {FOLDING_LIMIT_WEIGHTS:,}: "
    )
    if unfolded == "runtime":
        return _entry(
            FLOAT,
            reason + "its magnitude-aware scale is computed at run time and LCE finds no binary "
            "filter, float CONV_2D storing |W| and sign(W) as floats (split the layer or use ste_sign "
            "kernels)",
            pad_ops + ["MEAN", "MUL", "TRANSPOSE", "CONV_2D"],
            [_unique(FLOAT_BYTES * weights), _unique(FLOAT_BYTES * weights), _ints([0, 1, 2]), _ints([3, 0, 1, 2])]
            + pad_constants,
            "CONV_2D",
        )
    return _entry(
        FLOAT,
        reason + "LCE does not binarize the folded float filter, float CONV_2D (split the layer "
        "or use ste_sign kernels)",
        pad_ops + ["CONV_2D"],
        float_constants + pad_constants,
        "CONV_2D",
    )


def _conv(name, layer, graph, shared):
    k_h, k_w, c_group, c_out = (int(d) for d in layer.kernel.shape)
    extra_ops, extra_constants = _dilation_ops(name, layer, shared)
    ops = ["CONV_2D"] + extra_ops
    constants = [_unique(FLOAT_BYTES * k_h * k_w * c_group * c_out)] + _bias(name, layer, graph, c_out)
    constants += extra_constants
    output_op = "BATCH_TO_SPACE_ND" if extra_ops else "CONV_2D"
    kind_name = type(layer).__name__
    input_quantizer = getattr(layer, "input_quantizer", None)
    if _sign_input(layer) and _binary_kernel(layer):
        if name in shared:
            return _entry(
                FLOAT,
                "dilated binary conv sharing its input with another of the same kernel and "
                "dilation: LCE's shared SPACE_TO_BATCH_ND makes both float CONV_2D",
                ops,
                constants,
                output_op,
            )
        unfolded = _unfolded_scale(layer)
        if unfolded is not None:
            return _unfolded_binary_conv(layer, unfolded, constants)
        return _entry(
            BINARY,
            f"{kind_name} with sign input and 1-bit kernel: LceBconv2d",
            ["LceBconv2d"],
            _binary_conv_constants(name, layer, graph),
        )
    if input_quantizer is None:
        reason = f"{kind_name} with float input and kernel: float CONV_2D"
        if _binary_kernel(layer):
            reason = (
                f"{kind_name} without input quantizer (W1/A32): float CONV_2D, its 1-bit weights stored as "
                "32-bit floats"
            )
        return _entry(FLOAT, reason, ops, constants, output_op)
    quantizer_name = type(input_quantizer).__name__
    if _sign_input(layer):
        return _entry(
            FLOAT, f"{kind_name} with a float kernel: float CONV_2D on dequantized signs", ops, constants, output_op
        )
    if costs.is_binary_quantizer(input_quantizer):  # DoReFa's round(clip(x, 0, 1)) is added by _add_input_ops
        return _entry(
            FLOAT,
            f"{quantizer_name} input quantizer is not sign-like: float CONV_2D after float ops for its "
            "round(clip(x, 0, 1)) (sign activations, binarization_scheme=xnor or ste, run as LceBconv2d)",
            ops,
            constants,
            output_op,
        )
    return _entry(FLOAT, f"{quantizer_name} input quantizer is not 1-bit: float CONV_2D", ops, constants, output_op)


def _depthwise(name, layer, graph, shared):
    k_h, k_w, channels, multiplier = (int(d) for d in layer.depthwise_kernel.shape)
    extra_ops, extra_constants = _dilation_ops(name, layer, shared)
    output_op = "BATCH_TO_SPACE_ND" if extra_ops else None
    constants = [_unique(FLOAT_BYTES * k_h * k_w * channels * multiplier)]
    kind_name = type(layer).__name__
    if isinstance(layer, tf.keras.layers.SeparableConv2D):
        _, _, c_mid, c_out = (int(d) for d in layer.pointwise_kernel.shape)
        constants += [_unique(FLOAT_BYTES * c_mid * c_out)] + _bias(name, layer, graph, c_out)
        binary = " (the depthwise step has no binary kernel in LCE)" if binary_in_keras(layer) else ""
        return _entry(
            FLOAT,
            f"{kind_name}: float DEPTHWISE_CONV_2D + CONV_2D{binary}",
            ["DEPTHWISE_CONV_2D", "CONV_2D"] + extra_ops,
            constants + extra_constants,
            output_op or "CONV_2D",
        )
    constants += _bias(name, layer, graph, channels * multiplier)
    reason = f"{kind_name}: float DEPTHWISE_CONV_2D"
    if binary_in_keras(layer):
        reason = f"{kind_name}: depthwise convs have no binary kernel in LCE (float DEPTHWISE_CONV_2D)"
    return _entry(FLOAT, reason, ["DEPTHWISE_CONV_2D"] + extra_ops, constants + extra_constants, output_op)


def _dense(name, layer, graph):
    c_in, c_out = (int(d) for d in layer.kernel.shape)
    constants = [_unique(FLOAT_BYTES * c_in * c_out)] + _bias(name, layer, graph, c_out)
    reason = f"{type(layer).__name__}: float FULLY_CONNECTED"
    if _binary_kernel(layer):
        reason = f"{type(layer).__name__}: LCE has no binary dense kernel, float FULLY_CONNECTED"
    return _entry(FLOAT, reason, ["FULLY_CONNECTED"], constants)


def _batch_norm(name, layer, graph, entries):
    producer = graph.producer_of(name)
    if (
        producer in entries
        and isinstance(graph.layers[producer], _KERNEL_LAYERS)
        and _folded_batch_norm(producer, graph) is layer
    ):
        into = "output multiplier and bias" if entries[producer]["output_op"] == "LceBconv2d" else "weights and bias"
        return _entry(FOLDED, f"BatchNorm right after {producer}: folded into its {into}")
    multiplier, offset = _batch_norm_terms(layer)
    ops, constants = ["MUL"], [_floats(multiplier)]
    if np.any(offset):  # the converter drops an ADD of zeros
        ops, constants = ops + ["ADD"], constants + [_floats(offset)]
    return _entry(FLOAT, "BatchNorm not right after a conv: float MUL and ADD", ops, constants, ops[-1])


def _output_op(name, graph, entries):
    """The op writing ``name``'s output, looking through folded layers."""
    while name is not None and entries[name]["kind"] == FOLDED and graph.inputs[name]:
        name = graph.merged_into.get(name) or graph.producer_of(name)
    return None if name is None else entries[name]["output_op"]


def _activation(name, layer, graph, entries):
    activation = (
        getattr(layer.activation, "__name__", str(layer.activation))
        if isinstance(layer, tf.keras.layers.Activation)
        else "relu"
    )
    if activation == "linear":
        return _entry(FOLDED, "linear activation: no op")
    plain_relu = activation == "relu" and not (
        isinstance(layer, tf.keras.layers.ReLU)
        and (layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0)
    )
    if not plain_relu:
        op = activation.upper() if isinstance(layer, tf.keras.layers.Activation) else "LEAKY_RELU"
        return _entry(FLOAT, f"{type(layer).__name__} ({activation}): float {op}", [op])
    producer = graph.producer_of(name)
    if producer is not None and graph.sole_reader(producer) == name:
        op = _output_op(producer, graph, entries)
        if op in _FUSES_RELU:
            return _entry(FOLDED, f"ReLU fused into the {op} of {producer}", output_op=op)
    return _entry(FLOAT, "ReLU: float RELU", ["RELU"])


def _max_pool(name, layer, graph, entries):
    readers = graph.readers.get(graph.output[name], [])
    if readers and all(entries.get(r, {}).get("output_op") == "LceBconv2d" for r in readers):
        return _entry(BINARY, "max pool read only by binary convs: LCE pools the packed bits", ["LceBMaxPool2d"])
    return _entry(FLOAT, "MaxPool2D: float MAX_POOL_2D", ["MAX_POOL_2D"])


def _slice_constants(begin, end, strides):
    return [_ints(begin), _ints(end), _ints(strides)]


def _other(name, layer, graph, entries):
    kind_name = type(layer).__name__
    if isinstance(layer, _NO_OP):
        return _entry(FOLDED, f"{kind_name}: no op at inference")
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        return _batch_norm(name, layer, graph, entries)
    if isinstance(layer, tf.keras.layers.PReLU):
        return _entry(FLOAT, "PReLU: float PRELU", ["PRELU"], [_floats(layer.alpha.numpy())])
    if isinstance(layer, (tf.keras.layers.ReLU, tf.keras.layers.Activation)):
        return _activation(name, layer, graph, entries)
    if isinstance(layer, tf.keras.layers.MaxPool2D):
        return _max_pool(name, layer, graph, entries)
    if isinstance(layer, tf.keras.layers.Add):
        return _entry(FLOAT, "Add: float ADD", ["ADD"] * max(1, len(graph.inputs[name]) - 1))
    if isinstance(layer, Zero):  # the (even 1-step) slice of its input stays
        constants = _slice_constants([0] * 4, [0] * 4, [1, layer.stride, layer.stride, 1])
        return _entry(
            FLOAT, "Zero: float STRIDED_SLICE and ZEROS_LIKE", ["STRIDED_SLICE", "ZEROS_LIKE"], constants, "ZEROS_LIKE"
        )
    if isinstance(layer, tf.keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        paddings = [[0, 0], [top, bottom], [left, right], [0, 0]]
        return _entry(FLOAT, "ZeroPadding2D: float PAD", ["PAD"], [_ints(paddings)])
    if isinstance(layer, tf.keras.layers.Cropping2D):
        (top, bottom), (left, right) = layer.cropping
        constants = _slice_constants([0, top, left, 0], [0, -bottom, -right, 0], [1] * 4)
        return _entry(FLOAT, "Cropping2D: float STRIDED_SLICE", ["STRIDED_SLICE"], constants)
    if isinstance(layer, (tf.keras.layers.GlobalAveragePooling2D, tf.keras.layers.GlobalMaxPooling2D)):
        op = "MEAN" if isinstance(layer, tf.keras.layers.GlobalAveragePooling2D) else "REDUCE_MAX"
        return _entry(FLOAT, f"{kind_name}: float {op}", [op], [_ints([1, 2])])
    for layer_type, op in _SIMPLE_OPS.items():
        if isinstance(layer, layer_type):
            return _entry(FLOAT, f"{kind_name}: float {op}", [op])
    return _entry(FLOAT, f"no LCE rule for {kind_name}: counted as one float op", [kind_name.upper()])


def _explicit_padding(layer):
    """[[top, bottom], [left, right]] Larq pads a conv with ``pad_values != 0`` by itself (PADV2 when float)."""
    if float(getattr(layer, "pad_values", 0.0)) == 0.0 or layer.padding != "same":
        return None
    extents = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation_rate)]
    return None if not any(extents) else tuple((e // 2, e - e // 2) for e in extents)


def _add_input_ops(graph, entries):
    """The ops quantizing conv inputs, once per tensor as the converter shares them.

    Sign inputs: LceQuantize per tensor read by sign-input layers (none when
    the tensor is already packed bits), LceDequantize per tensor read by float
    ones. DoReFa inputs: MINIMUM, RELU, ROUND per tensor, then a PADV2 per
    tensor and padding for one-padded convs.
    """
    quantized, dequantized, dorefa, padded = set(), set(), set(), set()
    for name, layer in graph.layers.items():
        entry = entries[name]
        binary = entry["kind"] == BINARY
        if name in graph.merged_into or not graph.inputs[name]:
            continue
        tensor = graph.input_of(name)
        if isinstance(getattr(layer, "input_quantizer", None), lq.quantizers.DoReFa):
            if tensor not in dorefa:
                dorefa.add(tensor)
                entry["ops"][:0] = ["MINIMUM", "RELU", "ROUND"]
                entry["constants"].append(_floats(1.0))
            padding = _explicit_padding(layer)
            key = (tensor, padding, tuple(layer.dilation_rate))  # measured: no sharing across dilations
            if padding is not None and key not in padded:
                padded.add(key)
                entry["ops"].insert(entry["ops"].index("CONV_2D"), "PADV2")
                entry["constants"] += [_ints([[0, 0], *padding, [0, 0]]), _floats(float(layer.pad_values))]
            continue
        if not (binary or _sign_input(layer)):
            continue
        producer = graph.producer.get(tensor)
        source_op = _output_op(producer, graph, entries) if producer is not None else None
        # LceBMaxPool2d writes packed bits; so does LceBconv2d when every reader takes bits.
        bits = source_op == "LceBMaxPool2d" or (
            source_op == "LceBconv2d" and all(entries[r]["kind"] == BINARY for r in graph.readers[tensor])
        )
        if not bits and tensor not in quantized:
            quantized.add(tensor)
            entry["ops"].insert(0, "LceQuantize")
        if not binary and tensor not in dequantized:
            dequantized.add(tensor)
            entry["ops"].insert(1 if entry["ops"][0] == "LceQuantize" else 0, "LceDequantize")


def classify(graph) -> dict:
    """call name -> ``{"kind", "reason", "ops", "constants", "output_op"}`` for every call of ``graph``."""
    # Imported here: bnas_tf.convert loads Larq Compute Engine, which importing bnas_tf.deploy.costs should not.

    shared = graph.shared_dilated = _shared_dilated_groups(graph)
    entries = {}
    for name, layer in graph.layers.items():  # kernels first: BatchNorm, ReLU and pools depend on them
        if name in graph.merged_into:
            entries[name] = _entry(
                FOLDED, f"same op on the same tensor as {graph.merged_into[name]}: the converter merges them"
            )
        elif isinstance(layer, (tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv2D)):
            entries[name] = _depthwise(name, layer, graph, shared)
        elif isinstance(layer, tf.keras.layers.Conv2D):
            entries[name] = _conv(name, layer, graph, shared)
        elif isinstance(layer, tf.keras.layers.Dense):
            entries[name] = _dense(name, layer, graph)
    for name, layer in graph.layers.items():
        if name not in entries:
            entries[name] = _other(name, layer, graph, entries)
    _add_input_ops(graph, entries)
    for name, layer in graph.layers.items():
        problem = layer_problem(layer)
        if problem:
            entries[name].update(kind=REJECTED, reason=problem)
    return entries
