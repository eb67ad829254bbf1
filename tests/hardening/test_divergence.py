"""Non-finite is an error, never a result: training stops on a NaN loss, and ``verify`` refuses NaN outputs (Keras
or .tflite) and a label space the model does not have.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.convert import verification
from bnas_tf.pipeline.train import StopOnNonFinite


def _one_line(message):
    assert "\n" not in message.strip(), f"not one line:\n{message}"
    return message


# --- retraining and verification -------------------------------------------------------------------------------
def test_training_stops_on_a_non_finite_loss_naming_the_setting():
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
    model.compile("sgd", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.ones((8, 4), "float32")
    x[4:] = np.nan  # the second batch's loss is NaN
    with pytest.raises(ValueError) as error:
        model.fit(
            x,
            np.zeros(8),
            batch_size=4,
            shuffle=False,
            epochs=1,
            verbose=0,
            callbacks=[StopOnNonFinite(SimpleNamespace(train_learning_rate=0.5))],
        )
    message = _one_line(str(error.value))
    assert "the loss at epoch 1, batch 2 became nan" in message and "lower train_learning_rate (now 0.5)" in message


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from bnas_tf.convert import to_tflite

    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3, padding="same")(inputs))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))
    path = str(tmp_path_factory.mktemp("verify") / "m.tflite")
    to_tflite(model, path)
    return model, path


def _images(count=6):
    return np.random.default_rng(0).uniform(-1, 1, (count, 8, 8, 1)).astype("float32")


def test_verify_refuses_non_finite_tflite_outputs(converted, monkeypatch):
    model, path = converted
    monkeypatch.setattr(verification, "tflite_outputs", lambda *args, **kwargs: np.full((6, 3), np.nan, "float32"))
    with pytest.raises(ValueError, match=r"18 of 18 \.tflite outputs are not finite") as error:
        verification.verify(model, path, (_images(), np.zeros(6, "int64")))
    assert "do not deploy" in _one_line(str(error.value))


def test_verify_refuses_a_label_space_the_model_does_not_have(converted):
    model, path = converted
    with pytest.raises(ValueError, match="the data has 10 classes but the model has 3 outputs"):
        verification.verify(model, path, (_images(), np.zeros(6, "int64")), num_classes=10)
    with pytest.raises(ValueError, match=r"the data has label 5 but the model has 3 outputs \(classes 0..2\)"):
        verification.verify(model, path, (_images(), np.array([0, 1, 2, 5, 0, 1])))
    report = verification.verify(model, path, (_images(), np.array([0, 1, 2, 2, 0, 1])), num_classes=3)
    assert report["top1_agreement"] == 1.0
