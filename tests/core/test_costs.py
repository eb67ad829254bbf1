"""Tests for bnas_tf.deploy.costs (SPEC "Costs to report", SPEC P3 Eq. 4)."""

import larq as lq
import pytest
import tensorflow as tf

from bnas_tf.deploy import convertibility, costs, layer_walk

BINARY = dict(
    input_quantizer="ste_sign",
    kernel_quantizer="ste_sign",
    kernel_constraint="weight_clip",
)


def binary_conv(filters, kernel_size, **kwargs):
    return lq.layers.QuantConv2D(filters, kernel_size, padding="same", use_bias=False, **BINARY, **kwargs)


def binary_depthwise(kernel_size, **kwargs):
    return lq.layers.QuantDepthwiseConv2D(
        kernel_size,
        padding="same",
        use_bias=False,
        input_quantizer="ste_sign",
        depthwise_quantizer="ste_sign",
        depthwise_constraint="weight_clip",
        **kwargs,
    )


def functional(input_shape, *layers):
    inputs = tf.keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return tf.keras.Model(inputs, x)


def by_name(result):
    return {row["name"]: row for row in result["layers"]}


# ---------------------------------------------------------------- formulas


def test_conv_depthwise_dense_macs():
    # 8*8 outputs * 3*3 taps * 16 in * 32 out
    assert costs.conv_macs(8, 8, 3, 3, 16, 32) == 8 * 8 * 9 * 16 * 32 == 294912
    # groups=4: each output channel sees 16/4 = 4 input channels
    assert costs.conv_macs(8, 8, 3, 3, 16, 32, groups=4) == 8 * 8 * 9 * 4 * 32
    # depthwise 4x4 outputs, 5x5 taps, 8 channels, multiplier 2
    assert costs.depthwise_macs(4, 4, 5, 5, 8, 2) == 4 * 4 * 25 * 8 * 2
    assert costs.dense_macs(64, 10) == 640
    assert costs.dense_macs(64, 10, positions=3) == 1920


def test_lce_padding():
    assert costs.round_up(12, 8) == 16
    assert costs.round_up(16, 8) == 16
    assert costs.round_up(16, 32) == 32
    assert costs.round_up(33, 32) == 64
    # C_in 16 -> padded 32, C_out 12 -> 16: 8*8*9*32*16
    assert costs.lce_conv_macs(8, 8, 3, 3, 16, 12) == 8 * 8 * 9 * 32 * 16
    # already aligned: no padding
    assert costs.lce_conv_macs(8, 8, 3, 3, 64, 64) == costs.conv_macs(8, 8, 3, 3, 64, 64)
    # groups=2 with 64 input channels: 32 per group, nothing to pad
    assert costs.lce_conv_macs(4, 4, 3, 3, 64, 16, groups=2) == 4 * 4 * 9 * 32 * 16


def test_flops_memory_saving_speedup_formulas():
    # FLOPs = float + binary / 64 (SPEC P3)
    assert costs.flops(binary_macs=6400, float_macs=100) == 100 + 100
    assert costs.full_precision_flops(binary_macs=6400, float_macs=100) == 6500
    assert costs.speedup(binary_macs=6400, float_macs=100) == 6500 / 200
    # all binary -> 64x; all float -> 1x; no MACs -> 1x
    assert costs.speedup(640, 0) == 64.0
    assert costs.speedup(0, 640) == 1.0
    assert costs.speedup(0, 0) == 1.0
    # 320 binary weights (320 bits) + 10 float (320 bits) = 640 bits;
    # full precision (320 + 10) * 32 = 10560 bits
    assert costs.memory_bits(320, 10) == 640
    assert costs.full_precision_memory_bits(320, 10) == 10560
    assert costs.memory_saving(320, 10) == 10560 / 640
    assert costs.memory_saving(64, 0) == 32.0
    assert costs.memory_saving(0, 64) == 1.0
    assert costs.memory_saving(0, 0) == 1.0


def test_binary_quantizer_detection():
    for name in ["ste_sign", "approx_sign", "swish_sign", "magnitude_aware_sign"]:
        assert costs.is_binary_quantizer(lq.quantizers.get(name))
    assert costs.is_binary_quantizer(lq.quantizers.DoReFa(k_bit=1))
    assert not costs.is_binary_quantizer(lq.quantizers.DoReFa(k_bit=2))
    assert not costs.is_binary_quantizer(lq.quantizers.SteTern())
    assert not costs.is_binary_quantizer(None)


# ---------------------------------------------------------------- profile


