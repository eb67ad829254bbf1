"""lce_profile on single layers: kind, reason, ops and MACs for each rule LCE 0.16 applies (no conversion)."""

import larq as lq
import pytest
import tensorflow as tf

import bnas_tf
from bnas_tf.deploy import costs, lce_profile, lce_rules
from bnas_tf.space import published


def binary_conv(
    channels=16,
    kernel=3,
    dilation=1,
    input_quantizer="ste_sign",
    kernel_quantizer="ste_sign",
    pad_values=1.0,
    name=None,
):
    return lq.layers.QuantConv2D(
        channels,
        kernel,
        dilation_rate=dilation,
        padding="same",
        pad_values=pad_values,
        use_bias=False,
        input_quantizer=input_quantizer,
        kernel_quantizer=kernel_quantizer,
        name=name,
    )


def single(layer, shape=(8, 8, 16), batch_norm=True):
    inputs = tf.keras.Input(shape)
    x = layer(inputs)
    if batch_norm:
        x = tf.keras.layers.BatchNormalization(name="bn")(x)
    return tf.keras.Model(inputs, x)


def row(report, name):
    return next(r for r in report["layers"] if r["name"] == name)


LAYERS = {
    "W1/A1": lambda: binary_conv(name="conv"),
    "W1/A32": lambda: binary_conv(input_quantizer=None, pad_values=0.0, name="conv"),
    "DoReFa": lambda: binary_conv(input_quantizer=lq.quantizers.DoReFa(k_bit=1, mode="activations"), name="conv"),
    "depthwise": lambda: lq.layers.QuantDepthwiseConv2D(
        3, padding="same", use_bias=False, input_quantizer="ste_sign", depthwise_quantizer="ste_sign", name="conv"
    ),
    "float": lambda: tf.keras.layers.Conv2D(16, 3, padding="same", name="conv"),
    "zero-padded overhang": lambda: binary_conv(kernel=5, pad_values=0.0, name="conv"),
}


@pytest.mark.parametrize(
    "layer,kind,reason,kernel_op",
    [
        ("W1/A1", "binary", "LceBconv2d", "LceBconv2d"),
        ("W1/A32", "float", "QuantConv2D without input quantizer (W1/A32): float CONV_2D", "CONV_2D"),
        ("DoReFa", "float", "DoReFa input quantizer is not sign-like: float CONV_2D after float ops", "CONV_2D"),
        (
            "depthwise",
            "float",
            "QuantDepthwiseConv2D: depthwise convs have no binary kernel in LCE",
            "DEPTHWISE_CONV_2D",
        ),
        ("float", "float", "float input and kernel", "CONV_2D"),
        ("zero-padded overhang", "rejected", "padding", "LceBconv2d"),
    ],
)
def test_layer_kind_reason_and_kernel_op(layer, kind, reason, kernel_op):
    shape = (4, 4, 16) if kind == "rejected" else (8, 8, 16)  # a 5x5 kernel overhangs a 4x4 map
    report = lce_profile.lce_profile(single(LAYERS[layer](), shape))
    conv = row(report, "conv")
    assert conv["kind"] == kind
    assert reason in conv["reason"]
    assert kernel_op in conv["ops"]
    assert report["rejected"] == (["conv"] if kind == "rejected" else [])


def test_batch_norm_after_a_conv_folds_elsewhere_it_is_mul_and_add():
    inputs = tf.keras.Input((8, 8, 16))
    x = binary_conv(name="conv")(inputs)
    folded = tf.keras.layers.BatchNormalization(name="folded")(x)
    pooled = tf.keras.layers.MaxPool2D(name="pool")(folded)
    loose = tf.keras.layers.BatchNormalization(beta_initializer=tf.keras.initializers.Constant(0.5), name="loose")
    report = lce_profile.lce_profile(tf.keras.Model(inputs, loose(pooled)))
    assert row(report, "folded")["kind"] == "folded"
    assert "output multiplier and bias" in row(report, "folded")["reason"]
    assert row(report, "loose")["ops"] == ["MUL", "ADD"]


