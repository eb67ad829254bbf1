"""The routed supernet: each path computes its own architecture; filler and unsampled ops never move."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.space.supernet import KINDS, CellSpace, Supernet
from bnas_tf.tuners import checkpoints
from bnas_tf.tuners.training import SupernetTrainer

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=2, reduction_cells=[1])


def _supernet():
    return Supernet(SPACE, num_classes=4, input_shape=(8, 8, 1), binarization="W1/A32")


def _all_slots():
    return {kind: [[0, 1, 2]] * SPACE.num_edges for kind in KINDS}


def _set_single_path(supernet, routes, path):
    """Path mode with only the ops ``path`` takes in ``routes``: that path's own network."""
    single = {kind: [[routes[kind][e][path]] for e in range(SPACE.num_edges)] for kind in KINDS}
    supernet.set_paths(single, {kind: [[0]] * SPACE.num_edges for kind in KINDS})


def _each_path_alone(supernet, routes, paths, rows):
    """The routed forward pass of ``paths`` sampled paths (``rows`` images each) equals each path's own."""
    supernet.set_paths(_all_slots(), routes, sampled_paths=paths)
    x = tf.random.normal((paths * rows, 8, 8, 1))
    together = supernet.forward(x, training=False).numpy()
    for path in range(paths):
        _set_single_path(supernet, routes, path)
        alone = supernet.forward(x[rows * path : rows * (path + 1)], training=False).numpy()
        np.testing.assert_allclose(together[rows * path : rows * (path + 1)], alone, rtol=1e-4, atol=1e-5)
    return x


def test_each_path_computes_its_own_architecture():
    rng = np.random.default_rng(0)
    routes = {kind: [rng.permutation(3).tolist() for _ in range(SPACE.num_edges)] for kind in KINDS}
    _each_path_alone(_supernet(), routes, paths=3, rows=2)


def test_filler_ops_serve_no_path_and_add_nothing():
    # a layout slot no sampled path takes (path mode) or an abandoned op (mixed mode) reads two rows and adds
    # nothing: the batch holds only the sampled paths, and every output is what the smaller layout gives
    supernet = _supernet()
    rng = np.random.default_rng(1)
    routes = {kind: [rng.permutation(3).tolist() for _ in range(SPACE.num_edges)] for kind in KINDS}
    supernet.set_paths(_all_slots(), routes, sampled_paths=2)
    assert supernet.paths == 2 and int(supernet.path_count) == 2
    x = _each_path_alone(supernet, routes, paths=2, rows=3)
    for kind in KINDS:
        for e in range(SPACE.num_edges):
            supernet.alpha[kind][e].assign(rng.normal(size=3).astype(np.float32))
    remaining = {kind: [[0, 2]] * SPACE.num_edges for kind in KINDS}
    supernet.set_mixed(_all_slots(), remaining)
    larger = supernet.forward(x, training=False).numpy()
    supernet.set_mixed(remaining)
    np.testing.assert_allclose(larger, supernet.forward(x, training=False).numpy(), rtol=1e-4, atol=1e-5)
    supernet.set_mixed(_all_slots(), remaining)  # a one-row batch: the ops serving no path read what there is
    np.testing.assert_allclose(larger[:1], supernet.forward(x[:1], training=False).numpy(), rtol=1e-4, atol=1e-5)


def test_filler_paths_leave_unsampled_ops_untouched(digits):
    # conv_3x3 (op 2) fills the third path slot: no loss, so neither its weights, its momentum buffers
    # nor its BatchNorm statistics may move, even with weight decay; the sampled max pool path's
    # preprocessing and classifier do train
    space = CellSpace(
        op_set=["max_pool_3x3", "identity", "conv_3x3"], cells=2, channels=8, nodes=2, reduction_cells=[1]
    )
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


def _randomised(trainer, seed):
    rng = np.random.default_rng(seed)
    state = trainer._state()
    for variable in state.values():
        variable.assign(rng.normal(size=variable.shape).astype(variable.dtype.as_numpy_dtype))
    return {key: v.numpy().copy() for key, v in state.items()}


