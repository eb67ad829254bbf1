"""Cost model of a binary Keras network (SPEC "Costs to report", SPEC P3).

The papers report parameters split into 1-bit and 32-bit, memory in bits,
binary and float multiply-accumulates (MACs), FLOPs with the Bi-Real
convention of SPEC P3 Eq. 4,

    FLOPs = float MACs + binary MACs / 64,

and the memory saving and speed-up against the same architecture in full
precision. The formulas are small pure functions on integers; `profile`
walks a built Keras (Larq) model and applies them layer by layer.

Counting conventions (where the papers are vague, these are our choices):

- A quantizer is 1-bit when `getattr(quantizer, "precision", None) == 1`,
  which every Larq sign-like quantizer sets, `DoReFa(k_bit=1)` too, and
  user quantizers can set.
- A weight is a 1-bit parameter when its variable carries precision 1 (Larq
  wraps quantized kernels in a `QuantizedVariable` with the quantizer's
  precision); every other weight (biases, BatchNorm's four vectors, PReLU
  slopes, scales, kernels of other bit widths) counts as 32-bit.
- MACs are binary only when both operands are 1-bit: a binary input
  quantizer *and* a binary kernel quantizer. W1/A32 layers have binary
  parameters but float MACs.
- In a `SeparableConv2D` only the depthwise step sees the quantized input;
  the pointwise step multiplies the depthwise sums (multi-bit integers) and
  so counts as float MACs. `larq.models.summary` counts both steps binary.
- `lce_binary_macs` counts what Larq Compute Engine executes as binary
  kernels (STACK_NOTES "Larq Compute Engine"): only `Conv2D` layers with a
  sign-like input quantizer (`LCE_INPUT_QUANTIZERS`) and a 1-bit kernel, with
  input channels padded to a multiple of 32 and output channels to a
  multiple of 8. Depthwise and dense layers stay float in LCE, and DoReFa
  {0, 1} activations are not turned into binary convolutions.
- Each appearance of a layer in `model.layers`, looking inside nested
  functional and Sequential models (`bnas_tf.deploy.layer_walk.leaf_layers`,
  the walk the LCE checks use too), is one call; a layer called twice inside
  one model is counted once. Any other layer holding sublayers (a subclassed
  model, a custom layer) is one leaf: its weights count, and hidden
  convolution or dense sublayers are refused by name. Shared weights are
  counted once.
"""

from __future__ import annotations

import larq as lq
import numpy as np
import tensorflow as tf

from bnas_tf.deploy.layer_walk import leaf_layers

__all__ = [
    "BINARY_OPS_PER_FLOP",
    "LCE_INPUT_CHANNEL_MULTIPLE",
    "LCE_INPUT_QUANTIZERS",
    "LCE_OUTPUT_CHANNEL_MULTIPLE",
    "conv_macs",
    "dense_macs",
    "depthwise_macs",
    "flops",
    "full_precision_flops",
    "full_precision_memory_bits",
    "is_binary_quantizer",
    "lce_conv_macs",
    "memory_bits",
    "memory_saving",
    "profile",
    "round_up",
    "speedup",
]

# SPEC P3 Eq. 4 (Bi-Real Net convention): 64 binary operations cost one FLOP.
BINARY_OPS_PER_FLOP = 64
BINARY_BITS = 1
FLOAT_BITS = 32
# LCE bitpacks input channels in words of 32 and computes 8 output channels
# at a time (STACK_NOTES "Other LCE facts").
LCE_INPUT_CHANNEL_MULTIPLE = 32
LCE_OUTPUT_CHANNEL_MULTIPLE = 8
# Input quantizers whose forward pass is sign(x), which LCE's converter turns
# into LceQuantize + LceBconv2d. Subclasses count too.
LCE_INPUT_QUANTIZERS = (
    lq.quantizers.SteSign,
    lq.quantizers.ApproxSign,
    lq.quantizers.SwishSign,
)


# --------------------------------------------------------------------------
# Pure formulas.


