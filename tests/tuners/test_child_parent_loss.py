"""SPEC P4 Eq. 3-4: the kernel-level Child-Parent loss acts in the child's path training."""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.space import losses
from bnas_tf.space.supernet import KINDS, CellSpace, Supernet
from bnas_tf.tuners import ChildParent
from bnas_tf.tuners.training import SupernetTrainer

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=1, reduction_cells=[1])


def test_each_group_gets_its_own_class_centres():
    features = [[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]]
    labels = [0, 0, 1, 0]
    # groups [0, 0, 0, 1]: group 0 class 0 is [1, 0], [3, 0] around [2, 0] (1 + 1); group 0 class 1 and group 1
    # class 0 hold one sample each (0). Kernels [[0.5, -1.0], [1.5, 2.0]] vs their magnitude-aware sign add 0.5.
    # lam = 0.5: 0.5 + 0.5 / 2 * 2 = 1.0.
    kernel = tf.constant([[0.5, -1.0], [1.5, 2.0]])
    reconstruction = tf.constant([[1.0, -1.5], [1.0, 1.5]])
    grouped = losses.child_parent_kernel_loss([kernel], [reconstruction], features, labels, 0.5, groups=[0, 0, 0, 1])
    assert float(grouped) == pytest.approx(1.0)
    # One batch of centres: class 0 is [1, 0], [3, 0], [5, 5] around [3, 5/3]: 4 + 25/9 + 0 + 25/9 + 4 + 100/9.
    pooled = losses.child_parent_kernel_loss([kernel], [reconstruction], features, labels, 0.5)
    assert float(pooled) == pytest.approx(0.5 + 0.25 * (8 + 150 / 9))


def _trainer(kernel_loss):
    tf.keras.utils.set_random_seed(3)
    supernet = Supernet(SPACE, num_classes=3, input_shape=(8, 8, 1), binarization="W1/A1")
    trainer = SupernetTrainer(supernet, learning_rate=0.05, kernel_loss=kernel_loss)
    supernet.set_paths(
        {kind: [[0, 1]] * SPACE.num_edges for kind in KINDS}, {kind: [[0, 1]] * SPACE.num_edges for kind in KINDS}
    )
    return trainer


class ConstantLoss(losses.ChildParentKernelLoss):
    """Adds 5 whatever it is given: the step's loss must grow by exactly that, and no weight may move for it."""

    def __call__(self, kernels, reconstructions, features, labels, groups=None):
        self.seen = (len(kernels), features.shape[-1])
        return tf.constant(5.0)


def _first_step(kernel_loss):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(8, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=8).astype(np.int32)
    trainer = _trainer(kernel_loss)
    loss = trainer.train_paths(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), 1)["losses"][0]
    return loss, [w.numpy() for w in trainer.layout_weights()]


def test_the_kernel_loss_joins_the_child_step_loss_and_gradient():
    plain_loss, plain_weights = _first_step(None)
    constant = ConstantLoss(0.5)
    constant_loss, constant_weights = _first_step(constant)
    assert constant_loss - plain_loss == pytest.approx(5.0 / 2, abs=1e-5)  # reported per path, 2 paths
    # binarized kernels, and the pooled features of the last cell: 1 node of 2 x 8 channels after one reduction
    assert constant.seen[0] > 0 and constant.seen[1] == SPACE.nodes * 2 * SPACE.channels
    for a, b in zip(plain_weights, constant_weights):
        np.testing.assert_array_equal(a, b)  # a constant adds no gradient
    _, cp_weights = _first_step(losses.ChildParentKernelLoss(0.5))
    assert any(not np.array_equal(a, b) for a, b in zip(plain_weights, cp_weights)), "the CP loss moved no weight"


def test_child_parent_gives_the_kernel_loss_to_the_child_only(tmp_path):
    tuner = ChildParent(SPACE, kernel_loss_lambda=0.25, directory=str(tmp_path), project_name="cp")
    assert tuner.trainer_settings("child")["kernel_loss"].lam == 0.25
    assert "kernel_loss" not in tuner.trainer_settings("parent")
    assert "kernel_loss" not in ChildParent(SPACE, directory=str(tmp_path), project_name="cp2").trainer_settings(
        "child"
    )
    with pytest.raises(ValueError, match="kernel_loss_lambda"):
        ChildParent(SPACE, kernel_loss_lambda=-1.0, directory=str(tmp_path), project_name="cp3")


def test_class_centre_loss_sums_eq_3s_second_term_over_the_batch():
    loss = losses.ClassCentreLoss(0.5)
    # centre of class 0 is [2, 0]: squared offsets 1 + 1 + 0; 0.5 / 2 * 2 = 0.5 (one-hot labels as Keras feeds them)
    assert float(loss(tf.one_hot([0, 0, 1], 2), tf.constant([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]))) == 0.5
    assert losses.ClassCentreLoss.from_config(loss.get_config()).lam == 0.5


@pytest.mark.parametrize("kernel_loss", [True, False])
def test_retraining_a_cpnas_winner_adds_the_kernel_loss(kernel_loss):
    from bnas_tf import recipes
    from bnas_tf.pipeline import train
    from bnas_tf.space.genotype import Genotype

    recipe = recipes.get(
        "cpnas",
        "quick",
        [
            "max_examples=200",
            "train_epochs=1",
            "train_steps_per_epoch=2",
            "cells=2",
            "channels=8",
            f"kernel_loss={kernel_loss}",
            "kernel_loss_lambda=0.01",
        ],
    )
    genotype = Genotype.random(seed=0, op_set=["conv_3x3", "max_pool_3x3"], nodes=2)
    result = train.train(genotype, recipe, verbose=0)
    assert len(result.model.outputs) == 1  # the saved network has no features output
    history = result.history
    if kernel_loss:
        # loss = cross-entropy + class-centre term (features output) + kernel term (model loss, > 0)
        assert history["global_pool_loss"][0] > 0
        assert history["loss"][0] > history["main_loss"][0] + history["global_pool_loss"][0]
    else:
        assert "global_pool_loss" not in history