def test_binary_macs_are_padded_and_float_macs_are_counted_apart():
    inputs = tf.keras.Input((8, 8, 16))
    x = binary_conv(12, name="binary")(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = binary_conv(12, input_quantizer=None, pad_values=0.0, name="w1a32")(x)
    x = tf.keras.layers.Conv2D(4, 1, name="float")(x)
    report = lce_profile.lce_profile(tf.keras.Model(inputs, x))
    padded = costs.lce_conv_macs(8, 8, 3, 3, 16, 12)  # 16 -> 32 input channels, 12 -> 16 outputs
    w1a32, floating = costs.conv_macs(8, 8, 3, 3, 12, 12), costs.conv_macs(8, 8, 1, 1, 12, 4)
    assert report["binary_macs"] == padded
    assert report["unpadded_binary_macs"] == costs.conv_macs(8, 8, 3, 3, 16, 12)
    assert report["float_macs"] == w1a32 + floating
    assert report["fallback_macs"] == w1a32  # binary in Keras, float in LCE
    assert report["ops"] == {"LceBconv2d": 1, "CONV_2D": 2, "DEPTHWISE_CONV_2D": 0, "FULLY_CONNECTED": 0}


@pytest.mark.parametrize("second,shared", [((3, 2), True), ((5, 2), False), ((3, 4), False), ((3, 1), False)])
def test_dilated_convs_sharing_an_input(second, shared):
    """Mirrors tests/convert/test_lce_behaviour.py: same kernel and dilation on one tensor -> both float."""
    inputs = tf.keras.Input((16, 16, 16))
    x = tf.keras.layers.PReLU(shared_axes=[1, 2])(inputs)
    y = tf.keras.layers.Add()(
        [binary_conv(kernel=3, dilation=2, name="a")(x), binary_conv(kernel=second[0], dilation=second[1], name="b")(x)]
    )
    report = lce_profile.lce_profile(tf.keras.Model(inputs, y))
    assert report["ops"]["LceBconv2d"] == (0 if shared else 2)
    assert report["ops"]["CONV_2D"] == (2 if shared else 0)
    if shared:
        assert "shared SPACE_TO_BATCH_ND makes both float" in row(report, "a")["reason"]
        assert report["fallback_macs"] == report["float_macs"] > 0


def test_max_pool_read_only_by_binary_convs_is_binary():
    inputs = tf.keras.Input((8, 8, 16))
    x = tf.keras.layers.MaxPool2D(name="pool")(inputs)
    report = lce_profile.lce_profile(tf.keras.Model(inputs, binary_conv(name="conv")(x)))
    assert row(report, "pool")["ops"] == ["LceQuantize", "LceBMaxPool2d"]
    assert row(report, "conv")["ops"] == ["LceBconv2d"]  # reads packed bits: no LceQuantize of its own


def test_bconv_weight_bytes_pack_32_input_channels_per_word():
    assert lce_profile.bconv_weight_bytes(3, 3, 32, 8) == 4 * 8 * 9 * 1 + 2 * 4 * 8
    assert lce_profile.bconv_weight_bytes(3, 3, 33, 8) == 4 * 8 * 9 * 2 + 2 * 4 * 8


def test_equal_constants_are_counted_once():
    """Untrained BatchNorms fold to equal multipliers and biases (plain sign kernels), stored once."""
    inputs = tf.keras.Input((8, 8, 16))
    x = tf.keras.layers.BatchNormalization()(binary_conv(16, name="a")(inputs))
    x = tf.keras.layers.BatchNormalization()(binary_conv(16, name="b")(x))
    report = lce_profile.lce_profile(tf.keras.Model(inputs, x))
    filters, multiplier, bias = 2 * 4 * 16 * 9, 4 * 16, 4 * 16
    assert report["weight_bytes"] == filters + multiplier + bias
    assert report["num_constants"] == 4


def test_published_cell_with_a_layer_called_twice():
    """P2's CIFAR cell has two empty nodes: one Zero layer called twice, merged by the converter."""
    model = bnas_tf.build_network(
        published.P2_BNAS_CIFAR10, cells=2, channels=8, input_shape=(16, 16, 1), binarization="W1/A1"
    )
    report = lce_profile.lce_profile(model)
    assert any("(call 2)" in r["name"] and r["kind"] == "folded" for r in report["layers"])
    assert report["ops"]["LceBconv2d"] > 0 and not report["rejected"]


def test_nested_model_is_flattened():
    inner_inputs = tf.keras.Input((8, 8, 16))
    inner = tf.keras.Model(inner_inputs, binary_conv(name="conv")(inner_inputs), name="inner")
    inputs = tf.keras.Input((8, 8, 16))
    report = lce_profile.lce_profile(tf.keras.Model(inputs, tf.keras.layers.ReLU()(inner(inputs))))
    assert row(report, "inner/conv")["kind"] == "binary"
    assert report["binary_macs"] == costs.lce_conv_macs(8, 8, 3, 3, 16, 16)


def test_rejects_what_is_not_a_model():
    with pytest.raises(TypeError, match="tf.keras.Model"):
        lce_profile.lce_profile("model.keras")


@pytest.mark.parametrize(
    "kernel_quantizer,kind,ops",
    [
        ("ste_sign", "binary", ["LceBconv2d"]),
        ("magnitude_aware_sign", "float", ["LceDequantize", "MEAN", "MUL", "TRANSPOSE", "CONV_2D"]),
    ],
)
def test_scaled_kernels_over_the_folding_limit_stay_float(kernel_quantizer, kind, ops):
    """Above 2**25 weights the converter leaves a magnitude-aware scale to run time (tests/lce/test_agreement.py)."""
    channels = lce_rules.FOLDING_LIMIT_WEIGHTS // 4096 + 1  # a 1x1 kernel of 4096 x channels > 2**25 weights
    layer = binary_conv(channels, kernel=1, kernel_quantizer=kernel_quantizer, name="conv")
    report = lce_profile.lce_profile(single(layer, (2, 2, 4096)))
    conv = row(report, "conv")
    assert conv["kind"] == kind and [op for op in conv["ops"] if op != "LceQuantize"] == ops
    if kind == "float":
        assert "folding limit" in conv["reason"]
        assert row(report, "bn")["kind"] == "float"  # nothing constant to fold the BatchNorm into
