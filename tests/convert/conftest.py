"""Shared fixtures: digits, and small searched networks trained a few steps so BatchNorm leaves its defaults.

Building, training and converting a 14-edge DARTS cell network costs ~30 s
on two cores, so each network is built, trained and converted once per
session and shared by the tests that need it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import bnas_tf  # noqa: E402
from bnas_tf import convert  # noqa: E402
from bnas_tf.data import digits_arrays  # noqa: E402
from bnas_tf.deploy import convertibility  # noqa: E402

TRAIN_EXAMPLES = 640
VERIFY_SAMPLES = 256
TRAIN_STEPS = 10
# Seeds whose random genotypes use every op of the op set (all 8 DARTS ops; all 7 of P2's).
GENOTYPE_SEEDS = {"DARTS_BINARY_OPS": 0, "BINARY_OPS": 6}
# Build options of the shared networks: inter-cell skips everywhere; P2's W1/A1 net also has the
# auxiliary head, so one network covers multi-output verification, the CLI and inspect.
NETWORK_OPTIONS = {("BINARY_OPS", "W1/A1"): {"inter_cell_skip": True, "auxiliary": True}}
DEFAULT_OPTIONS = {"inter_cell_skip": True}


@pytest.fixture(scope="session")
def digits():
    """(x_train, y_train, x_verify, y_verify): 16x16x1 digits in [-1, 1]; the verify set is never trained on."""
    x, y = digits_arrays(16)
    return x[:TRAIN_EXAMPLES], y[:TRAIN_EXAMPLES], x[-VERIFY_SAMPLES:], y[-VERIFY_SAMPLES:]


def train_steps(model, x, y, steps=TRAIN_STEPS, batch_size=64):
    """A few eager Adam steps: enough to move BatchNorm statistics and betas off their defaults.

    Eager steps cost less than tracing model.fit for these one-shot networks.
    """
    optimizer = tf.keras.optimizers.Adam(1e-2)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for step in range(steps):
        start = (step * batch_size) % len(x)
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        with tf.GradientTape() as tape:
            outputs = model(xb, training=True)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            loss = sum(loss_fn(yb, out) for out in outputs) + sum(model.losses)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients([(g, w) for g, w in zip(grads, model.trainable_weights) if g is not None])
    return model


def one_padded(model):
    """Workaround until bnas_tf.space.ops pads binary convs with ones (LCE 0.16 zero-padding bug, see
    convertibility)."""
    return convertibility.with_one_padding(model)


def small_network(op_set, binarization, seed=0, **kwargs):
    """A 3-cell, 8-channel network on 16x16x1 for a random genotype using every op of ``op_set``."""
    tf.keras.utils.set_random_seed(seed)
    genotype = bnas_tf.Genotype.random(op_set, seed=GENOTYPE_SEEDS[op_set])
    return bnas_tf.build_network(
        genotype, cells=3, channels=8, num_classes=10, input_shape=(16, 16, 1), binarization=binarization, **kwargs
    )


@pytest.fixture(scope="session")
def converted(digits):
    """converted(op_set, binarization) -> (trained model, flatbuffer bytes), cached per session."""
    cache = {}
    x, y = digits[0], digits[1]

    def get(op_set, binarization):
        key = (op_set, binarization)
        if key not in cache:
            options = NETWORK_OPTIONS.get(key, DEFAULT_OPTIONS)
            model = train_steps(one_padded(small_network(op_set, binarization, **options)), x, y)
            cache[key] = (model, convert.to_tflite(model))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def genotype_seeds():
    return dict(GENOTYPE_SEEDS)
