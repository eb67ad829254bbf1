"""What Larq Compute Engine will run as binary, before anyone trains or converts (issue 8).

:func:`lce_profile` predicts, layer by layer, what LCE 0.16's converter
makes of a Keras (Larq) model: a binary kernel (``LceBconv2d``), a float
TFLite op, or a refusal (``bnas_tf.convert.check_convertible``), each with the
reason. The rules are the ones measured on our stack (STACK_NOTES "Larq
Compute Engine", README "Deploy", tests/convert/test_lce_behaviour.py):

- a ``QuantConv2D`` with a sign-like input quantizer (``LCE_INPUT_QUANTIZERS``)
  and a 1-bit kernel becomes ``LceBconv2d``, with the BatchNorm after it
  folded into its output multiplier and bias; a max pool whose every reader
  is such a conv pools the packed bits (``LceBMaxPool2d``);
- depthwise convs, W1/A32 convs (no input quantizer), DoReFa activations and
  dense layers stay float (``DEPTHWISE_CONV_2D``, ``CONV_2D``,
  ``FULLY_CONNECTED``);
- dilated convs with the same kernel size and dilation reading the same
  tensor share one ``SPACE_TO_BATCH_ND``; binary ones then become float
  ``CONV_2D`` (after ``LceDequantize`` and ``PADV2``), and each keeps a
  ``BATCH_TO_SPACE_ND``;
- the converter merges identical weightless ops on the same tensor (CSE),
  and fuses a ReLU into the conv, dense or add before it when it is that
  op's only reader.

Costs: accelerated binary MACs are counted as LCE's kernels execute them,
input channels padded to 32 and output channels to 8
(:func:`bnas_tf.costs.lce_conv_macs`); every other MAC of a conv or dense layer
is a float MAC. The flatbuffer size is modelled from the weights
(:func:`flatbuffer_size`).
"""
from __future__ import annotations

import collections

import larq as lq
import numpy as np
import tensorflow as tf

from bnas_tf.ops import Zero

__all__ = ["KERNEL_OPS", "bconv_weight_bytes", "flatbuffer_size", "lce_profile"]

BINARY, FLOAT, REJECTED, FOLDED = "binary", "float", "rejected", "folded"
# The ops whose counts lce_profile predicts exactly (tests/lce); the other op counts are estimates.
KERNEL_OPS = ("LceBconv2d", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
FLOAT_BYTES = 4
BITPACK_WORD_BITS = 32  # LceBconv2d stores its filter as int32 words of 32 input channels

# Size model (flatbuffer_size): bytes per op, per constant tensor and per file on top of the constants' bytes,
# fitted by least squares on relative error over 36 conversions: 18 random networks (both cell op sets in W1/A1
# and W1/A32 with 2-3 cells and 8-16 channels, VGG-small and ResNet-18 width genes; 16x16x1 inputs, seeds 1000+,
# disjoint from the tests'), each untrained and after 3 training steps. Fit error: max 1.75%, mean 0.42%.
# Refit with `python tests/lce/fit_size_model.py`.
SIZE_BYTES_PER_OP = 185
SIZE_BYTES_PER_CONSTANT = 85
SIZE_BASE_BYTES = 1474

_CONV_FAMILY = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv2D)
_KERNEL_LAYERS = _CONV_FAMILY + (tf.keras.layers.Dense,)
# Weightless layers the converter merges when two of them read the same tensor with the same settings.
_MERGEABLE = (tf.keras.layers.ReLU, tf.keras.layers.Activation, tf.keras.layers.MaxPool2D,
              tf.keras.layers.AveragePooling2D, tf.keras.layers.ZeroPadding2D, tf.keras.layers.Cropping2D,
              tf.keras.layers.GlobalAveragePooling2D, Zero)
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
# Pure formulas.


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