def test_hand_computed_float_stem_and_binary_conv():
    model = functional(
        (8, 8, 3),
        tf.keras.layers.Conv2D(16, 3, padding="same", name="stem"),
        binary_conv(32, 3, name="bconv"),
    )
    result = costs.profile(model)
    # stem: 3*3*3*16 = 432 kernel + 16 bias, all float
    # bconv: 3*3*16*32 = 4608 binary kernel, no bias
    assert result["float_params"] == 432 + 16
    assert result["binary_params"] == 4608
    assert result["memory_bits"] == 4608 * 1 + 448 * 32
    # stem MACs 8*8*9*3*16 = 27648; bconv MACs 8*8*9*16*32 = 294912
    assert result["float_macs"] == 8 * 8 * 9 * 3 * 16 == 27648
    assert result["binary_macs"] == 8 * 8 * 9 * 16 * 32 == 294912
    # flops = 27648 + 294912 / 64 = 27648 + 4608 = 32256, exactly
    assert result["flops"] == 27648 + 294912 / 64 == 32256
    assert result["speedup"] == (27648 + 294912) / 32256
    assert result["memory_saving"] == (4608 + 448) * 32 / (4608 + 448 * 32)
    # LCE pads C_in 16 -> 32: 8*8*9*32*32
    assert result["lce_binary_macs"] == 8 * 8 * 9 * 32 * 32
    rows = by_name(result)
    assert rows["stem"]["type"] == "Conv2D" and not rows["stem"]["binary"]
    assert rows["stem"]["lce_macs"] == 27648 and not rows["stem"]["lce_binary"]
    assert rows["bconv"]["type"] == "QuantConv2D" and rows["bconv"]["binary"]
    assert rows["bconv"]["lce_binary"]
    assert rows["bconv"]["params"] == 4608 and rows["bconv"]["macs"] == 294912


def test_strided_binary_conv_uses_output_shape():
    model = functional((8, 8, 32), binary_conv(64, 3, strides=2))
    # output 4x4: 4*4*9*32*64
    assert costs.profile(model)["binary_macs"] == 4 * 4 * 9 * 32 * 64


def test_lce_padding_in_profile():
    model = functional((8, 8, 16), binary_conv(12, 3, name="bconv"))
    result = costs.profile(model)
    assert result["binary_macs"] == 8 * 8 * 9 * 16 * 12
    # C_in 16 -> 32, C_out 12 -> 16
    assert result["lce_binary_macs"] == 8 * 8 * 9 * 32 * 16
    assert by_name(result)["bconv"]["lce_macs"] == 8 * 8 * 9 * 32 * 16


def test_sep_conv_net_param_split():
    # DARTS-style sep conv: binary depthwise 3x3 + BN + binary 1x1 conv
    model = functional(
        (8, 8, 16),
        binary_depthwise(3, name="dw"),
        tf.keras.layers.BatchNormalization(name="bn"),
        binary_conv(12, 1, name="pw"),
    )
    result = costs.profile(model)
    # binary: depthwise 3*3*16 = 144, pointwise 1*1*16*12 = 192
    assert result["binary_params"] == 144 + 192
    # float: BN gamma, beta, moving mean, moving variance = 4*16
    assert result["float_params"] == 4 * 16
    assert result["binary_params"] + result["float_params"] == model.count_params()
    # depthwise MACs 8*8*9*16 = 9216; pointwise 8*8*16*12 = 12288; both W1/A1
    assert result["binary_macs"] == 9216 + 12288
    assert result["float_macs"] == 0
    # LCE keeps depthwise float; the 1x1 pads 16 -> 32 in, 12 -> 16 out
    assert result["lce_binary_macs"] == 8 * 8 * 32 * 16
    rows = by_name(result)
    assert rows["dw"]["binary"] and not rows["dw"]["lce_binary"]
    assert rows["dw"]["lce_macs"] == 9216
    assert rows["bn"]["params"] == 64 and rows["bn"]["macs"] == 0


def test_plain_conv_net_param_split():
    model = functional(
        (8, 8, 3),
        tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False),  # 216
        tf.keras.layers.BatchNormalization(),  # 4*8 = 32
        binary_conv(8, 3),  # 3*3*8*8 = 576 binary
        tf.keras.layers.BatchNormalization(),  # 32
        tf.keras.layers.PReLU(shared_axes=[1, 2]),  # 8 slopes
        binary_conv(16, 3),  # 3*3*8*16 = 1152 binary
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(10),  # 16*10 + 10 = 170
    )
    result = costs.profile(model)
    assert result["binary_params"] == 576 + 1152
    assert result["float_params"] == 216 + 32 + 32 + 8 + 170
    assert result["binary_params"] + result["float_params"] == model.count_params()
    assert result["memory_bits"] == 1728 + 458 * 32


