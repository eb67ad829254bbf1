"""Searching face networks: the weight-sharing tuners, each path scored by face verification.

The supernet trains on identity classification exactly as for any other dataset (softmax over the
identities: :class:`~bnas_tf.tuners.training.SupernetTrainer`); only the *score* of a sampled path
changes (STYLE "share the loop, vary the score"): instead of classification accuracy it is the 10-fold
verification accuracy (:mod:`bnas_tf.face.metrics`) on held-out pairs of the cosine similarity of the
path's globally pooled features (:meth:`SupernetTrainer.path_features`, the features before the
classifier). :class:`VerificationScore` is that hook (``SupernetTuner.score_paths``) as a mixin;
:class:`FaceOperationPruning` (P1, the paper's face search) and :class:`FaceChildParent` are the tuners; they
take the weight-sharing tuners' ``distribution_strategy=`` and ``sync_batch_norm=`` (data-parallel training on a
``tf.distribute`` strategy's replicas; the pair features are computed on the host's copy of the weights, with
BatchNorm statistics averaged over the replicas).
"""

from __future__ import annotations

import numpy as np

from bnas_tf.face.pairs import PairSet
from bnas_tf.tuners.child_parent import ChildParent
from bnas_tf.tuners.pruning import OperationPruning


class VerificationScore:
    """Tuner mixin: a path's measurement is its verification accuracy on ``verification_pairs``."""

    def __init__(self, *args, verification_pairs: PairSet, **kwargs):
        if not isinstance(verification_pairs, PairSet):
            raise TypeError(
                f"verification_pairs must be a bnas_tf.face.pairs.PairSet, got "
                f"{type(verification_pairs).__name__}; bnas_tf.face.data.load_pairs or "
                "pairs_from_dataset make one"
            )
        self.verification_pairs = verification_pairs
        super().__init__(*args, **kwargs)

    def score_paths(self, trainer, validation_data):
        pairs = self.verification_pairs
        if tuple(pairs.images.shape[1:]) != tuple(trainer.supernet.input_shape):
            raise ValueError(
                f"verification pair images are {tuple(pairs.images.shape[1:])} but the search trains on "
                f"{tuple(trainer.supernet.input_shape)}; load the pairs at the training image size"
            )
        return np.array([pairs.accuracy(features) for features in trainer.path_features(pairs.images)])

    def path_metrics(self, child_accuracy, parent_accuracy=None):
        metrics = super().path_metrics(child_accuracy, *([] if parent_accuracy is None else [parent_accuracy]))
        return [{**m, "verification_accuracy": float(a)} for m, a in zip(metrics, child_accuracy)]


class FaceOperationPruning(VerificationScore, OperationPruning):
    """SPEC P1 Algorithm 1 (selection likelihood, UCB for 1-bit) scored by verification accuracy."""


class FaceChildParent(VerificationScore, ChildParent):
    """SPEC P4's Child-Parent score z = A_C + β (A_P − A_C), with A = verification accuracy."""
