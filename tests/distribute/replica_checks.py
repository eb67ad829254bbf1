"""Checks of data-parallel supernet training on two logical CPU devices, printed as one JSON line.

Run as a script (the logical devices must be configured before TensorFlow starts its devices):
``python replica_checks.py steps DIR`` compares path-mode, mixed-mode and α steps under MirroredStrategy with one
device's, ``python replica_checks.py searches DIR`` runs seeded tiny searches with and without the strategy.
"""

import contextlib
import json
import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from bnas_tf import data  # noqa: E402
from bnas_tf.space.losses import ChildParentKernelLoss  # noqa: E402
from bnas_tf.space.supernet import KINDS, CellSpace, Supernet  # noqa: E402
from bnas_tf.tuners.replicas import local_copies  # noqa: E402
from bnas_tf.tuners.training import SupernetTrainer  # noqa: E402

#: conv_3x3 (op 2) is the op a path-mode filler slot and mixed mode's abandoned op: it must not move
STEP_SPACE = CellSpace(
    op_set=["max_pool_3x3", "identity", "conv_3x3"], cells=2, channels=8, nodes=1, reduction_cells=[1]
)
SEARCH_SPACE = CellSpace(
    op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=1, reduction_cells=[1]
)
ZERO_SPACE = CellSpace(
    op_set=["zero", "conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=1, reduction_cells=[1], inter_cell_skip=True
)


def _strategy():
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _digits(start, stop, batch):
    x, y = data.digits_arrays(8)
    return tf.data.Dataset.from_tensor_slices((x[start:stop], y[start:stop] % 4)).batch(batch)


def _trainer(strategy, sync):
    tf.keras.utils.set_random_seed(0)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        supernet = Supernet(
            STEP_SPACE, num_classes=4, input_shape=(8, 8, 1), binarization="W1/A32", sync_batch_norm=sync
        )
    # with P4's kernel-level loss: its class-centre term is a sum over samples, with the global batch's centres
    return SupernetTrainer(supernet, kernel_loss=ChildParentKernelLoss(0.1), distribution_strategy=strategy)


def _frozen_op(trainer):
    """Every copy of conv_3x3's variables on every edge (weights, BatchNorm statistics, momentum buffers)."""
    supernet = trainer.supernet
    variables = []
    for kind in KINDS:
        for edge in range(STEP_SPACE.num_edges):
            variables += [v for layer in supernet.op_layers(kind, edge, 2) for v in layer.weights]
            variables += [trainer.accumulators[id(w)] for w in supernet.op_weights(kind, edge, 2)]
    return [copy for v in variables for copy in local_copies(v)]


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _train(trainer):
    """Path mode (2 sampled paths, conv_3x3 a filler), then mixed mode with α steps over the other two ops."""
    all_slots = {kind: [[0, 1, 2]] * STEP_SPACE.num_edges for kind in KINDS}
    trainer.supernet.set_paths(all_slots, all_slots, sampled_paths=2)
    frozen = trainer.set_active({kind: [{0, 1}] * STEP_SPACE.num_edges for kind in KINDS})
    paths = trainer.train_paths(_digits(0, 96, 8), 3)
    trainer.restore_statistics(frozen)
    remaining = {kind: [[0, 1]] * STEP_SPACE.num_edges for kind in KINDS}
    trainer.supernet.set_mixed(all_slots, remaining)
    frozen = trainer.set_active({kind: [set(r) for r in remaining[kind]] for kind in KINDS})
    mixed = trainer.train_mixed(_digits(96, 160, 8), 3, architecture_data=_digits(160, 224, 8), diversity_weight=0.5)
    trainer.restore_statistics(frozen)
    return paths["losses"] + mixed["losses"], paths["accuracy"]


def _copied(source, target):
    """``target`` with ``source``'s whole search state (one device to every replica)."""
    for key, variable in target._state().items():
        variable.assign(source._state()[key].numpy())


def _state_differences(reference, trainer):
    """Largest |difference| and the tolerance check of every replica's copy of every state variable."""
    worst, close = 0.0, True
    for key, variable in trainer._state().items():
        expected = reference._state()[key].numpy()
        for copy in local_copies(variable):
            value = copy.numpy()
            worst = max(worst, float(np.max(np.abs(value - expected), initial=0.0)))
            close = close and bool(np.allclose(value, expected, rtol=1e-5, atol=1e-6))
    return worst, close


def _bit_identical(before, variables):
    return all(np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


def steps(folder):
    strategy = _strategy()
    validation = _digits(224, 247, 10)  # 23 rows: a block whose chunk does not split over 2 replicas
    reference = _trainer(None, sync=True)
    mirrored = _trainer(strategy, sync=True)
    _copied(reference, mirrored)
    all_slots = {kind: [[0, 1, 2]] * STEP_SPACE.num_edges for kind in KINDS}
    for trainer in (reference, mirrored):
        trainer.supernet.set_paths(all_slots, all_slots, sampled_paths=2)
    evaluated = [t.evaluate_paths(validation).tolist() for t in (reference, mirrored)]
    before = _snapshot(_frozen_op(mirrored))
    losses = [_train(t)[0] for t in (reference, mirrored)]
    worst, close = _state_differences(reference, mirrored)
    images = next(iter(validation))[0].numpy()
    features = [t.path_features(images) for t in (reference, mirrored)]
    saved = {key: v.numpy().copy() for key, v in mirrored._state().items()}
    mirrored.save(f"{folder}/checkpoint", "1")
    for variable in mirrored._state().values():
        variable.assign(tf.zeros_like(variable))
    mirrored.restore(f"{folder}/checkpoint")
    restored = all(
        np.array_equal(copy.numpy(), saved[key]) for key, v in mirrored._state().items() for copy in local_copies(v)
    )

    per_replica = _trainer(strategy, sync=False)
    _copied(reference, per_replica)
    per_replica_before = _snapshot(_frozen_op(per_replica))
    per_replica_losses, _ = _train(per_replica)

    refused = {}
    per_replica.supernet.set_paths(all_slots, all_slots, sampled_paths=2)
    try:
        per_replica.train_paths(_digits(0, 96, 7), 1)
    except ValueError as error:
        refused["trainer"] = str(error)
    # a search whose batches do not split over the replicas is refused before any supernet is built
    tuner = _tuners(folder, strategy)["child_parent"]
    bad = data.load("digits", batch_size=15, search_split=True, max_examples=200)
    try:
        tuner.search(bad.search_weights, bad.search_validation, steps_per_epoch=1, verbose=0)
    except ValueError as error:
        refused["search"] = str(error)
    refused["search_built"] = tuner.child is not None
    return {
        "replicas": strategy.num_replicas_in_sync,
        "evaluated": evaluated,
        "losses": losses,
        "worst_difference": worst,
        "weights_close": close,
        "frozen_bit_identical": _bit_identical(before, _frozen_op(mirrored)),
        "features_close": bool(np.allclose(features[0], features[1], rtol=1e-4, atol=1e-5)),
        "features_shape": list(features[1].shape),
        "checkpoint_restored": restored,
        "per_replica_losses": per_replica_losses,
        "per_replica_frozen_bit_identical": _bit_identical(per_replica_before, _frozen_op(per_replica)),
        "refused": refused,
    }


def _tuners(folder, strategy):
    from bnas_tf.tuners import ChildParent, Differentiable, OperationPruning

    settings = dict(directory=folder, distribution_strategy=strategy, sync_batch_norm=strategy is not None)
    suffix = "mirrored" if strategy is not None else "one_device"
    return {
        "pruning": OperationPruning(
            SEARCH_SPACE, project_name=f"p1_{suffix}", repetitions=2, ucb=True, seed=3, **settings
        ),
        "child_parent": ChildParent(SEARCH_SPACE, project_name=f"p4_{suffix}", repetitions=1, seed=5, **settings),
        "differentiable": Differentiable(ZERO_SPACE, project_name=f"p2_{suffix}", epochs=2, seed=1, **settings),
    }


def searches(folder):
    tf.config.experimental.enable_op_determinism()
    bundle = data.load("digits", batch_size=32, search_split=True, max_examples=600)
    out = {"validation_images": sum(len(y) for _, y in bundle.search_validation)}
    for strategy in (None, _strategy()):
        for name, tuner in _tuners(folder, strategy).items():
            tuner.search(
                bundle.search_weights,
                bundle.search_validation,
                architecture_data=bundle.search_architecture,
                steps_per_epoch=4,
                verbose=0,
            )
            run = out.setdefault(name, {})
            run["mirrored" if strategy is not None else "one_device"] = {
                "genotype": tuner.best_genotype(name=name).to_dict(),
                "scores": [trial.score for _, trial in sorted(tuner.oracle.trials.items())],
            }
    return out


if __name__ == "__main__":
    result = steps(sys.argv[2]) if sys.argv[1] == "steps" else searches(sys.argv[2])
    print(json.dumps(result))
