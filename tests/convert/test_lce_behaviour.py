"""What LCE 0.16 does on our stack that bnas_tf.convert guards against or reports (see STACK_NOTES).

These pin upstream behaviour measured with single layers; when an LCE
upgrade fixes one, its test here fails and the guard can be lifted.
"""

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import convert
from bnas_tf.convert import flatbuffer, verification
from bnas_tf.deploy import convertibility


def binary_conv(kernel, dilation=1, pad_values=0.0, channels=16):
    return lq.layers.QuantConv2D(
        channels,
        kernel,
        dilation_rate=dilation,
        padding="same",
        pad_values=pad_values,
        use_bias=False,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )


def single_conv_model(size, kernel, dilation=1, pad_values=0.0):
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((size, size, 16))
    return tf.keras.Model(inputs, binary_conv(kernel, dilation, pad_values)(inputs))


def max_diff(model, data):
    x = np.random.default_rng(0).normal(size=(4,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    expected = np.asarray(model(x))
    return float(np.abs(expected - verification.tflite_outputs(data, x)).max())


# (input size, kernel, dilation): effective kernel dilation*(k-1)+1 vs input size.
OVERHANGING = [(4, 5, 1), (8, 5, 2), (4, 3, 2), (2, 3, 1)]
FITTING = [(5, 5, 1), (9, 5, 2), (16, 5, 2), (4, 3, 1)]


@pytest.mark.parametrize("size,kernel,dilation", OVERHANGING)
def test_zero_padding_is_wrong_when_kernel_overhangs_input(size, kernel, dilation):
    model = single_conv_model(size, kernel, dilation)
    raw = lce.convert_keras_model(model)  # unchecked, as LCE alone would do it
    assert max_diff(model, raw) > 1.0  # integer-valued outputs: off by whole units
    with pytest.raises(ValueError, match="padding"):
        convert.to_tflite(model)
    # One-padding is exact, and the check lets it through.
    one_padded = single_conv_model(size, kernel, dilation, pad_values=1.0)
    assert max_diff(one_padded, convert.to_tflite(one_padded)) == 0.0


@pytest.mark.parametrize("size,kernel,dilation", FITTING)
def test_zero_padding_is_exact_when_kernel_fits(size, kernel, dilation):
    model = single_conv_model(size, kernel, dilation)
    assert convertibility.zero_padding_problem(model.layers[-1]) is None
    assert max_diff(model, convert.to_tflite(model)) == 0.0


@pytest.mark.parametrize("second,binary", [((3, 2), False), ((5, 2), True), ((3, 4), True), ((3, 1), True)])
def test_dilated_convs_sharing_an_input_stay_float(second, binary):
    """Two binary convs of the same kernel and dilation on one tensor share a SpaceToBatchND: both stay float."""
    inputs = tf.keras.Input((16, 16, 16))
    x = tf.keras.layers.PReLU(shared_axes=[1, 2])(inputs)
    y = tf.keras.layers.Add()([binary_conv(3, 2)(x), binary_conv(*second)(x)])
    model = tf.keras.Model(inputs, y)
    data = convert.to_tflite(model)
    ops = flatbuffer.op_histogram(data)
    assert (ops.get("LceBconv2d", 0) == 2) is binary
    assert (ops.get("CONV_2D", 0) == 2) is not binary
    assert max_diff(model, data) < 1e-4  # float or binary, the numbers are right