def test_checkpoint_round_trip_and_older_layout(tmp_path):
    # every variable of the search state (weights, BN statistics, α, momentum, α's Adam) comes back; a
    # checkpoint of the tf.train.Checkpoint layout earlier versions wrote still reads
    trainer = SupernetTrainer(_supernet())
    saved = _randomised(trainer, 0)
    trainer.save(str(tmp_path / "new"), "7")
    _randomised(trainer, 1)
    assert trainer.restore(str(tmp_path / "new")) == "7"
    for key, variable in trainer._state().items():
        np.testing.assert_array_equal(saved[key], variable.numpy(), err_msg=key)
    assert set(tf.train.load_checkpoint(str(tmp_path / "new" / "ckpt-7")).get_variable_to_shape_map()) == set(saved)

    # the older layouts: tf.train.Checkpoint's, and one SaveV2 bundle without the epoch count (it stays as it is)
    older = {
        "legacy": trainer._legacy_checkpoint().write,
        "no-epochs": lambda prefix: checkpoints.write(
            prefix, {key: v for key, v in trainer._state().items() if key != checkpoints.EPOCHS}
        ),
    }
    for name, write in older.items():
        os.makedirs(tmp_path / name)
        write(str(tmp_path / name / "ckpt-3"))
        with open(tmp_path / name / "latest.json", "w") as f:
            json.dump({"prefix": "ckpt-3", "tag": "3", "record": None, "previous": None}, f)
        randomised = _randomised(trainer, 2)
        assert trainer.restore(str(tmp_path / name)) == "3"
        for key, variable in trainer._state().items():
            expected = randomised[key] if key == checkpoints.EPOCHS else saved[key]
            np.testing.assert_array_equal(expected, variable.numpy(), err_msg=f"{name}: {key}")
        _randomised(trainer, 0)


def test_checkpoint_of_another_space_is_refused(tmp_path):
    SupernetTrainer(_supernet()).save(str(tmp_path), "1")
    other = CellSpace(op_set=["conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=2, reduction_cells=[1])
    trainer = SupernetTrainer(Supernet(other, num_classes=4, input_shape=(8, 8, 1)))
    with pytest.raises(ValueError, match="cannot be read .*variables.*another space.*overwrite=True"):
        trainer.restore(str(tmp_path))


def test_masked_sgd_is_clipped_momentum_with_coupled_weight_decay():
    # PyTorch's SGD after clip_grad_norm_: g' = g min(1, c / ||g||), buf = μ buf + g' + λ w, w -= lr buf;
    # an op whose mask is 0 keeps its weight and its buffer
    supernet = _supernet()
    trainer = SupernetTrainer(supernet, learning_rate=0.1, momentum=0.9, weight_decay=0.01, clip_norm=1.0)
    shared = supernet.shared_weights()[:2]
    frozen = supernet.op_weights("normal", 0, 0)[:1]
    trainer.op_masks[("normal", 0, 0)].assign(0.0)
    variables = shared + frozen
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=v.shape) * 3.0, tf.float32) for v in variables]
    norm = np.sqrt(sum(float(np.sum(g.numpy() ** 2)) for g in grads))
    assert norm > 1.0  # clipping is active
    before = [v.numpy().copy() for v in variables]
    buffers = [np.zeros_like(b) for b in before]
    for _ in range(2):
        trainer._apply(grads, variables)
        for i, (v, g) in enumerate(zip(before[:2], grads[:2])):
            buffers[i] = 0.9 * buffers[i] + g.numpy() / norm + 0.01 * v
            before[i] = v - 0.1 * buffers[i]
    for expected, v in zip(before, variables):
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(tf.reduce_max(tf.abs(trainer.accumulators[id(frozen[0])]))) == 0.0


def test_evaluation_merges_batches_without_changing_accuracies(monkeypatch):
    from bnas_tf.tuners import batches

    x = np.random.default_rng(0).normal(size=(22, 8, 8, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 4, 22).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)  # 4 batches of 5 and one of 2
    # blocks of whole consecutive batches within the pixel budget (3 paths x 64 pixels a row), or one batch
    blocks = list(batches.merged_batches(dataset, 3, pixels=3 * 64 * 10))
    assert [len(b[1]) for b in blocks] == [10, 10, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), x)
    assert [len(b[1]) for b in batches.merged_batches(dataset, 3, pixels=1)] == [5, 5, 5, 5, 2]
    supernet = _supernet()
    trainer = SupernetTrainer(supernet)
    routes = {kind: [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1], [2, 1, 0]][: SPACE.num_edges] for kind in KINDS}
    supernet.set_paths(_all_slots(), routes)
    merged = trainer.evaluate_paths(dataset)
    monkeypatch.setattr(batches, "EVAL_PIXELS", 1)
    np.testing.assert_array_equal(trainer.evaluate_paths(dataset), merged)
    # each path's accuracy is its own network's
    for path in range(3):
        _set_single_path(supernet, routes, path)
        predicted = np.argmax(supernet.forward(tf.constant(x), training=False).numpy(), -1)
        assert merged[path] == pytest.approx(np.mean(predicted == y))
        supernet.set_paths(_all_slots(), routes)


