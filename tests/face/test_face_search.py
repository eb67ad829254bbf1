"""The weight-sharing search scored by face verification: each sampled path's measurement is the 10-fold
verification accuracy of its pooled features on held-out pairs (SupernetTuner.score_paths hook)."""

import numpy as np
import pytest

from bnas_tf import data
from bnas_tf.face.data import pairs_from_dataset
from bnas_tf.face.tuners import FaceOperationPruning
from bnas_tf.space.supernet import KINDS, CellSpace

SPACE = CellSpace(op_set=["conv_3x3", "identity"], cells=2, channels=4, nodes=1, reduction_cells=[1])


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    bundle = data.load("digits", batch_size=32, search_split=True, max_examples=300)
    pairs = pairs_from_dataset(bundle.search_validation, name="held_out", num_pairs=100)
    tuner = FaceOperationPruning(
        SPACE,
        repetitions=2,  # 2 ops: one path a repetition (ceil(2 / 2)), so two sampled paths in all
        ucb=True,
        seed=1,
        binarization="W1/A1",
        verification_pairs=pairs,
        directory=str(tmp_path_factory.mktemp("face")),
        project_name="face",
    )
    tuner.search(bundle.search_weights, bundle.search_validation, steps_per_epoch=2, verbose=0)
    return tuner, pairs


def test_every_sampled_path_reports_its_verification_accuracy(searched):
    tuner, _ = searched
    trials = [t for t in tuner.oracle.trials.values() if t.hyperparameters.values.get("phase") == "sample"]
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for trial in trials:
        value = trial.metrics.get_last_value("verification_accuracy")
        assert 0.0 <= value <= 1.0 and value == trial.metrics.get_last_value("val_accuracy")
    assert tuner.best_genotype().keeps_all_edges


def test_path_features_match_each_path_run_alone_and_score_their_pairs(searched):
    tuner, pairs = searched
    trainer, edges = tuner.child, SPACE.num_edges
    both = {kind: [[0, 1]] * edges for kind in KINDS}
    trainer.supernet.set_paths(both, {kind: [[0, 1]] * edges for kind in KINDS})
    together = trainer.path_features(pairs.images, batch_size=40)
    assert together.shape == (2, len(pairs.images), SPACE.nodes * SPACE.channels * 2)  # last cell: reduced, 2C per node
    scores = tuner.score_paths(trainer, None)
    for op in (0, 1):
        trainer.supernet.set_paths({kind: [[op]] * edges for kind in KINDS}, {kind: [[0]] * edges for kind in KINDS})
        alone = trainer.path_features(pairs.images)[0]
        np.testing.assert_allclose(together[op], alone, rtol=1e-4, atol=1e-4)
        assert scores[op] == pytest.approx(pairs.accuracy(alone))


def test_pairs_must_be_a_pair_set():
    with pytest.raises(TypeError, match="verification_pairs must be a bnas_tf.face.pairs.PairSet"):
        FaceOperationPruning(SPACE, verification_pairs=np.zeros((2, 16, 16, 1)), directory="/tmp/unused")


def test_child_parent_scores_both_supernets_by_verification(tmp_path):
    from bnas_tf.face.tuners import FaceChildParent

    bundle = data.load("digits", batch_size=32, search_split=True, max_examples=200)
    pairs = pairs_from_dataset(bundle.search_validation, name="held_out", num_pairs=40)
    tuner = FaceChildParent(
        SPACE,
        repetitions=1,
        beta=2.0,
        seed=0,
        binarization="W1/A1",
        verification_pairs=pairs,
        directory=str(tmp_path),
        project_name="cp",
    )
    tuner.search(bundle.search_weights, bundle.search_validation, steps_per_epoch=1, verbose=0)
    for trial in tuner.oracle.trials.values():
        child, parent = (trial.metrics.get_last_value(k) for k in ("child_accuracy", "parent_accuracy"))
        assert trial.metrics.get_last_value("verification_accuracy") == child
        assert trial.metrics.get_last_value("score") == pytest.approx(child + 2.0 * (parent - child))
