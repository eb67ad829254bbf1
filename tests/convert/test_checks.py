"""Bad inputs fail early with errors that name the problem (STYLE 7)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import convert


def functional(*layers, shape=(8, 8, 4)):
    inputs = tf.keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return tf.keras.Model(inputs, x)


def tiny_model():
    return functional(
        tf.keras.layers.Conv2D(4, 3, padding="same", name="conv"),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(3, name="logits"),
    )


class Custom(tf.keras.layers.Layer):
    def call(self, x):
        return x * 2.0


@pytest.mark.parametrize("bad", [None, "model.keras", object(), np.zeros((2, 2))])
def test_non_model_is_a_type_error(bad):
    with pytest.raises(TypeError, match="tf.keras.Model"):
        convert.to_tflite(bad)


def test_lambda_layer_is_named():
    model = functional(tf.keras.layers.Lambda(lambda t: t * 2.0, name="doubler"))
    with pytest.raises(ValueError, match=r"'doubler' \(Lambda\).*Lambda layer"):
        convert.to_tflite(model)


def test_unknown_custom_layer_is_named():
    model = functional(Custom(name="mine"))
    with pytest.raises(ValueError, match=r"'mine'.*custom layer"):
        convert.to_tflite(model)


def test_nested_model_layers_are_checked():
    inner = functional(tf.keras.layers.Lambda(lambda t: t, name="inner_lambda"))
    model = functional(inner)
    with pytest.raises(ValueError, match="inner_lambda"):
        convert.to_tflite(model)


def test_mixed_precision_layer_is_named():
    model = functional(tf.keras.layers.Conv2D(4, 3, dtype="mixed_float16", name="half"))
    with pytest.raises(ValueError, match=r"'half'.*mixed_float16"):
        convert.to_tflite(model)


def test_binary_dense_is_refused_with_reason():
    model = functional(
        tf.keras.layers.Flatten(),
        lq.layers.QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", name="bdense"),
    )
    with pytest.raises(ValueError, match=r"'bdense'.*never turns dense layers into binary"):
        convert.to_tflite(model)


def test_binary_weights_only_dense_is_fine():
    """A dense layer with a binary kernel but float input (W1/A32 classifier) converts as a float layer."""
    model = functional(tf.keras.layers.Flatten(), lq.layers.QuantDense(3, kernel_quantizer="ste_sign"))
    convert.check_convertible(model)


def test_subclassed_and_unbuilt_models_are_refused():
    class Sub(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = tf.keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub(tf.zeros((1, 3)))
    with pytest.raises(ValueError, match="subclassed"):
        convert.to_tflite(sub)
    with pytest.raises(ValueError, match="not built"):
        convert.to_tflite(tf.keras.Sequential([tf.keras.layers.Dense(2)]))


def test_dynamic_input_size_is_refused():
    model = functional(tf.keras.layers.Conv2D(4, 3), tf.keras.layers.GlobalAveragePooling2D(), shape=(None, None, 3))
    with pytest.raises(ValueError, match="fixed input_shape"):
        convert.to_tflite(model)


def test_unwritable_output_fails_before_converting(tmp_path):
    model = tiny_model()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="is a file, not a folder"):
        convert.to_tflite(model, blocker / "model.tflite")
    with pytest.raises(ValueError, match="is a directory"):
        convert.to_tflite(model, tmp_path)
    with pytest.raises(OSError):
        convert.to_tflite(model, "/proc/model.tflite")


def test_bad_options():
    with pytest.raises(ValueError, match="weights"):
        convert.to_tflite(tiny_model(), weights="int4")
    with pytest.raises(ValueError, match="target"):
        convert.to_tflite(tiny_model(), target="x86")


def test_not_a_flatbuffer():
    with pytest.raises(ValueError, match="TFL3"):
        convert.inspect(b"definitely not a model")
    with pytest.raises(TypeError):
        convert.inspect(123)


def test_verify_input_errors():
    model = tiny_model()
    data = convert.to_tflite(model)
    with pytest.raises(ValueError, match="shape"):
        convert.verify(model, data, np.zeros((4, 16, 16, 4), np.float32))
    with pytest.raises(ValueError, match="labels"):
        convert.verify(model, data, (np.zeros((4, 8, 8, 4), np.float32), np.zeros(3, np.int32)))
    with pytest.raises(TypeError):
        convert.verify(model, data, [1, 2, 3])
    other = functional(tf.keras.layers.Flatten(), tf.keras.layers.Dense(5))
    with pytest.raises(ValueError, match="not converted from this model"):
        convert.verify(other, data, np.zeros((2, 8, 8, 4), np.float32))


def test_verify_accepts_unbatched_datasets_and_plain_arrays():
    model = tiny_model()
    data = convert.to_tflite(model)
    x = np.random.default_rng(0).normal(size=(10, 8, 8, 4)).astype(np.float32)
    y = np.arange(10) % 3
    unbatched = convert.verify(model, data, tf.data.Dataset.from_tensor_slices((x, y)), max_samples=7)
    assert unbatched["num_samples"] == 7 and "keras_accuracy" in unbatched
    plain = convert.verify(model, data, x)
    assert plain["num_samples"] == 10 and "keras_accuracy" not in plain
    assert plain["top1_agreement"] == 1.0 and plain["max_abs_diff"] < 1e-5