def conv_macs(
    output_height: int,
    output_width: int,
    kernel_height: int,
    kernel_width: int,
    input_channels: int,
    output_channels: int,
    groups: int = 1,
) -> int:
    """MACs of a 2D convolution.

    MACs = H_out * W_out * K_h * K_w * (C_in / groups) * C_out.

    >>> conv_macs(8, 8, 3, 3, 16, 32)
    294912
    """
    return output_height * output_width * kernel_height * kernel_width * (input_channels // groups) * output_channels


def depthwise_macs(
    output_height: int,
    output_width: int,
    kernel_height: int,
    kernel_width: int,
    input_channels: int,
    depth_multiplier: int = 1,
) -> int:
    """MACs of a depthwise convolution.

    MACs = H_out * W_out * K_h * K_w * C_in * depth_multiplier.

    >>> depthwise_macs(8, 8, 3, 3, 16)
    9216
    """
    return output_height * output_width * kernel_height * kernel_width * input_channels * depth_multiplier


def dense_macs(input_units: int, output_units: int, positions: int = 1) -> int:
    """MACs of a dense layer: in * out, times the number of positions it is
    applied at (1 for a (batch, features) input).

    >>> dense_macs(64, 10)
    640
    """
    return positions * input_units * output_units


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= `value`.

    >>> round_up(12, 8), round_up(32, 32), round_up(33, 32)
    (16, 32, 64)
    """
    return -(-value // multiple) * multiple


def lce_conv_macs(
    output_height: int,
    output_width: int,
    kernel_height: int,
    kernel_width: int,
    input_channels: int,
    output_channels: int,
    groups: int = 1,
) -> int:
    """Binary MACs of a convolution as LCE's ARM kernels execute it.

    Input channels per group are padded up to a multiple of 32 and output
    channels up to a multiple of 8 (LCE's converter rejects grouped binary
    convolutions whose group size is not already a multiple of 32):

    MACs = H_out * W_out * K_h * K_w * groups * ceil32(C_in / groups)
           * ceil8(C_out).

    >>> lce_conv_macs(8, 8, 3, 3, 16, 12)  # 8*8*9*32*16
    294912
    """
    padded_group_channels = round_up(input_channels // groups, LCE_INPUT_CHANNEL_MULTIPLE)
    return conv_macs(
        output_height,
        output_width,
        kernel_height,
        kernel_width,
        groups * padded_group_channels,
        round_up(output_channels, LCE_OUTPUT_CHANNEL_MULTIPLE),
        groups,
    )


def memory_bits(binary_params: int, float_params: int) -> int:
    """Weight memory in bits: 1 bit per binary and 32 per float parameter."""
    return binary_params * BINARY_BITS + float_params * FLOAT_BITS


def full_precision_memory_bits(binary_params: int, float_params: int) -> int:
    """Memory of the same architecture with every weight in 32 bits."""
    return (binary_params + float_params) * FLOAT_BITS


def flops(binary_macs: int, float_macs: int) -> float:
    """FLOPs = float MACs + binary MACs / 64 (SPEC P3 Eq. 4, Bi-Real).

    >>> flops(binary_macs=128, float_macs=10)
    12.0
    """
    return float_macs + binary_macs / BINARY_OPS_PER_FLOP


def full_precision_flops(binary_macs: int, float_macs: int) -> int:
    """FLOPs of the same architecture in full precision: every MAC is float."""
    return binary_macs + float_macs


def memory_saving(binary_params: int, float_params: int) -> float:
    """Full-precision memory / memory (1.0 for a model without weights).

    >>> memory_saving(binary_params=64, float_params=0)
    32.0
    """
    return _ratio(full_precision_memory_bits(binary_params, float_params), memory_bits(binary_params, float_params))


def speedup(binary_macs: int, float_macs: int) -> float:
    """Full-precision FLOPs / FLOPs (1.0 for a model without MACs).

    >>> speedup(binary_macs=64, float_macs=0)
    64.0
    """
    return _ratio(full_precision_flops(binary_macs, float_macs), flops(binary_macs, float_macs))


def _ratio(full_precision, binarized) -> float:
    """How many times the full-precision figure is the binarized one (1.0 when both are 0)."""
    return 1.0 if binarized == 0 else full_precision / binarized


def is_binary_quantizer(quantizer) -> bool:
    """True for 1-bit quantizers: those exposing `precision == 1`."""
    return getattr(quantizer, "precision", None) == 1


def _is_lce_binary_input(quantizer) -> bool:
    return isinstance(quantizer, LCE_INPUT_QUANTIZERS)


def _is_lce_binary_kernel(quantizer) -> bool:
    # NoOp(precision=1) only tags a variable; the kernel stays real-valued.
    return is_binary_quantizer(quantizer) and not isinstance(quantizer, lq.quantizers.NoOp)


# --------------------------------------------------------------------------
# Model walker.

_MAC_LAYERS = (
    tf.keras.layers.Conv2D,
    tf.keras.layers.DepthwiseConv2D,
    tf.keras.layers.SeparableConv2D,
    tf.keras.layers.Dense,
)
# Kernel layers whose MACs these formulas get wrong; Conv2DTranspose even
# subclasses Conv2D.
_UNSUPPORTED_LAYERS = (
    tf.keras.layers.Conv1D,
    tf.keras.layers.Conv3D,
    tf.keras.layers.Conv1DTranspose,
    tf.keras.layers.Conv2DTranspose,
    tf.keras.layers.Conv3DTranspose,
    tf.keras.layers.SeparableConv1D,
)


def _check_supported(name, layer):
    supported = "Conv2D, DepthwiseConv2D, SeparableConv2D, Dense (and Larq's Quant*)"
    if isinstance(layer, _UNSUPPORTED_LAYERS):
        raise ValueError(
            f"costs.profile cannot count MACs of layer '{name}' ({type(layer).__name__}); supported: {supported}."
        )
    if not isinstance(layer, _MAC_LAYERS) and any(isinstance(sub, _MAC_LAYERS) for sub in layer.submodules):
        raise ValueError(
            f"Layer '{name}' ({type(layer).__name__}) calls convolution or dense "
            "layers inside `call`, where their shapes are unknown to Keras. "
            "Build that part as a functional (or Sequential) Keras Model, whose "
            "layers are walked, or build the network from Keras layers directly."
        )


def _spatial_output(name, layer):
    """(positions per example, height, width) of a MAC layer's output."""
    try:
        shape = layer.output_shape
    except (AttributeError, RuntimeError) as error:
        raise ValueError(
            f"Layer '{name}' has no single known output shape ({error}). Build "
            "the model functionally (or Sequential with an input shape) and call "
            "each layer with one input shape."
        ) from None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    shape = tuple(shape)
    if isinstance(layer, tf.keras.layers.Dense):
        dims = shape[1:-1]
        height = width = 1
    else:
        dims = shape[1:3] if layer.data_format == "channels_last" else shape[2:4]
        height, width = dims
    if any(d is None for d in dims):
        raise ValueError(
            f"Layer '{name}' has output shape {shape} with unknown spatial size; "
            "profile a model built for a fixed input size."
        )
    return int(np.prod(dims, dtype=np.int64)), height, width


def _layer_macs(name, layer):
    """(binary MACs, float MACs, LCE-binary?, LCE MACs) of one layer call."""
    if not isinstance(layer, _MAC_LAYERS):
        return 0, 0, False, 0
    positions, height, width = _spatial_output(name, layer)
    binary_input = is_binary_quantizer(getattr(layer, "input_quantizer", None))

    if isinstance(layer, tf.keras.layers.Dense):
        in_units, out_units = layer.kernel.shape
        macs = dense_macs(int(in_units), int(out_units), positions)
        binary = binary_input and is_binary_quantizer(getattr(layer, "kernel_quantizer", None))
        return (macs, 0, False, 0) if binary else (0, macs, False, 0)

    depthwise_types = (tf.keras.layers.DepthwiseConv2D, tf.keras.layers.SeparableConv2D)
    if isinstance(layer, depthwise_types):
        k_h, k_w, c_in, multiplier = (int(d) for d in layer.depthwise_kernel.shape)
        depthwise = depthwise_macs(height, width, k_h, k_w, c_in, multiplier)
        binary = binary_input and is_binary_quantizer(getattr(layer, "depthwise_quantizer", None))
        binary_macs, float_macs = (depthwise, 0) if binary else (0, depthwise)
        if isinstance(layer, tf.keras.layers.SeparableConv2D):
            # The pointwise step multiplies multi-bit depthwise sums: float.
            _, _, c_mid, c_out = (int(d) for d in layer.pointwise_kernel.shape)
            float_macs += conv_macs(height, width, 1, 1, c_mid, c_out)
        return binary_macs, float_macs, False, 0

    k_h, k_w, c_group, c_out = (int(d) for d in layer.kernel.shape)
    groups = getattr(layer, "groups", 1)
    macs = conv_macs(height, width, k_h, k_w, c_group * groups, c_out, groups)
    kernel_quantizer = getattr(layer, "kernel_quantizer", None)
    if not (binary_input and is_binary_quantizer(kernel_quantizer)):
        return 0, macs, False, 0
    lce_binary = _is_lce_binary_input(layer.input_quantizer)
    lce_binary = lce_binary and _is_lce_binary_kernel(kernel_quantizer)
    lce_macs = lce_conv_macs(height, width, k_h, k_w, c_group * groups, c_out, groups) if lce_binary else 0
    return macs, 0, lce_binary, lce_macs


def _split_params(weights, seen):
    """(binary, float) parameter counts of weights not in `seen` (by id)."""
    binary = floating = 0
    for weight in weights:
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        count = int(np.prod(weight.shape.as_list(), dtype=np.int64))
        if getattr(weight, "precision", None) == 1:
            binary += count
        else:
            floating += count
    return binary, floating


def profile(model: tf.keras.Model) -> dict:
    """Costs of a built Keras (Larq) model (SPEC "Costs to report", P3 Eq. 4).

    Args:
        model: a built Keras (Larq) model.

    Returns:
        A dict with `binary_params`, `float_params` (trainable and
        non-trainable), `memory_bits`, `binary_macs`, `float_macs`, `flops`
        (= float_macs + binary_macs / 64), `memory_saving` and `speedup` versus
        the same architecture in full precision, `lce_binary_macs` (binary MACs
        with LCE's channel padding, only for layers LCE runs binary), and
        `layers`: one dict per layer with weights or MACs, holding `name`
        (nested path), `type`, `binary` (its MACs are binary), `binary_params`,
        `float_params`, `params`, `binary_macs`, `float_macs`, `macs`,
        `lce_binary` (LCE runs it as a binary kernel) and `lce_macs` (the MACs
        LCE executes: padded when `lce_binary`, else the plain count).

    Example:
        ```python
        costs = profile(model)
        print(costs["flops"], costs["memory_saving"])
        ```

    Raises:
        TypeError: ``model`` is not a ``tf.keras.Model``.
        ValueError: if the model is not built, or a layer's output shape is
            unknown, or a layer type's MACs cannot be counted.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"profile expects a tf.keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built; call it on an input or build it with an input shape first."
        )

    rows = []
    seen = set()
    for name, layer in leaf_layers(model):
        _check_supported(name, layer)
        binary_params, float_params = _split_params(layer.weights, seen)
        binary_macs, float_macs, lce_binary, lce_macs = _layer_macs(name, layer)
        macs = binary_macs + float_macs
        if binary_params + float_params + macs == 0:
            continue
        rows.append(
            {
                "name": name,
                "type": type(layer).__name__,
                "binary": binary_macs > 0,
                "binary_params": binary_params,
                "float_params": float_params,
                "params": binary_params + float_params,
                "binary_macs": binary_macs,
                "float_macs": float_macs,
                "macs": macs,
                "lce_binary": lce_binary,
                "lce_macs": lce_macs if lce_binary else macs,
            }
        )
    # Weights owned by containers themselves (not by a leaf layer).
    extra_binary, extra_float = _split_params(model.weights, seen)

    binary_params = sum(r["binary_params"] for r in rows) + extra_binary
    float_params = sum(r["float_params"] for r in rows) + extra_float
    binary_macs = sum(r["binary_macs"] for r in rows)
    float_macs = sum(r["float_macs"] for r in rows)
    return {
        "binary_params": binary_params,
        "float_params": float_params,
        "memory_bits": memory_bits(binary_params, float_params),
        "binary_macs": binary_macs,
        "float_macs": float_macs,
        "flops": flops(binary_macs, float_macs),
        "memory_saving": memory_saving(binary_params, float_params),
        "speedup": speedup(binary_macs, float_macs),
        "lce_binary_macs": sum(r["lce_macs"] for r in rows if r["lce_binary"]),
        "layers": rows,
    }