def test_alpha_adam_is_keras_adam():
    # the fused α update (one ResourceApplyAdam per α on the Keras Adam's slots) is Keras' Adam, steps counted
    supernet = _supernet()
    trainer = SupernetTrainer(supernet, alpha_learning_rate=0.1)
    alphas = supernet.alpha_variables[:3]
    twins = [tf.Variable(a) for a in alphas]
    keras_adam = tf.keras.optimizers.Adam(0.1, beta_1=0.5, beta_2=0.999)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [tf.constant(rng.normal(size=a.shape), tf.float32) for a in alphas]
        trainer._apply_alpha(grads + [None], alphas + supernet.alpha_variables[3:4])
        keras_adam.apply_gradients(zip(grads, twins))
    for got, expected in zip(alphas, twins):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=2e-5, atol=1e-6)  # float32 rounding
    assert int(trainer.alpha_optimizer.iterations) == 3
    assert np.all(supernet.alpha_variables[3].numpy() == 0.0)  # no gradient: not moved


def test_steps_watch_only_what_they_train():
    # the weight step watches only the weights and the α step only α (so the ops on α alone, or on the
    # kernels alone, are not differentiated): their gradients equal a full tape's
    supernet = _supernet()
    trainer = SupernetTrainer(supernet)
    supernet.set_mixed(_all_slots(), {kind: [[0, 2]] * SPACE.num_edges for kind in KINDS})
    for kind in KINDS:
        for alpha in supernet.alpha[kind]:
            alpha.assign(np.random.default_rng(0).normal(size=3).astype(np.float32))
    x, y = tf.random.normal((6, 8, 8, 1), seed=1), tf.constant([0, 1, 2, 3, 0, 1])
    weights, alphas = trainer.layout_weights(), supernet.alpha_variables

    def gradients(watched):
        with tf.GradientTape(watch_accessed_variables=watched is None) as tape:
            if watched is not None:
                tape.watch(watched)
            loss = trainer._losses(supernet.forward(x, training=True), y)
        return tape.gradient(loss, weights + alphas if watched is None else watched)

    full = gradients(None)
    for expected, got in zip(full, gradients(weights) + gradients(alphas)):
        np.testing.assert_allclose(expected, got, rtol=1e-5, atol=1e-6)
    assert all(g is not None for g in full)


def test_batches_of_one_image_are_refused_before_any_step():
    # BatchNorm needs 2 samples, and a one-row training step corrupts the heap in TF 2.15's oneDNN kernels
    trainer = SupernetTrainer(_supernet())
    data = tf.data.Dataset.from_tensor_slices((tf.zeros((4, 8, 8, 1)), tf.zeros(4, tf.int32))).batch(1)
    trainer.supernet.set_paths(_all_slots(), {kind: [[0, 1, 2]] * SPACE.num_edges for kind in KINDS})
    with pytest.raises(ValueError, match="training batches hold 1 image: .*batch_size >= 2"):
        trainer.train_paths(data, 2)
    trainer.supernet.set_mixed(_all_slots())
    with pytest.raises(ValueError, match="training batches hold 1 image"):
        trainer.train_mixed(data, 2, architecture_data=data)
    assert trainer.step_times == []  # refused before any step ran


def test_path_features_follow_the_sampled_paths_of_a_kept_layout():
    # a layout keeps its graph for rounds with fewer sampled paths (the face search's round 1: 2 of 3 slots);
    # each path's features must still be its own, not rows of the other paths cut at the old path count
    trainer = SupernetTrainer(_supernet())
    supernet = trainer.supernet
    rng = np.random.default_rng(2)
    routes = {kind: [rng.permutation(3).tolist() for _ in range(SPACE.num_edges)] for kind in KINDS}
    images = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    supernet.set_paths(_all_slots(), routes, sampled_paths=3)
    assert trainer.path_features(images).shape[0] == 3
    supernet.set_paths(_all_slots(), routes, sampled_paths=2)
    features = trainer.path_features(images)
    assert features.shape[:2] == (2, 6)
    for path in range(2):
        _set_single_path(supernet, routes, path)
        np.testing.assert_allclose(features[path], trainer.path_features(images)[0], rtol=1e-4, atol=1e-5)
