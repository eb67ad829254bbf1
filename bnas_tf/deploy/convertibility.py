"""Refuse, before converting, what Larq Compute Engine cannot turn into a faithful .tflite.

LCE's converter traces whatever a model computes, so a model it cannot
represent often fails deep inside MLIR with a message about ops, not layers,
or converts silently into something other than what the user expects (a
dense layer that stays float, a model whose Python code we cannot vouch for).
:func:`check_convertible` walks the Keras layers and names the first layer
that would do that, with the reason and the fix (STACK_NOTES "Larq Compute
Engine").
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnas_tf.deploy.costs import LCE_INPUT_CHANNEL_MULTIPLE, LCE_INPUT_QUANTIZERS, is_binary_quantizer
from bnas_tf.deploy.layer_walk import is_graph_network, leaf_layers

# Layer classes from these packages are the ones LCE (and our tests) know.
# bnas_tf's own layers (ops.Zero) are covered by the conversion tests.
KNOWN_LAYER_PACKAGES = ("keras.", "tensorflow.", "tf_keras.", "larq.", "bnas_tf.")
# Keras revives a SavedModel layer whose Python class it cannot (or, in safe
# mode, may not) rebuild as a graph-only stand-in from this module.
_REVIVED_MODULE = "keras.src.saving.legacy.saved_model"


def _known_class(layer) -> bool:
    module = type(layer).__module__
    return module.startswith(KNOWN_LAYER_PACKAGES) and not module.startswith(_REVIVED_MODULE)


def has_binary_input(layer) -> bool:
    """True when the layer binarizes its input (a W1/A1 layer)."""
    return is_binary_quantizer(getattr(layer, "input_quantizer", None))


def becomes_lce_binary_conv(layer) -> bool:
    """True for a QuantConv2D LCE turns into LceBconv2d: sign-like input quantizer and a 1-bit kernel."""
    if not isinstance(layer, lq.layers.QuantConv2D):
        return False
    kernel_quantizer = getattr(layer, "kernel_quantizer", None)
    return (
        isinstance(getattr(layer, "input_quantizer", None), LCE_INPUT_QUANTIZERS)
        and is_binary_quantizer(kernel_quantizer)
        and not isinstance(kernel_quantizer, lq.quantizers.NoOp)
    )


def _input_shapes(layer) -> list:
    try:
        return [tuple(layer.input_shape)]
    except (AttributeError, RuntimeError):  # called more than once
        return [tuple(layer.get_input_shape_at(i)) for i in range(len(layer.inbound_nodes))]


def zero_padding_problem(layer) -> str | None:
    """LCE 0.16's LceBconv2d is wrong with zero "same" padding when the kernel overhangs both borders.

    Measured on our stack (tests/convert/test_checks.py): whenever the
    effective kernel extent ``dilation * (k - 1) + 1`` exceeds the input
    height or width, 20-99% of the outputs differ from Keras (by up to the
    kernel's fan-in); LCE's reference kernel is right, its optimised kernels
    (the default, also the indirect BGEMM) are not. One-padding
    (``pad_values=1.0``) is exact, and is LCE's fast path anyway.
    """
    if not becomes_lce_binary_conv(layer) or layer.padding != "same" or float(layer.pad_values) != 0.0:
        return None
    extent = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
    for shape in _input_shapes(layer):
        height, width = shape[1:3]
        if (height is not None and extent[0] > height) or (width is not None and extent[1] > width):
            return (
                f"its {extent[0]}x{extent[1]} effective kernel (kernel {tuple(layer.kernel_size)}, dilation "
                f"{tuple(layer.dilation_rate)}) is larger than its {height}x{width} input, and LCE 0.16's binary "
                "convolution computes zero 'same' padding wrongly there (up to 99% of outputs differ from Keras); "
                "train with pad_values=1.0 (one-padding, exact in LCE), a larger input, or a smaller kernel at "
                "this resolution"
            )
    return None


def layer_problem(layer) -> str | None:
    """Why LCE cannot convert ``layer`` faithfully, or None when it can."""
    kind = type(layer).__name__
    if isinstance(layer, tf.keras.layers.Lambda) or kind == "Lambda":
        return (
            "it is a Lambda layer: its Python code cannot be checked, and Keras safe mode refuses to load it "
            "from a saved model; replace it with Keras or Larq layers"
        )
    if type(layer).__module__.startswith(_REVIVED_MODULE):
        return (
            f"it was revived from a SavedModel as a graph-only {kind} stand-in, without its Python class; "
            "save the model as .keras with its custom objects registered"
        )
    if not _known_class(layer):
        module = type(layer).__module__
        return (
            f"it is a custom layer ({module}.{kind}) that bnas_tf.convert does not know LCE can convert; "
            "build the network from Keras, Larq and bnas_tf layers"
        )
    policy = getattr(layer, "dtype_policy", None)
    if policy is not None and policy.name != "float32":
        return (
            f"it uses the mixed-precision dtype policy {policy.name!r}, which the TFLite/LCE converter rejects; "
            "build the model under tf.keras.mixed_precision.set_global_policy('float32')"
        )
    if isinstance(layer, lq.layers.QuantDense) and has_binary_input(layer):
        return (
            "it is a QuantDense with a binary input quantizer: LCE never turns dense layers into binary kernels "
            "(larq/compute-engine#410, #806), so it would run as a float sign plus a float FULLY_CONNECTED; "
            "use a float Dense classifier (input_quantizer=None)"
        )
    if isinstance(layer, lq.layers.QuantConv2D) and has_binary_input(layer):
        groups = int(getattr(layer, "groups", 1) or 1)
        if groups > 1:
            per_group = int(layer.kernel.shape[-2])
            if per_group % LCE_INPUT_CHANNEL_MULTIPLE:
                return (
                    f"it is a grouped binary convolution with {per_group} input channels per group; LCE needs a "
                    f"multiple of {LCE_INPUT_CHANNEL_MULTIPLE} per group"
                )
    return zero_padding_problem(layer)


def check_convertible(model) -> None:
    """Raise if LCE cannot convert ``model`` to a faithful flatbuffer.

    Checks, in order: ``model`` is a built functional or Sequential Keras
    model with fixed-size inputs, and no layer is a Lambda layer, a layer
    revived from a SavedModel without its class, an unknown custom layer, a
    mixed-precision layer, a QuantDense with binary input, a grouped
    binary conv whose group size is not a multiple of 32, or a binary conv
    with zero "same" padding whose (dilated) kernel is larger than its input
    (LCE 0.16 computes that wrongly: :func:`zero_padding_problem`).

    Raises:
        TypeError: ``model`` is not a ``tf.keras.Model``.
        ValueError: naming the first offending layer, the reason and the fix.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(
            f"expected a tf.keras.Model, got {type(model).__name__}; load a saved model with "
            "bnas_tf.convert.load_model(path) or build one with bnas_tf.build_network"
        )
    if not is_graph_network(model):
        if isinstance(model, tf.keras.Sequential):
            raise ValueError(
                f"Sequential model {model.name!r} is not built; give its first layer an input_shape "
                "or call model.build((None, H, W, C))"
            )
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) is a subclassed model whose call() cannot "
            "be checked; build it functionally (bnas_tf.build_network does)"
        )
    policy = getattr(model, "dtype_policy", None)
    if policy is not None and policy.name != "float32":
        raise ValueError(
            f"model {model.name!r} uses the mixed-precision dtype policy {policy.name!r}, which the "
            "TFLite/LCE converter rejects; rebuild it under the 'float32' policy"
        )
    for tensor in model.inputs:
        shape = tuple(tensor.shape)
        if any(d is None for d in shape[1:]):
            raise ValueError(
                f"model input {tensor.name!r} has shape {shape}: LCE needs every dimension but the batch "
                "fixed; build the model with a fixed input_shape=(height, width, channels)"
            )
    for name, layer in leaf_layers(model):
        problem = layer_problem(layer)
        if problem:
            raise ValueError(
                f"cannot convert layer {name!r} ({type(layer).__name__}) with Larq Compute Engine: {problem}"
            )


def with_one_padding(model: tf.keras.Model) -> tf.keras.Model:
    """An *untrained* clone of ``model`` whose binary convs hit by :func:`zero_padding_problem` pad with ones.

    For networks built before bnas_tf's binary convs pad with ones: apply it
    before training. Only those layers change, because a one-padded
    *dilated* binary conv converts to a float CONV_2D in LCE 0.16 (exact,
    not binary). Returns ``model`` itself when no layer needs it.
    """
    affected = {id(layer) for _, layer in leaf_layers(model) if zero_padding_problem(layer)}
    if not affected:
        return model

    def clone(layer):
        config = layer.get_config()
        if id(layer) in affected:
            config["pad_values"] = 1.0
        return layer.__class__.from_config(config)

    return tf.keras.models.clone_model(model, clone_function=clone)