def flatbuffer_size(weight_bytes: int, num_ops: int, num_constants: int) -> int:
    """Expected .tflite size: the constants' bytes plus a fitted overhead per op, per constant and per file.

    size = weight_bytes + 185 * ops + 85 * constants + 1474

    The per-op bytes pay for the operator table, its options and its output
    tensor (shape, name); the per-constant bytes for the constant's tensor
    entry, buffer table and 16-byte alignment. The three numbers are a
    least-squares fit on converted networks (``SIZE_*`` in this module);
    names are not modelled, so very long layer names add a little.

    >>> flatbuffer_size(weight_bytes=10_000, num_ops=100, num_constants=40)
    33374
    """
    return int(weight_bytes + SIZE_BYTES_PER_OP * num_ops + SIZE_BYTES_PER_CONSTANT * num_constants
               + SIZE_BASE_BYTES)


# --------------------------------------------------------------------------
# The layer graph as the converter sees it.


def _is_graph_network(layer) -> bool:
    return isinstance(layer, tf.keras.Model) and bool(getattr(layer, "inputs", None))


def _layer_calls(model) -> list:
    """``(name, layer, input ids, output ids)`` of every layer call the model's outputs depend on, inputs first.

    Nested functional models are flattened: their input and output tensors
    are aliased to the tensors they are called on and return. A layer called
    again gets `` (call N)`` after its name.
    """
    producer, alias = {}, {}

    def scan(container, prefix):
        for layer in container.layers:
            name = prefix + layer.name
            nodes = layer.inbound_nodes
            for index, node in enumerate(nodes):
                for tensor in tf.nest.flatten(node.outputs):
                    producer[id(tensor)] = (name if index == 0 else f"{name} (call {index + 1})", layer, node)
            if _is_graph_network(layer):
                if len(nodes) != 1:
                    raise ValueError(f"nested model {name!r} is called {len(nodes)} times; lce_profile flattens "
                                     "nested models called once")
                for inner, outer in zip(layer.inputs, nodes[0].keras_inputs):
                    alias[id(inner)] = id(outer)
                for inner, outer in zip(layer.outputs, tf.nest.flatten(nodes[0].outputs)):
                    alias[id(outer)] = id(inner)
                scan(layer, name + "/")

    def resolve(tensor_id):
        while tensor_id in alias:
            tensor_id = alias[tensor_id]
        return tensor_id

    scan(model, "")
    calls, done, stack = [], set(), [(resolve(id(t)), False) for t in reversed(model.outputs)]
    while stack:  # iterative depth-first search: deep cell networks exceed Python's recursion limit
        tensor_id, expanded = stack.pop()
        if tensor_id not in producer or (expanded is False and producer[tensor_id][0] in done):
            continue
        name, layer, node = producer[tensor_id]
        inputs = [resolve(id(t)) for t in node.keras_inputs]
        if not expanded:
            stack.append((tensor_id, True))
            stack.extend((t, False) for t in reversed(inputs) if t in producer and producer[t][0] not in done)
        elif name not in done:
            done.add(name)
            calls.append((name, layer, inputs, [id(t) for t in tf.nest.flatten(node.outputs)]))
    return calls


class _Graph:
    """Producers and readers of every tensor, after merging identical weightless ops as the converter does."""

    def __init__(self, model):
        self.layers = collections.OrderedDict()  # call name -> layer, inputs first
        self.inputs, self.output = {}, {}  # call name -> canonical input ids / output id
        self.producer = {}  # canonical tensor id -> call name
        self.readers = collections.defaultdict(list)  # canonical tensor id -> call names (merged calls excluded)
        self.merged_into = {}  # call name -> the identical call it is merged with
        canonical, merge_keys = {}, {}
        for name, layer, inputs, outputs in _layer_calls(model):
            ins = [canonical.get(t, t) for t in inputs]
            self.layers[name], self.inputs[name] = layer, ins
            key = self._merge_key(layer, ins)
            if key in merge_keys:
                self.merged_into[name] = merge_keys[key]
                self.output[name] = self.output[merge_keys[key]]
                canonical.update((t, self.output[name]) for t in outputs)
                continue
            if key is not None:
                merge_keys[key] = name
            self.producer.update((t, name) for t in outputs)
            self.output[name] = outputs[0] if outputs else None
            for tensor in dict.fromkeys(ins):
                self.readers[tensor].append(name)
        self.shared_dilated = _shared_dilated_groups(self)

    @staticmethod
    def _merge_key(layer, inputs):
        if not isinstance(layer, _MERGEABLE) or layer.weights:
            return None
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable")}
        return type(layer), repr(sorted(config.items())), tuple(inputs)

    def input_of(self, name):
        return self.inputs[name][0]

    def sole_reader(self, name):
        """The one call reading ``name``'s output, or None when several (or none) do."""
        readers = self.readers.get(self.output[name], [])
        return readers[0] if len(readers) == 1 else None

    def producer_of(self, name):
        """The call producing ``name``'s (first) input, or None for a model input."""
        return self.producer.get(self.input_of(name)) if self.inputs[name] else None