def test_w1a32_counts_binary_params_but_float_macs():
    layer = lq.layers.QuantConv2D(
        32,
        3,
        padding="same",
        use_bias=False,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        name="w1a32",
    )
    result = costs.profile(functional((8, 8, 16), layer))
    assert result["binary_params"] == 3 * 3 * 16 * 32
    assert result["float_params"] == 0
    assert result["binary_macs"] == 0
    assert result["float_macs"] == 8 * 8 * 9 * 16 * 32
    assert result["lce_binary_macs"] == 0
    assert result["speedup"] == 1.0
    assert result["memory_saving"] == 32.0


def test_dorefa_activations_are_binary_macs_but_not_lce_binary():
    layer = lq.layers.QuantConv2D(
        32,
        3,
        padding="same",
        use_bias=False,
        input_quantizer=lq.quantizers.DoReFa(k_bit=1),
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )
    result = costs.profile(functional((8, 8, 32), layer))
    assert result["binary_macs"] == 8 * 8 * 9 * 32 * 32
    assert result["lce_binary_macs"] == 0


def test_user_quantizer_with_precision_one_counts_binary():
    class MySign(lq.quantizers.Quantizer):
        precision = 1

        def call(self, inputs):
            return lq.math.sign(inputs)

    layer = lq.layers.QuantConv2D(
        8,
        1,
        use_bias=False,
        input_quantizer=MySign(),
        kernel_quantizer=MySign(),
        kernel_constraint="weight_clip",
    )
    result = costs.profile(functional((4, 4, 32), layer))
    assert result["binary_params"] == 32 * 8
    assert result["binary_macs"] == 4 * 4 * 32 * 8
    # not one of LCE's known sign quantizers
    assert result["lce_binary_macs"] == 0


def test_binary_dense_is_binary_mac_but_never_lce_binary():
    dense = lq.layers.QuantDense(10, use_bias=False, **BINARY)
    result = costs.profile(functional((64,), dense))
    assert result["binary_macs"] == 640
    assert result["lce_binary_macs"] == 0


def test_dense_on_feature_map_counts_every_position():
    result = costs.profile(functional((4, 4, 8), tf.keras.layers.Dense(3)))
    assert result["float_macs"] == 4 * 4 * 8 * 3


def test_quant_separable_conv_pointwise_is_float():
    layer = lq.layers.QuantSeparableConv2D(
        16,
        3,
        padding="same",
        use_bias=False,
        input_quantizer="ste_sign",
        depthwise_quantizer="ste_sign",
        pointwise_quantizer="ste_sign",
        depthwise_constraint="weight_clip",
        pointwise_constraint="weight_clip",
    )
    model = functional((8, 8, 16), layer)
    result = costs.profile(model)
    assert result["binary_params"] == 3 * 3 * 16 + 16 * 16
    # depthwise on binary input: binary 8*8*9*16; pointwise sees multi-bit
    # depthwise sums: float 8*8*16*16
    assert result["binary_macs"] == 8 * 8 * 9 * 16
    assert result["float_macs"] == 8 * 8 * 16 * 16
    # larq.models.summary counts both steps binary (documented divergence)
    larq_profile = lq.models.ModelProfile(model)
    larq_binary_macs = larq_profile.op_count("mac", 1)
    assert larq_binary_macs == result["binary_macs"] + result["float_macs"]


def test_nested_models_are_walked_and_shared_weights_counted_once():
    # one conv shared by two nested models, each calling it once: the walk
    # meets it twice (two calls, MACs twice) but its kernel is stored once
    conv = binary_conv(16, 3, name="bconv")
    first = functional((8, 8, 16), conv)
    first._name = "first"
    second = functional((8, 8, 16), conv)
    second._name = "second"
    inputs = tf.keras.Input((8, 8, 16))
    outer = tf.keras.Model(inputs, second(first(inputs)))
    result = costs.profile(outer)
    assert result["binary_params"] == 3 * 3 * 16 * 16
    assert result["binary_params"] + result["float_params"] == outer.count_params()
    assert result["binary_macs"] == 2 * 8 * 8 * 9 * 16 * 16
    rows = by_name(result)
    assert set(rows) == {"first/bconv", "second/bconv"}
    assert rows["first/bconv"]["params"] == 2304
    assert rows["second/bconv"]["params"] == 0  # already counted


def nested_op(op):
    """A model whose one cell op is ``op``, a nested Keras model named "op"."""
    op._name = "op"
    inputs = tf.keras.Input((8, 8, 16))
    return tf.keras.Model(inputs, op(inputs))


