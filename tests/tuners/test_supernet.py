"""The routed supernet: each path computes its own architecture; filler and unsampled ops never move."""
import numpy as np
import tensorflow as tf

from bnas_tf.supernet import KINDS, CellSpace, Supernet
from bnas_tf.tuners.training import SupernetTrainer

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=2, reduction_cells=[1])


def _supernet():
    return Supernet(SPACE, num_classes=4, input_shape=(8, 8, 1), binarization="W1/A32")


def _all_slots():
    return {kind: [[0, 1, 2]] * SPACE.num_edges for kind in KINDS}


def test_each_path_computes_its_own_architecture():
    supernet = _supernet()
    rng = np.random.default_rng(0)
    routes = {kind: [rng.permutation(3).tolist() for _ in range(SPACE.num_edges)] for kind in KINDS}
    supernet.set_paths(_all_slots(), routes)
    x = tf.random.normal((3 * 2, 8, 8, 1))
    together = supernet.forward(x, training=False).numpy()
    for path in range(3):
        single = {kind: [[routes[kind][e][path]] for e in range(SPACE.num_edges)] for kind in KINDS}
        supernet.set_paths(single, {kind: [[0]] * SPACE.num_edges for kind in KINDS})
        alone = supernet.forward(x[2 * path: 2 * path + 2], training=False).numpy()
        np.testing.assert_allclose(together[2 * path: 2 * path + 2], alone, rtol=1e-4, atol=1e-5)


def test_filler_paths_leave_unsampled_ops_untouched(digits):
    # conv_3x3 (op 2) fills the third path slot: no loss, so neither its weights, its momentum buffers
    # nor its BatchNorm statistics may move, even with weight decay; the sampled max pool path's
    # preprocessing and classifier do train
    space = CellSpace(op_set=["max_pool_3x3", "identity", "conv_3x3"], cells=2, channels=8, nodes=2, reduction_cells=[1])
    supernet = Supernet(space, num_classes=4, input_shape=(8, 8, 1), binarization="W1/A32")
    trainer = SupernetTrainer(supernet, learning_rate=0.1, weight_decay=0.1)
    supernet.set_paths(_all_slots(), {kind: [[0, 1, 2]] * space.num_edges for kind in KINDS}, sampled_paths=2)
    frozen = trainer.set_active({kind: [{0, 1}] * space.num_edges for kind in KINDS})
    filler = [v for layer in supernet.op_layers("normal", 0, 2) for v in layer.weights]
    momentum = [trainer.accumulators[id(v)] for v in supernet.op_weights("normal", 0, 2)]
    shared = supernet.shared_weights()
    before, before_shared = [v.numpy().copy() for v in filler], [v.numpy().copy() for v in shared]
    x, y = digits
    data = tf.data.Dataset.from_tensor_slices((tf.image.resize(x[:96], (8, 8)), y[:96] % 4)).batch(16)
    trainer.train_paths(data, 3)
    trainer.restore_statistics(frozen)
    for b, v in zip(before, filler):  # weights and BatchNorm statistics
        np.testing.assert_array_equal(b, v.numpy())
    for m in momentum:
        assert float(tf.reduce_max(tf.abs(m))) == 0.0
    assert any(np.abs(b - v.numpy()).max() > 0 for b, v in zip(before_shared, shared))