# --------------------------------------------------------------------------
# Constants, keyed by value: the converter stores equal constants once (untrained networks share many).


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
    from bnas_tf.quantizers import LearnableAmplitudeSign

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
    return {"kind": kind, "reason": reason, "ops": ops, "constants": list(constants),
            "output_op": output_op or (ops[0] if ops else None)}


def _sign_input(layer) -> bool:
    return isinstance(getattr(layer, "input_quantizer", None), costs.LCE_INPUT_QUANTIZERS)


def _binary_kernel(layer) -> bool:
    quantizer = getattr(layer, "kernel_quantizer", None) or getattr(layer, "depthwise_quantizer", None)
    return costs.is_binary_quantizer(quantizer) and not isinstance(quantizer, lq.quantizers.NoOp)


def _binary_in_keras(layer) -> bool:
    return _binary_kernel(layer) or costs.is_binary_quantizer(getattr(layer, "input_quantizer", None))


def _dilated_group_key(name, layer, graph):
    if not isinstance(layer, _CONV_FAMILY) or max(layer.dilation_rate) == 1:
        return None
    family = "depthwise" if isinstance(layer, tf.keras.layers.DepthwiseConv2D) else "conv"
    return (family, graph.input_of(name), tuple(layer.kernel_size), tuple(layer.dilation_rate),
            tuple(layer.strides), layer.padding, float(getattr(layer, "pad_values", 0.0)), _sign_input(layer))


def _shared_dilated_groups(graph) -> dict:
    """call name -> its group's names, for dilated convs sharing a SPACE_TO_BATCH_ND with another."""
    groups = collections.defaultdict(list)
    for name, layer in graph.layers.items():
        key = None if name in graph.merged_into else _dilated_group_key(name, layer, graph)
        if key is not None:
            groups[key].append(name)
    return {name: members for members in groups.values() if len(members) > 1 for name in members}


def _folded_batch_norm(name, graph):
    """The BatchNorm right after ``name`` (its only reader), which the converter folds into it, or None."""
    reader = graph.sole_reader(name)
    if name in graph.shared_dilated:
        return None  # the BATCH_TO_SPACE_ND between conv and BatchNorm stops the folding (measured)
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


