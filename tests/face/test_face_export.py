"""The embedding model (no margin head) converts with LCE and its .tflite embeddings agree with Keras:
cosine similarity >= 0.999 on 256 samples (convert.verify(mode="embedding"))."""

import numpy as np
import pytest
import tensorflow as tf
from test_head import GENOTYPE

from bnas_tf import data, recipes
from bnas_tf.convert import inspect, to_tflite, verify
from bnas_tf.convert.verification import embedding_agreement
from bnas_tf.pipeline.face_train import train_face


@pytest.fixture(scope="module")
def trained():
    recipe = recipes.get(
        "bnas_face",
        "quick",
        ["cells=2", "channels=8", "embedding_dim=32", "train_epochs=1", "train_steps_per_epoch=30", "augment=false"],
    )
    bundle = data.load("digits", batch_size=32, max_examples=600)
    return train_face(GENOTYPE, recipe, bundle, verbose=0), bundle


def test_embedding_tflite_agrees_with_keras_by_cosine(trained, tmp_path):
    result, bundle = trained
    path = str(tmp_path / "embedding.tflite")
    to_tflite(result.model, path)
    ops = inspect(path, model=result.model)["ops"]
    assert ops.get("LceBconv2d", 0) > 0 and "arcface" not in [layer.name for layer in result.model.layers]
    x = np.concatenate([x for x, _ in bundle.train.unbatch().batch(256).take(1)])
    assert len(x) == 256
    check = verify(result.model, path, x, max_samples=256, mode="embedding")
    assert check["num_samples"] == 256 and check["mode"] == "embedding" and "top1_agreement" not in check
    assert check["min_cosine"] >= 0.999, check


def test_training_moved_the_margin_loss(trained):
    result, _ = trained
    assert result.history["loss"][0] > 0 and len(result.history["loss"]) == 1
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}


def test_embedding_agreement_and_mode_checks():
    same = np.array([[1.0, 2.0], [0.0, 0.0]])
    agreement = embedding_agreement(same, same)  # the zero embedding on both sides counts as agreeing
    assert agreement["min_cosine"] == pytest.approx(1.0) and agreement["mean_cosine"] == pytest.approx(1.0)
    assert embedding_agreement(same, -same)["min_cosine"] == pytest.approx(-1.0)
    inputs = tf.keras.Input((4,))
    with pytest.raises(ValueError, match="mode must be one of logits, embedding"):
        verify(tf.keras.Model(inputs, inputs), b"", np.zeros((1, 4)), mode="cosine")
