"""Named cell operations and the op sets of SPEC "Operation sets".

An :class:`Operation` is a callable that owns its Keras layers. Applied to a
Keras tensor it adds those layers to a functional model one by one, so the
final network stays a flat graph of Larq/Keras layers (what ``costs``,
``larq.models.summary`` and the LCE converter read); applied to an eager or
graph tensor it computes the op, which is how the supernet shares one set of
weights between many paths.

Block order (SPEC P1 §3.4, P2 §4): with 32-bit activations a binary conv is
ReLU -> QuantConv (binary kernel) -> BatchNorm, as in DARTS; with 1-bit
activations it is QuantConv (sign input, binary kernel) -> BatchNorm -> PReLU,
since ReLU before a sign carries no information. Every binary conv is followed
by BatchNorm (also inside separable convs), which keeps sign inputs away from
exact zeros and lets LCE fold the scale.

Names: DARTS' ``dil_conv_*`` is a dilated depthwise-separable conv; P2's
``bin_dil_conv_*`` (a plain dilated binary conv) is ``dilated_conv_*`` here.
"""

from __future__ import annotations

import contextlib
import threading

import larq as lq
import tensorflow as tf

from bnas_tf.space.quantizers import Binarization


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class Zero(tf.keras.layers.Layer):
    """The ``zero`` op (P2's Zeroise): outputs zeros, halving H and W at stride 2."""

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        return tf.zeros_like(inputs[:, :: self.stride, :: self.stride, :])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


class Operation:
    """An op on one edge: a named callable over tensors that owns its layers."""

    def __init__(self, op_name: str, layers: list):
        self.op_name = op_name
        self.layers = list(layers)

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    def __call__(self, x, training=None):
        for layer in self.layers:
            x = _call(layer, x, training)
        return x


def _call(layer, x, training):
    if training is None:
        return layer(x)
    return layer(x, training=training)


