import pytest
import tensorflow as tf

from bnas_tf.space import ops
from bnas_tf.space.quantizers import W1A1, W1A32

ALL_OPS = sorted(set(ops.DARTS_BINARY_OPS) | set(ops.BINARY_OPS))


@pytest.mark.parametrize("binarization", [W1A32, W1A1], ids=["W1A32", "W1A1"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", ALL_OPS)
def test_every_op_builds_with_the_right_shape(name, stride, binarization):
    op = ops.build_op(name, 8, stride, binarization, name_prefix=f"t{stride}")
    x = tf.keras.Input((8, 8, 8))
    y = op(x)
    assert tuple(y.shape) == (None, 8 // stride, 8 // stride, 8)
    value = tf.keras.Model(x, y)(tf.random.normal((2, 8, 8, 8)), training=True)
    assert value.shape == (2, 8 // stride, 8 // stride, 8)
    if name == "zero":
        assert float(tf.reduce_max(tf.abs(value))) == 0.0


def test_binary_ops_use_larq_quant_layers_and_prelu_for_1bit():
    import larq as lq

    conv = ops.build_op("conv_3x3", 8, 1, W1A1)
    kinds = [type(layer).__name__ for layer in conv.layers]
    assert kinds == ["QuantConv2D", "BatchNormalization", "PReLU"]
    assert conv.layers[0].input_quantizer is not None and conv.layers[0].kernel_quantizer is not None
    sep = ops.build_op("sep_conv_3x3", 8, 1, W1A32)
    kinds = [type(layer).__name__ for layer in sep.layers]
    assert kinds.count("QuantDepthwiseConv2D") == 2 and "PReLU" not in kinds and kinds[0] == "ReLU"
    assert all(
        isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDepthwiseConv2D))
        for layer in sep.layers
        if "Conv" in type(layer).__name__
    )


def test_op_sets_match_the_papers():
    assert len(ops.DARTS_BINARY_OPS) == 8 and len(ops.BINARY_OPS) == 7
    assert "sep_conv_3x3" not in ops.BINARY_OPS and "zero" in ops.BINARY_OPS
    assert "identity" in ops.DARTS_BINARY_OPS


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known ops: zero, identity"):
        ops.build_op("conv_7x7", 8, 1, W1A32)
    with pytest.raises(ValueError, match="known op sets"):
        ops.get_op_set("NAS_OPS")
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        ops.build_op("conv_3x3", 8, 3, W1A32)
    with pytest.raises(ValueError, match="channels must be positive"):
        ops.build_op("conv_3x3", 0, 1, W1A32)