def test_costing_and_lce_checks_walk_a_nested_functional_op_the_same_way():
    model = nested_op(functional((8, 8, 16), binary_conv(16, 3, name="conv")))
    walked = dict(layer_walk.leaf_layers(model))
    assert "op/conv" in walked and "op" not in walked
    assert {row["name"] for row in costs.profile(model)["layers"]} == {"op/conv"}
    assert convertibility.leaf_layers is layer_walk.leaf_layers
    convertibility.check_convertible(model)


def test_a_subclassed_op_is_one_leaf_for_costing_and_lce_checks():
    class Op(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = binary_conv(16, 3)

        def call(self, inputs):
            return self.conv(inputs)

    model = nested_op(Op())
    assert [name for name, _ in layer_walk.leaf_layers(model)][-1] == "op"
    with pytest.raises(ValueError, match=r"'op' \(Op\) calls convolution"):
        costs.profile(model)
    with pytest.raises(ValueError, match=r"'op' \(Op\).*custom layer"):
        convertibility.check_convertible(model)


def test_sequential_model():
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Conv2D(16, 3, padding="same", input_shape=(8, 8, 3)),
            binary_conv(32, 3),
        ]
    )
    result = costs.profile(model)
    assert result["float_macs"] == 27648
    assert result["binary_macs"] == 294912


# ---------------------------------------------------------------- larq


def larq_reference_model():
    inputs = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", use_bias=False, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.PReLU(shared_axes=[1, 2])(x)
    x = binary_depthwise(3, strides=2)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", use_bias=False, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10)(x)
    return tf.keras.Model(inputs, outputs)


def test_agrees_with_larq_model_profile():
    model = larq_reference_model()
    result = costs.profile(model)
    larq_profile = lq.models.ModelProfile(model)

    assert result["binary_params"] == larq_profile.weight_count(bitwidth=1)
    assert result["binary_macs"] == larq_profile.op_count("mac", 1)
    assert result["float_macs"] == larq_profile.op_count("mac", 32)
    # larq drops BN's gamma and beta (it assumes they fold into the moving
    # statistics); we count all four vectors of each BN.
    bn_channels = sum(
        layer.gamma.shape[0] for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)
    )
    larq_float_params = larq_profile.weight_count(bitwidth=32)
    assert result["float_params"] == larq_float_params + 2 * bn_channels
    assert result["memory_bits"] == larq_profile.memory + 2 * bn_channels * 32
    assert result["binary_params"] + result["float_params"] == model.count_params()

    # hand check of the same numbers: 16x16 input, depthwise stride 2 -> 8x8
    assert result["float_macs"] == 16 * 16 * 9 * 3 * 16 + 64 * 10
    assert result["binary_macs"] == (16 * 16 * 9 * 16 * 32 + 8 * 8 * 9 * 32 + 8 * 8 * 9 * 32 * 64)
    # LCE: first binary conv pads 16 -> 32 inputs; depthwise stays float
    assert result["lce_binary_macs"] == 16 * 16 * 9 * 32 * 32 + 8 * 8 * 9 * 32 * 64


def test_summary_per_layer_numbers_match_larq_rows():
    model = larq_reference_model()
    rows = by_name(costs.profile(model))
    for layer_profile in lq.models.ModelProfile(model).layer_profiles:
        if layer_profile.name not in rows:
            continue
        row = rows[layer_profile.name]
        assert row["binary_params"] == layer_profile.weight_count(bitwidth=1)
        if layer_profile.op_count("mac") is not None:
            assert row["binary_macs"] == layer_profile.op_count("mac", 1)
            assert row["float_macs"] == layer_profile.op_count("mac", 32)


# ---------------------------------------------------------------- errors


def test_unbuilt_model_raises():
    model = tf.keras.Sequential([tf.keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        costs.profile(model)


def test_not_a_model_raises():
    with pytest.raises(TypeError, match="tf.keras.Model"):
        costs.profile(tf.keras.layers.Dense(3))


def test_transposed_conv_raises():
    model = functional((4, 4, 8), tf.keras.layers.Conv2DTranspose(8, 3))
    with pytest.raises(ValueError, match="Conv2DTranspose"):
        costs.profile(model)


def test_unknown_spatial_size_raises():
    model = functional((None, None, 3), tf.keras.layers.Conv2D(8, 3))
    with pytest.raises(ValueError, match="fixed input size"):
        costs.profile(model)


def test_hidden_conv_inside_custom_layer_raises():
    class Block(tf.keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = tf.keras.layers.Conv2D(8, 3)

        def call(self, inputs):
            return self.conv(inputs)

    model = functional((8, 8, 3), Block(name="block"))
    with pytest.raises(ValueError, match="block"):
        costs.profile(model)
