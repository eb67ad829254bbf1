"""A cell builds only what reaches its output: no preprocessing of an input its genotype never reads."""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import Genotype, build_network
from bnas_tf.deploy import costs
from bnas_tf.deploy.lce_profile import lce_profile
from bnas_tf.space import ops as ops_module
from bnas_tf.space import published
from bnas_tf.space.quantizers import get as get_binarization

REDUCE = [("conv_3x3", 0), ("max_pool_3x3", 1), ("conv_3x3", 2), ("avg_pool_3x3", 0)]
# every non-zero edge of the normal cell reads input 1 (or node 2)
NORMAL_READS_INPUT_1 = Genotype(
    normal=[("conv_3x3", 1), ("zero", 0), ("avg_pool_3x3", 1), ("conv_3x3", 2)],
    reduce=REDUCE,
    op_set="BINARY_OPS",
    nodes=2,
)
# the same cell with a weightless edge from input 0: it reads input 0, so it preprocesses it
NORMAL_READS_BOTH = Genotype(
    normal=[("conv_3x3", 1), ("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("conv_3x3", 2)],
    reduce=REDUCE,
    op_set="BINARY_OPS",
    nodes=2,
)
# only node 3 is output: node 2, its edge and the input 0 it reads are unused
UNUSED_NODE_READS_INPUT_0 = Genotype(
    normal=[("conv_3x3", 0), ("zero", 1), ("conv_3x3", 1), ("zero", 2)],
    reduce=REDUCE,
    normal_concat=[3],
    op_set="BINARY_OPS",
    nodes=2,
)
# cell0 normal (input 0 is the stem), cell1 reduction, cell2 normal after a reduction (input 0 at twice the size)
SMALL = dict(cells=3, channels=8, input_shape=(16, 16, 1), reduction_cells=[1], binarization="W1/A1")


def _layer_names(model):
    return [layer.name for layer in model.layers]


def _variables_without_gradient(model, x, y):
    """Names of the trainable variables one training step leaves without a gradient (after applying it)."""
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = [v.name for v, g in zip(model.trainable_variables, gradients) if g is None]
    tf.keras.optimizers.Adam(0.01).apply_gradients(
        (g, v) for g, v in zip(gradients, model.trainable_variables) if g is not None
    )
    return missing


@pytest.mark.parametrize(
    "genotype", [NORMAL_READS_INPUT_1, UNUSED_NODE_READS_INPUT_0], ids=["zero_edge", "unused_node"]
)
@pytest.mark.parametrize("inter_cell_skip", [False, True])
def test_a_cell_ignoring_input_0_builds_no_preprocessing_for_it_and_trains_every_weight(
    genotype, inter_cell_skip, digits
):
    model = build_network(genotype, inter_cell_skip=inter_cell_skip, **SMALL)
    names = _layer_names(model)
    assert not [n for n in names if n.startswith(("cell0_pre0", "cell2_pre0"))]
    assert [n for n in names if n.startswith("cell1_pre0")]  # the reduction cell reads input 0
    assert all(any(n.startswith(f"cell{i}_pre1") for n in names) for i in range(3))
    if genotype is UNUSED_NODE_READS_INPUT_0:
        assert not [n for n in names if n.startswith(("cell0_e0_", "cell2_e0_"))]  # node 2's edge
    x, y = digits
    assert _variables_without_gradient(model, x[:8], y[:8]) == []


def test_costs_drop_exactly_the_unused_preprocessing():
    ignoring = costs.profile(build_network(NORMAL_READS_INPUT_1, **SMALL))
    reading = costs.profile(build_network(NORMAL_READS_BOTH, **SMALL))
    # by hand, the input-0 preprocessing of the two normal cells (binary 1x1 convs, W1/A1):
    # cell0: stem (3 * 8 = 24 channels, 16x16) -> 8 channels: 16 * 16 * 24 * 8 = 49152 MACs, 192 weights;
    # cell2: factorised reduce of cell0's output (2 * 8 = 16 channels, 16x16) to 16 channels at 8x8, two
    # stride-2 convs to 8 channels each: 2 * 8 * 8 * 16 * 8 = 16384 MACs, 256 weights
    assert reading["binary_macs"] - ignoring["binary_macs"] == 49152 + 16384
    assert reading["binary_params"] - ignoring["binary_params"] == 192 + 256
    # BatchNorm (4 vectors) and PReLU (1) per channel: 5 * 8 + 5 * 16
    assert reading["float_params"] - ignoring["float_params"] == 5 * 8 + 5 * 16
    assert reading["float_macs"] == ignoring["float_macs"]


def test_profiles_never_count_a_layer_that_does_not_reach_the_output():
    model = build_network(NORMAL_READS_INPUT_1, **SMALL)
    # the preprocessing the old cell built for cell2's unread input 0, called on that input (cell0's output)
    binarization = get_binarization(SMALL["binarization"])
    unused = ops_module.FactorizedReduce("preprocess", 16, binarization, "cell2_pre0")
    unused(model.get_layer("cell0_concat").output)
    with_unused_call = tf.keras.Model(model.inputs, model.outputs)
    assert _layer_names(with_unused_call) == _layer_names(model)
    assert costs.profile(with_unused_call) == costs.profile(model)
    assert lce_profile(with_unused_call) == lce_profile(model)


def test_p2_cifar_cell_with_inter_cell_skips_has_no_unused_layer(digits):
    """P2's reduction cell reads only input 0 (its input-1 edge is Zeroise): no cell1/cell2 input-1 preprocessing."""
    model = build_network(
        published.P2_BNAS_CIFAR10,
        cells=3,
        channels=32,
        input_shape=(16, 16, 1),
        binarization="W1/A1",
        inter_cell_skip=True,
    )
    names = _layer_names(model)
    assert not [n for n in names if n.startswith(("cell1_pre1", "cell2_pre1"))]
    assert [n for n in names if n.startswith("cell0_pre0")] and [n for n in names if n.startswith("cell0_pre1")]
    assert {"cell1_skip_add", "cell2_skip_add"} <= set(names)  # the skips read the cells' raw input 1
    x, y = digits
    assert _variables_without_gradient(model, x[:8], y[:8]) == []
    assert np.isfinite(model(x[:2]).numpy()).all()