class FactorizedReduce(Operation):
    """Halve H and W with two stride-2 binary 1x1 convs on offset grids (DARTS)."""

    def __init__(self, op_name, channels, binarization, name):
        if channels % 2:
            raise ValueError(f"factorised reduce needs an even channel count (got {channels})")
        self.pre = _pre_activation(binarization, f"{name}_act")
        self.shift = [
            tf.keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad"),
            tf.keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_shift"),
        ]
        self.conv_a = _quant_conv(channels // 2, 1, 2, 1, binarization, f"{name}_conv_a")
        self.conv_b = _quant_conv(channels // 2, 1, 2, 1, binarization, f"{name}_conv_b")
        self.concat = tf.keras.layers.Concatenate(name=f"{name}_concat")
        self.post = [batch_norm(name=f"{name}_bn")] + _post_activation(binarization, name)
        layers = self.pre + self.shift + [self.conv_a, self.conv_b, self.concat] + self.post
        super().__init__(op_name, layers)

    def __call__(self, x, training=None):
        for layer in self.pre:
            x = _call(layer, x, training)
        shifted = x
        for layer in self.shift:
            shifted = layer(shifted)
        x = self.concat([_call(self.conv_a, x, training), _call(self.conv_b, shifted, training)])
        for layer in self.post:
            x = _call(layer, x, training)
        return x


_batch_norm_settings = threading.local()


@contextlib.contextmanager
def synchronized_batch_norm():
    """BatchNorm layers built inside (in this thread) compute their batch statistics over every replica of a
    ``tf.distribute`` strategy (Keras' ``synchronized=True``, ``SyncBatchNormalization``), as one device would
    over the global batch; without it each replica normalises with its own rows' statistics."""
    previous = getattr(_batch_norm_settings, "synchronized", False)
    _batch_norm_settings.synchronized = True
    try:
        yield
    finally:
        _batch_norm_settings.synchronized = previous


def batch_norm(name: str):
    """BatchNorm with PyTorch's default momentum (0.1 there, 0.9 here), as the papers' code uses:
    Keras' 0.99 leaves the moving statistics near their defaults after a one-epoch search trial. Synchronized
    over a strategy's replicas inside :func:`synchronized_batch_norm`."""
    if getattr(_batch_norm_settings, "synchronized", False):
        return tf.keras.layers.BatchNormalization(momentum=0.9, name=name, synchronized=True)
    return tf.keras.layers.BatchNormalization(momentum=0.9, name=name)


def _pre_activation(binarization: Binarization, name: str) -> list:
    return [] if binarization.binary_activations else [tf.keras.layers.ReLU(name=name)]


def _post_activation(binarization: Binarization, name: str) -> list:
    if binarization.binary_activations:
        return [tf.keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")]
    return []


def _strided(make, stride, dilation, name) -> list:
    """Keras has no strided dilated conv: run it at stride 1, then keep every stride-th pixel."""
    if stride > 1 and dilation > 1:
        return [make(1), tf.keras.layers.MaxPool2D(1, strides=stride, name=f"{name}_subsample")]
    return [make(stride)]


def _quant_conv(channels, kernel_size, stride, dilation, binarization, name):
    return lq.layers.QuantConv2D(
        channels,
        kernel_size,
        strides=stride,
        dilation_rate=dilation,
        padding="same",
        # LCE 0.16's optimised binary conv gets zero "same" padding wrong when the (dilated) kernel is larger
        # than the input (measured: 20-99% wrong outputs); padding sign inputs with +1 is its exact fast path
        pad_values=1.0 if binarization.binary_activations else 0.0,
        use_bias=False,
        input_quantizer=binarization.input_quantizer(),
        kernel_quantizer=binarization.kernel_quantizer(),
        kernel_constraint=binarization.kernel_constraint(),
        name=name,
    )


def _quant_depthwise(kernel_size, stride, dilation, binarization, name):
    return lq.layers.QuantDepthwiseConv2D(
        kernel_size,
        strides=stride,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        input_quantizer=binarization.input_quantizer(),
        depthwise_quantizer=binarization.kernel_quantizer(),
        depthwise_constraint=binarization.kernel_constraint(),
        name=name,
    )


def conv_block(channels, kernel_size, stride, binarization, name, dilation=1) -> list:
    """The binary conv unit of every op, in the order ``binarization.block`` names.

    ``"sign_conv_bn"``: [ReLU] -> binary conv -> BN [-> PReLU]. ``"bn_sign_conv"`` (P2's code):
    BN [-> ReLU] -> binary conv [-> PReLU]. The sign of a W1/A1 net is the conv's input quantizer;
    ReLU is for 32-bit activations, PReLU for 1-bit ones (SPEC P1 §3.4).
    """
    conv = _strided(
        lambda s: _quant_conv(channels, kernel_size, s, dilation, binarization, f"{name}_conv"),
        stride,
        dilation,
        name,
    )
    norm = [batch_norm(name=f"{name}_bn")]
    if binarization.block == "bn_sign_conv":
        return norm + _pre_activation(binarization, f"{name}_act") + conv + _post_activation(binarization, name)
    return _pre_activation(binarization, f"{name}_act") + conv + norm + _post_activation(binarization, name)


def _separable_unit(channels, kernel_size, stride, dilation, binarization, name) -> list:
    return (
        _pre_activation(binarization, f"{name}_act")
        + _strided(
            lambda s: _quant_depthwise(kernel_size, s, dilation, binarization, f"{name}_depthwise"),
            stride,
            dilation,
            name,
        )
        + [
            batch_norm(name=f"{name}_bn_dw"),
            _quant_conv(channels, 1, 1, 1, binarization, f"{name}_pointwise"),
            batch_norm(name=f"{name}_bn"),
        ]
        + _post_activation(binarization, name)
    )


def _zero(channels, stride, binarization, name):
    return Operation("zero", [Zero(stride, name=f"{name}_zero")])


def _identity(channels, stride, binarization, name):
    if stride == 1:
        return Operation("identity", [])
    return FactorizedReduce("identity", channels, binarization, f"{name}_reduce")


def _pool(kind):
    layer_cls = {"max": tf.keras.layers.MaxPool2D, "avg": tf.keras.layers.AveragePooling2D}[kind]

    def build(channels, stride, binarization, name):
        return Operation(f"{kind}_pool_3x3", [layer_cls(3, strides=stride, padding="same", name=f"{name}_{kind}_pool")])

    return build


def _conv(kernel_size, dilation=1):
    def build(channels, stride, binarization, name):
        op_name = f"dilated_conv_{kernel_size}x{kernel_size}" if dilation > 1 else f"conv_{kernel_size}x{kernel_size}"
        return Operation(op_name, conv_block(channels, kernel_size, stride, binarization, name, dilation))

    return build


def _sep_conv(kernel_size):
    def build(channels, stride, binarization, name):
        layers = _separable_unit(channels, kernel_size, stride, 1, binarization, f"{name}_unit1")
        layers += _separable_unit(channels, kernel_size, 1, 1, binarization, f"{name}_unit2")
        return Operation(f"sep_conv_{kernel_size}x{kernel_size}", layers)

    return build


def _dil_conv(kernel_size):
    def build(channels, stride, binarization, name):
        layers = _separable_unit(channels, kernel_size, stride, 2, binarization, name)
        return Operation(f"dil_conv_{kernel_size}x{kernel_size}", layers)

    return build


OPS = {
    "zero": _zero,
    "identity": _identity,
    "max_pool_3x3": _pool("max"),
    "avg_pool_3x3": _pool("avg"),
    "conv_3x3": _conv(3),
    "conv_5x5": _conv(5),
    "dilated_conv_3x3": _conv(3, dilation=2),
    "dilated_conv_5x5": _conv(5, dilation=2),
    "sep_conv_3x3": _sep_conv(3),
    "sep_conv_5x5": _sep_conv(5),
    "dil_conv_3x3": _dil_conv(3),
    "dil_conv_5x5": _dil_conv(5),
}

# SPEC "Operation sets": the binarized DARTS set of P1/P4 (K = 8) ...
DARTS_BINARY_OPS = (
    "zero",
    "identity",
    "max_pool_3x3",
    "avg_pool_3x3",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "sep_conv_3x3",
    "sep_conv_5x5",
)
# ... and P2's binary-friendly set (Table 3), Zeroise included (7 ops).
BINARY_OPS = (
    "zero",
    "max_pool_3x3",
    "avg_pool_3x3",
    "conv_3x3",
    "conv_5x5",
    "dilated_conv_3x3",
    "dilated_conv_5x5",
)
# Ops LCE runs as binary kernels or that are cheap float ops (the ``lce_friendly`` option): no depthwise-separable
# convs (depthwise stays float in LCE) and no dilated convs (Keras' stride-2 dilated conv needs a subsample
# between conv and BatchNorm, and two dilated convs reading one tensor share a SPACE_TO_BATCH_ND that LCE
# leaves float).
LCE_FRIENDLY_OPS = ("zero", "identity", "max_pool_3x3", "avg_pool_3x3", "conv_3x3", "conv_5x5")
OP_SETS = {"DARTS_BINARY_OPS": DARTS_BINARY_OPS, "BINARY_OPS": BINARY_OPS, "LCE_FRIENDLY_OPS": LCE_FRIENDLY_OPS}
LCE_CHANNEL_MULTIPLE = 32


def lce_channels(channels: int) -> int:
    """Round a binary-input channel count up to LCE's 32-channel packing."""
    return -(-int(channels) // LCE_CHANNEL_MULTIPLE) * LCE_CHANNEL_MULTIPLE


def check_lce_friendly(op_names, binarization, what: str) -> None:
    """Raise unless ``op_names`` are all LCE-friendly and activations are 1-bit."""
    if not binarization.binary_activations:
        raise ValueError(f"lce_friendly needs 1-bit activations (W1/A1): LCE runs {binarization.tag} convs as float")
    bad = sorted(set(op_names) - set(LCE_FRIENDLY_OPS))
    if bad:
        raise ValueError(
            f"{what} uses ops LCE does not run binary: {', '.join(bad)}; with lce_friendly=True use "
            f"only {', '.join(LCE_FRIENDLY_OPS)} (op set 'LCE_FRIENDLY_OPS')"
        )


# Op names of P2's published code (../shared/genotypes) mapped to ours.
P2_OP_NAMES = {
    "none": "zero",
    "max_pool_3x3": "max_pool_3x3",
    "avg_pool_3x3": "avg_pool_3x3",
    "bin_conv_3x3": "conv_3x3",
    "bin_conv_5x5": "conv_5x5",
    "bin_dil_conv_3x3": "dilated_conv_3x3",
    "bin_dil_conv_5x5": "dilated_conv_5x5",
}


def check_op(name: str) -> str:
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(OPS)}")
    return name


def get_op_set(op_set) -> tuple:
    """An op set by name (``"DARTS_BINARY_OPS"``, ``"BINARY_OPS"``) or as a sequence of op names."""
    if isinstance(op_set, str):
        if op_set not in OP_SETS:
            raise ValueError(
                f"unknown op set {op_set!r}; known op sets: {', '.join(OP_SETS)} (or pass a list of op names)"
            )
        return OP_SETS[op_set]
    ops = tuple(op_set)
    if not ops:
        raise ValueError("an op set needs at least one op")
    if len(set(ops)) != len(ops):
        raise ValueError(f"op set has repeated ops: {list(ops)}")
    for name in ops:
        check_op(name)
    return ops


def build_op(
    name: str, channels: int, stride: int, binarization: Binarization, *, name_prefix: str = "op"
) -> Operation:
    """Build op ``name`` mapping ``channels`` to ``channels`` at ``stride`` (1 or 2)."""
    check_op(name)
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2 (got {stride})")
    if channels <= 0:
        raise ValueError(f"channels must be positive (got {channels})")
    return OPS[name](int(channels), int(stride), binarization, f"{name_prefix}_{name}")
