"""Shared op functions (bnas_tf.space.shared_ops) and shared per-op updates: each signature traced once, every step
(the α step's input-gradient-only ops too) exactly as with inline ops and inline updates."""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.space.quantizers import Binarization
from bnas_tf.space.shared_ops import bindings, signature
from bnas_tf.space.supernet import KINDS, CellSpace, Supernet
from bnas_tf.tuners.graph_options import without_graph_optimisation
from bnas_tf.tuners.training import SupernetTrainer

SPACE = CellSpace(
    op_set=["conv_3x3", "dilated_conv_3x3", "max_pool_3x3", "identity"],
    cells=2,
    channels=8,
    nodes=2,
    reduction_cells=[1],
)
ALL = {kind: [[0, 1, 2, 3]] * SPACE.num_edges for kind in KINDS}


def _trained(binarization, share, edges=False):
    """Every variable after 2 path-mode steps, 1 mixed-mode weight step, 1 α step, and the evaluation."""
    tf.keras.utils.set_random_seed(0)
    supernet = Supernet(SPACE, num_classes=4, input_shape=(8, 8, 1), binarization=binarization)
    supernet.share_ops, supernet.share_edges = share, edges
    trainer = SupernetTrainer(supernet)
    trainer.share_updates = share
    rng = np.random.default_rng(0)
    routes = {kind: [rng.permutation(4).tolist() for _ in range(SPACE.num_edges)] for kind in KINDS}
    x = tf.constant(rng.normal(size=(16, 8, 8, 1)).astype(np.float32))
    y = tf.constant(rng.integers(0, 4, 16).astype(np.int32))
    with without_graph_optimisation():
        supernet.set_paths(ALL, routes, sampled_paths=4)
        step = trainer._train_step_fn()
        losses = [float(step(x, y)[0]) for _ in range(2)]
        hits = trainer._eval_fn()(x, y).numpy().tolist()
        supernet.set_mixed(ALL, {kind: [[0, 1, 3]] * SPACE.num_edges for kind in KINDS})
        losses.append(float(step(x[:8], y[:8])[0]))
        losses.append(float(trainer._alpha_step_fn()(x[8:], y[8:])))
    return trainer, losses, hits, [v.numpy() for v in supernet.all_variables()]


# W1/A32 and PCNN (whose loss-adding ops stay inline) run with -m slow: 13 and 29-36 s of a suite at its 15 minutes
@pytest.mark.parametrize(
    "binarization",
    [
        "W1/A1",
        pytest.param("W1/A32", marks=pytest.mark.slow),
        pytest.param(Binarization("pcnn", 1, 1), marks=pytest.mark.slow),
    ],
    ids=["W1A1", "W1A32", "pcnn"],
)
def test_shared_ops_train_exactly_like_inline_ops(binarization):
    trainer, losses, hits, variables = _trained(binarization, share=True)
    _, inline_losses, inline_hits, inline_variables = _trained(binarization, share=False)
    assert losses == inline_losses and hits == inline_hits
    for got, expected in zip(variables, inline_variables):
        np.testing.assert_array_equal(got, expected)
    shared = trainer.supernet
    functions = shared.shared_ops._functions
    assert 0 < len(trainer._updates) < 2 * 2 * SPACE.num_edges  # per op signature, not per edge
    if isinstance(binarization, Binarization):  # PCNN's amplitude loss: its convs stay inline
        assert shared.shared_ops.inline and not any(key[0] in ("conv_3x3", "dilated_conv_3x3") for key in functions)
    else:
        # one function per signature (op, channels, stride, input shape, training) and kind of step (weight
        # step and evaluation; α step: input gradients only), not per edge
        assert not shared.shared_ops.inline
        for mode in [(True, False), (False, False), (True, True)]:
            count = sum(key[-2:] == mode for key in functions)
            assert 0 < count < 2 * 2 * SPACE.num_edges, mode
    if binarization == "W1/A32":  # as W1/A1 for the edges (the suite's time)
        return
    # shared edge routing and mixture too: the same computation, but the gradients of a tensor several edges
    # read are summed in another order (float rounding: 1-2 ulp seen)
    trainer, losses, hits, variables = _trained(binarization, share=True, edges=True)
    np.testing.assert_allclose(losses, inline_losses, rtol=1e-6)
    assert hits == inline_hits
    for got, expected in zip(variables, inline_variables):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # one routing function per input signature (every kind of step) and one mixture per signature and kind
    # of step, not per edge
    edges = [key for key in trainer.supernet.shared_ops._functions if key[0] == "edge"]
    assert 0 < sum(key[1] == "route" for key in edges) <= 3  # three input shapes: 8x8x8, 8x8x16, 4x4x16
    assert 0 < sum(key[1] == "mix" for key in edges) < 2 * 2 * SPACE.num_edges


def test_signature_and_bindings_of_two_edges_ops():
    supernet = Supernet(SPACE, num_classes=4, input_shape=(8, 8, 1), binarization="W1/A1")
    first, second = (supernet.edges("normal")[0][e].ops[0] for e in (0, 1))
    x = tf.zeros((2, 8, 8, 8))
    assert signature(first, x, True) == signature(second, x, True) != signature(first, x, False)
    assert signature(first, x, True) != signature(supernet.edges("normal")[0][0].ops[1], x, True)  # another op
    bound = bindings(first)
    assert sorted(i for _, _, i in bound) == list(range(len(first.weights)))  # every weight is an attribute


def test_loss_adding_ops_stay_inline_and_their_losses_reach_the_step():
    # the cheap part of the PCNN case above (-m slow): its conv ops add amplitude losses, so they are not shared
    supernet = Supernet(SPACE, num_classes=4, input_shape=(8, 8, 1), binarization=Binarization("pcnn", 1, 1))
    convs = supernet.edges("normal")[0][0].ops[:2]  # conv_3x3, dilated_conv_3x3
    assert all(id(op) in supernet.shared_ops.inline for op in convs)
    pool = supernet.edges("normal")[0][0].ops[2]
    assert id(pool) not in supernet.shared_ops.inline and not pool.weights
    trainer, y = SupernetTrainer(supernet), tf.zeros((2,), tf.int32)

    def losses(x):  # the step's loss and its cross-entropy part, in one trace
        logits = supernet.forward(x, training=True)
        per_sample = tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return trainer._losses(logits, y), tf.reduce_sum(tf.reduce_mean(supernet.by_path(per_sample), axis=1))

    with without_graph_optimisation():
        supernet.set_mixed(ALL, ALL)
        total, cross_entropy = tf.function(losses, autograph=False)(tf.zeros((2, 8, 8, 1)))
    assert float(total) > float(cross_entropy)  # + the inline ops' amplitude losses