def _conv(name, layer, graph, shared):
    k_h, k_w, c_group, c_out = (int(d) for d in layer.kernel.shape)
    extra_ops, extra_constants = _dilation_ops(name, layer, shared)
    ops = ["CONV_2D"] + extra_ops
    constants = [_unique(FLOAT_BYTES * k_h * k_w * c_group * c_out)] + _bias(name, layer, graph, c_out) + extra_constants
    output_op = "BATCH_TO_SPACE_ND" if extra_ops else "CONV_2D"
    kind_name = type(layer).__name__
    input_quantizer = getattr(layer, "input_quantizer", None)
    if _sign_input(layer) and _binary_kernel(layer):
        if name in shared:
            return _entry(FLOAT, "dilated binary conv sharing its input with another of the same kernel and "
                          "dilation: LCE's shared SPACE_TO_BATCH_ND makes both float CONV_2D",
                          ops, constants, output_op)
        return _entry(BINARY, f"{kind_name} with sign input and 1-bit kernel: LceBconv2d", ["LceBconv2d"],
                      _binary_conv_constants(name, layer, graph))
    if input_quantizer is None:
        reason = f"{kind_name} with float input and kernel: float CONV_2D"
        if _binary_kernel(layer):
            reason = (f"{kind_name} without input quantizer (W1/A32): float CONV_2D, its 1-bit weights stored as "
                      "32-bit floats")
        return _entry(FLOAT, reason, ops, constants, output_op)
    quantizer_name = type(input_quantizer).__name__
    if _sign_input(layer):
        return _entry(FLOAT, f"{kind_name} with a float kernel: float CONV_2D on dequantized signs", ops, constants,
                      output_op)
    if costs.is_binary_quantizer(input_quantizer):  # DoReFa's round(clip(x, 0, 1)) is added by _add_input_ops
        return _entry(FLOAT, f"{quantizer_name} input quantizer is not sign-like: float CONV_2D", ops, constants,
                      output_op)
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
        binary = " (the depthwise step has no binary kernel in LCE)" if _binary_in_keras(layer) else ""
        return _entry(FLOAT, f"{kind_name}: float DEPTHWISE_CONV_2D + CONV_2D{binary}",
                      ["DEPTHWISE_CONV_2D", "CONV_2D"] + extra_ops, constants + extra_constants, output_op or "CONV_2D")
    constants += _bias(name, layer, graph, channels * multiplier)
    reason = f"{kind_name}: float DEPTHWISE_CONV_2D"
    if _binary_in_keras(layer):
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
    if (producer in entries and isinstance(graph.layers[producer], _KERNEL_LAYERS)
            and _folded_batch_norm(producer, graph) is layer):
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
    activation = getattr(layer.activation, "__name__", str(layer.activation)) \
        if isinstance(layer, tf.keras.layers.Activation) else "relu"
    if activation == "linear":
        return _entry(FOLDED, "linear activation: no op")
    plain_relu = activation == "relu" and not (isinstance(layer, tf.keras.layers.ReLU) and (
        layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0))
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
        return _entry(FLOAT, "Zero: float STRIDED_SLICE and ZEROS_LIKE", ["STRIDED_SLICE", "ZEROS_LIKE"], constants,
                      "ZEROS_LIKE")
    if isinstance(layer, tf.keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return _entry(FLOAT, "ZeroPadding2D: float PAD", ["PAD"], [_ints([[0, 0], [top, bottom], [left, right], [0, 0]])])
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
    """Larq pads a conv with ``pad_values != 0`` itself (a PADV2 when it stays float): [[top, bottom], [left, right]]."""
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
            source_op == "LceBconv2d" and all(entries[r]["kind"] == BINARY for r in graph.readers[tensor]))
        if not bits and tensor not in quantized:
            quantized.add(tensor)
            entry["ops"].insert(0, "LceQuantize")
        if not binary and tensor not in dequantized:
            dequantized.add(tensor)
            entry["ops"].insert(1 if entry["ops"][0] == "LceQuantize" else 0, "LceDequantize")


def _classify(graph) -> dict:
    # Imported here: bnas_tf.convert loads Larq Compute Engine, which importing bnas_tf.costs should not.
    from bnas_tf.convert.checks import layer_problem

    shared = graph.shared_dilated
    entries = {}
    for name, layer in graph.layers.items():  # kernels first: BatchNorm, ReLU and pools depend on them
        if name in graph.merged_into:
            entries[name] = _entry(FOLDED, f"same op on the same tensor as {graph.merged_into[name]}: the "
                                   "converter merges them")
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


# --------------------------------------------------------------------------
# The profile.


def _row(name, layer, entry, cost, stored):
    """One layer's row; ``stored`` holds the keys of constants already counted (equal constants are stored once)."""
    macs = int(cost.get("macs", 0))
    binary = entry["ops"].count("LceBconv2d") > 0
    weight_bytes = constants = 0
    for nbytes, key in entry["constants"]:
        if key not in stored:
            stored.add(key)
            weight_bytes, constants = weight_bytes + nbytes, constants + 1
    return {
        "name": name,
        "type": type(layer).__name__,
        "kind": entry["kind"],
        "reason": entry["reason"],
        "ops": entry["ops"],
        "macs": macs,
        "binary_macs": int(cost.get("lce_macs", 0)) if binary else 0,
        "unpadded_binary_macs": macs if binary else 0,
        "float_macs": 0 if binary else macs,
        "fallback_macs": macs if not binary and _binary_in_keras(layer) else 0,
        "weight_bytes": weight_bytes,
        "constants": constants,
    }


