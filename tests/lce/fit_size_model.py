"""Refit the size model of ``bnas_tf.deploy.lce_profile.flatbuffer_size`` on real conversions (a script, not a test).

    python tests/lce/fit_size_model.py

Converts random networks (both cell op sets in W1/A1 and W1/A32, 2-3 cells,
8-16 channels, VGG-small and ResNet-18 width genes; 16x16x1 inputs; seeds
1000+, disjoint from the tests'), each untrained and after three training
steps on random data (trained networks share fewer equal constants), and
fits ``size - weight_bytes = a * ops + b * constants + c`` by least squares
on the relative error, with ``lce_profile``'s predicted op and constant
counts. Prints a, b, c and the size errors; copy the rounded numbers into
``SIZE_BYTES_PER_OP``, ``SIZE_BYTES_PER_CONSTANT``, ``SIZE_BASE_BYTES``.
Takes about 10 minutes on two cores.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bnas_tf  # noqa: E402
from bnas_tf import convert  # noqa: E402
from bnas_tf.deploy import lce_profile

INPUT_SHAPE = (16, 16, 1)
CELL_SPECS = [
    (op_set, binarization, cells, channels)
    for op_set in ("BINARY_OPS", "DARTS_BINARY_OPS")
    for binarization, cells, channels in (
        ("W1/A1", 2, 8),
        ("W1/A1", 3, 8),
        ("W1/A1", 2, 16),
        ("W1/A1", 3, 16),
        ("W1/A32", 2, 16),
        ("W1/A32", 3, 8),
    )
]
WIDTH_SEEDS = (1000, 1001, 1002)


def networks():
    """(label, build()) of every network the fit uses."""
    for k, (op_set, binarization, cells, channels) in enumerate(CELL_SPECS):
        genotype = bnas_tf.Genotype.random(op_set, seed=1000 + k)
        yield (
            f"{op_set} {binarization} {cells}x{channels} seed {1000 + k}",
            lambda g=genotype, b=binarization, c=cells, ch=channels: bnas_tf.build_network(
                g, cells=c, channels=ch, input_shape=INPUT_SHAPE, binarization=b
            ),
        )
    for backbone in ("vgg_small", "resnet18"):
        for seed in WIDTH_SEEDS:
            genotype = bnas_tf.WidthGenotype.random(backbone, seed=seed)
            yield (
                f"{backbone} seed {seed}",
                lambda g=genotype: bnas_tf.build_width_network(g, input_shape=INPUT_SHAPE, binarization="W1/A1"),
            )


def train_steps(model, steps=3):
    """A few steps on random data: BatchNorm statistics and PReLU slopes leave their (shared) initial values."""
    rng = np.random.default_rng(0)
    optimizer = tf.keras.optimizers.Adam(1e-2)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for _ in range(steps):
        x = rng.normal(size=(16,) + INPUT_SHAPE).astype(np.float32)
        y = rng.integers(0, 10, size=16)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients([(g, w) for g, w in zip(grads, model.trainable_weights) if g is not None])


def measure():
    rows = []
    for label, build in networks():
        for trained in (False, True):
            tf.keras.utils.set_random_seed(0)
            model = build()
            if trained:
                train_steps(model)
            report = lce_profile.lce_profile(model)
            size = len(convert.to_tflite(model))
            rows.append((report["weight_bytes"], report["num_ops"], report["num_constants"], size))
            print(
                f"{label}{' trained' if trained else ''}: {size} bytes, {report['num_ops']} ops, "
                f"{report['num_constants']} constants",
                flush=True,
            )
            tf.keras.backend.clear_session()
    return np.array(rows, dtype=float)


def fit(rows):
    weights, ops, constants, size = rows.T
    design = np.stack([ops, constants, np.ones_like(ops)], axis=1) / size[:, None]
    coefficients, *_ = np.linalg.lstsq(design, (size - weights) / size, rcond=None)
    return coefficients


if __name__ == "__main__":
    rows = measure()
    per_op, per_constant, base = fit(rows)
    print(f"SIZE_BYTES_PER_OP = {per_op:.0f}")
    print(f"SIZE_BYTES_PER_CONSTANT = {per_constant:.0f}")
    print(f"SIZE_BASE_BYTES = {base:.0f}")
    for label, (a, b, c) in (
        ("fitted", (per_op, per_constant, base)),
        ("current", (lce_profile.SIZE_BYTES_PER_OP, lce_profile.SIZE_BYTES_PER_CONSTANT, lce_profile.SIZE_BASE_BYTES)),
    ):
        estimate = rows[:, 0] + a * rows[:, 1] + b * rows[:, 2] + c
        error = np.abs(estimate / rows[:, 3] - 1)
        print(f"{label}: size error max {error.max():.2%}, mean {error.mean():.2%} over {len(rows)} conversions")
