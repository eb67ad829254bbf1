"""The face head: ArcFace logits against the formula, the margin layer's config and save/load round trip,
and the embedding model (float Dense + BN on the binary body's pooled features, no margin head)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import Genotype
from bnas_tf.face.head import AdditiveAngularMargin, arcface_logits, build_face_models

GENOTYPE = Genotype(
    normal=[("conv_3x3", 0), ("max_pool_3x3", 1), ("identity", 0), ("conv_3x3", 1), ("identity", 2)],
    reduce=[("conv_3x3", 0), ("max_pool_3x3", 1), ("conv_3x3", 0), ("identity", 1), ("identity", 2)],
    op_set=["conv_3x3", "max_pool_3x3", "identity"],
    nodes=2,
)
NETWORK = dict(cells=2, channels=8, reduction_cells=(1,), binarization="W1/A1")


def test_arcface_logits_follow_the_formula():
    cosine = np.array([[1.0, 0.5, -0.2], [0.3, -0.9, 0.1]], np.float32)
    labels = np.array([0, 1])
    logits = arcface_logits(tf.constant(cosine), tf.constant(labels), scale=64.0, margin=0.5).numpy()
    # row 0: target cos 1 -> theta 0 -> 64 cos(0.5); others 64 cos
    assert logits[0, 0] == pytest.approx(64 * math.cos(0.5), rel=1e-5)
    assert logits[0, 1:] == pytest.approx(64 * cosine[0, 1:], rel=1e-5)
    # row 1: target cos -0.9 < cos(pi - 0.5) = -0.878: past the fold, 64 (cos - 0.5 sin(pi - 0.5))
    assert logits[1, 1] == pytest.approx(64 * (-0.9 - 0.5 * math.sin(math.pi - 0.5)), rel=1e-5)
    theta = math.acos(0.3)
    shifted = arcface_logits(tf.constant([[0.3, 0.0]]), tf.constant([0]), scale=10.0, margin=0.2).numpy()
    assert shifted[0, 0] == pytest.approx(10 * math.cos(theta + 0.2), rel=1e-5)


def test_margin_applies_in_training_only():
    layer = AdditiveAngularMargin(3, scale=4.0, margin=0.3)
    embeddings, labels = tf.constant([[1.0, 0.0], [0.0, 2.0]]), tf.constant([0, 2])
    inference = layer([embeddings, labels], training=False).numpy()
    training = layer([embeddings, labels], training=True).numpy()
    centres = layer.centres.numpy() / np.linalg.norm(layer.centres.numpy(), axis=0)
    cosine = (embeddings.numpy() / np.linalg.norm(embeddings.numpy(), axis=1, keepdims=True)) @ centres
    assert inference == pytest.approx(4.0 * cosine, rel=1e-5)
    assert training[0, 0] < inference[0, 0] and training[0, 1] == pytest.approx(inference[0, 1])


def test_layer_config_round_trip_and_validation():
    layer = AdditiveAngularMargin(7, scale=32.0, margin=0.4, name="arc")
    clone = AdditiveAngularMargin.from_config(layer.get_config())
    assert (clone.num_classes, clone.scale, clone.margin, clone.name) == (7, 32.0, 0.4, "arc")
    assert tf.keras.utils.get_registered_object("bnas_tf>AdditiveAngularMargin") is AdditiveAngularMargin
    with pytest.raises(ValueError, match="margin must be in"):
        AdditiveAngularMargin(3, margin=2.0)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        AdditiveAngularMargin(1)


def test_models_share_weights_save_and_load(tmp_path):
    tf.keras.utils.set_random_seed(0)
    training, embedding = build_face_models(
        GENOTYPE, num_classes=4, input_shape=(16, 16, 1), embedding_dim=16, **NETWORK
    )
    assert [t.name for t in training.inputs] == ["image", "label"] and len(embedding.inputs) == 1
    assert embedding.output_shape == (None, 16)
    assert "arcface" not in [layer.name for layer in embedding.layers]
    dense, bn = embedding.get_layer("embedding_dense"), embedding.get_layer("embedding")
    assert type(dense) is tf.keras.layers.Dense and isinstance(bn, tf.keras.layers.BatchNormalization)
    assert training.get_layer("embedding_dense") is dense  # one head, two models
    x = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 1)).astype(np.float32)
    y = np.array([0, 1, 3])
    training.save(tmp_path / "training.keras")
    embedding.save(tmp_path / "embedding.keras")
    loaded = tf.keras.models.load_model(tmp_path / "training.keras")
    assert isinstance(loaded.get_layer("arcface"), AdditiveAngularMargin)
    np.testing.assert_allclose(loaded([x, y], training=False), training([x, y], training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        tf.keras.models.load_model(tmp_path / "embedding.keras")(x, training=False),
        embedding(x, training=False),
        rtol=1e-5,
        atol=1e-5,
    )