def lce_profile(model: tf.keras.Model) -> dict:
    """What LCE 0.16 makes of ``model``, per layer and in total, without converting it.

    Returns a dict with

    - ``layers``: one dict per layer call (model inputs excluded): ``name``,
      ``type``, ``kind`` (``"binary"``: an LCE binary kernel; ``"float"``: float
      TFLite ops; ``"rejected"``: ``bnas_tf.convert.to_tflite`` refuses it;
      ``"folded"``: no op of its own, e.g. a BatchNorm folded into its conv),
      ``reason``, ``ops`` (the TFLite ops it becomes), ``macs``,
      ``binary_macs`` (accelerated, with LCE's channel padding),
      ``unpadded_binary_macs``, ``float_macs``, ``fallback_macs``,
      ``weight_bytes`` and ``constants`` (constant tensors it adds);
    - ``binary_macs``: accelerated binary MACs, input channels padded to 32
      and output channels to 8 (:func:`bnas_tf.costs.lce_conv_macs`);
      ``unpadded_binary_macs``: the same layers' plain MACs;
    - ``float_macs``: MACs of every conv and dense layer LCE runs in float,
      and ``fallback_macs``: the part of them from layers with a 1-bit kernel
      or input in Keras (W1/A32 convs, depthwise, DoReFa, shared dilated);
    - ``ops``: predicted counts of ``LceBconv2d``, ``CONV_2D``,
      ``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED`` (matched exactly on
      bnas-tf's networks, tests/lce); ``all_ops``: every predicted op (an
      estimate) and their total ``num_ops``;
    - ``weight_bytes``, ``num_constants`` and ``size_bytes``: the constants'
      bytes (equal constants stored once, as the converter does), their
      number, and the expected .tflite size (:func:`flatbuffer_size`);
    - ``rejected``: names of the layers ``to_tflite`` refuses (the model does
      not convert unless it is empty), ``binary_params``, ``float_params``.

    Example:
        ```python
        report = lce_profile(bnas_tf.build_network(genotype, binarization="W1/A1"))
        print(report["ops"], report["binary_macs"], report["size_bytes"])
        ```

    Raises:
        TypeError: ``model`` is not a Keras model.
        ValueError: the model is not built, or has a layer whose MACs cannot
            be counted (see :func:`bnas_tf.costs.profile`).
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"lce_profile expects a tf.keras.Model, got {type(model).__name__}")
    cost = costs.profile(model)  # validates the model and counts MACs
    cost_of = {row["name"]: row for row in cost["layers"]}
    graph = _Graph(model)
    entries = _classify(graph)
    stored = set()
    rows = [_row(name, layer, entries[name], cost_of.get(name, {}), stored)
            for name, layer in graph.layers.items() if not isinstance(layer, tf.keras.layers.InputLayer)]
    all_ops = collections.Counter(op for row in rows for op in row["ops"])
    totals = {key: sum(row[key] for row in rows)
              for key in ("binary_macs", "unpadded_binary_macs", "float_macs", "fallback_macs", "weight_bytes",
                          "constants")}
    num_ops = sum(all_ops.values())
    return {
        "layers": rows,
        "binary_macs": totals["binary_macs"],
        "unpadded_binary_macs": totals["unpadded_binary_macs"],
        "float_macs": totals["float_macs"],
        "fallback_macs": totals["fallback_macs"],
        "ops": {op: all_ops.get(op, 0) for op in KERNEL_OPS},
        "all_ops": dict(all_ops.most_common()),
        "num_ops": num_ops,
        "weight_bytes": totals["weight_bytes"],
        "num_constants": totals["constants"],
        "size_bytes": flatbuffer_size(totals["weight_bytes"], num_ops, totals["constants"]),
        "rejected": [row["name"] for row in rows if row["kind"] == REJECTED],
        "binary_params": cost["binary_params"],
        "float_params": cost["float_params"],
    }


# Imported last: bnas_tf.costs re-exports lce_profile from its last line, so whichever of the two modules is
# imported first, lce_profile must exist before costs finishes.
from bnas_tf import costs  # noqa: E402
