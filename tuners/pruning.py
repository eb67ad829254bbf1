"""Performance-based successive operation pruning (SPEC P1 Algorithm 1), with its UCB variant (P1 Eq. 10).

``OperationPruningOracle`` scores an edge's ops with the selection likelihood
(Eq. 7-9) and, with ``ucb=True``, adds the upper-confidence bonus (Eq. 10);
then abandons the argmin (Eq. 11). Each repetition trains ⌈K/2⌉ sampled paths.
With a PC-DARTS warm-up (``warmup_epochs`` L > 0) the round samples only
O_smaller, the ⌈K/2⌉ ops with the smallest α, each once per repetition;
``ucb=True`` follows P1's 1-bit setting and skips the warm-up, so O_smaller = O
and a repetition samples about half of each edge's ops: the counts n_k differ,
and the bonus favours the ops sampled least. An op no path sampled in a round
gets Eq. 8's s_larger, as an op outside O_smaller does.
"""

from __future__ import annotations

import numpy as np

from bnas_tf import arguments
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import scores
from bnas_tf.tuners.deployment import DeploymentObjective
from bnas_tf.tuners.sampling import SamplingOracle
from bnas_tf.tuners.supernet_tuner import SupernetTuner


class OperationPruningOracle(SamplingOracle):
    """P1: selection likelihood s(o) per op, updated each round, argmin abandoned.

    Each pruning round trains ``repetitions`` groups of ⌈K/2⌉ paths, no two of a group sharing an op
    (SPEC P1 Algorithm 1), turns the paths' mean accuracies into the selection likelihood (Eq. 7-9;
    plus the UCB bonus of Eq. 10 with ``ucb=True``) and abandons each edge's argmin (Eq. 11), until one
    op per edge is left. Its objective is ``val_accuracy`` (``deployed_val_accuracy`` with a deployment
    penalty).

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched (at least 2 ops per edge).
        repetitions: T, sampled groups of paths per round, a positive integer (P1: 3).
        warmup_epochs: L, PC-DARTS mixed-mode warm-up epochs before the first round; after it a round
            samples only O_smaller, the ⌈K/2⌉ smallest-α ops (default 5; forced to 0 with ``ucb=True``).
        warmup_weights_only: the first warm-up epochs train the weights only, not α (default 3).
        finetune_epochs: mixed-mode epochs between pruning rounds (default 1).
        ucb: P1's 1-bit search: add the UCB bonus (Eq. 10) and skip the warm-up, so O_smaller = O
            (default False).
        delta: δ, the weight of Eq. 10's bonus (default 2.0).
        **kwargs: ``seed`` (non-negative int or None), ``max_retries_per_trial``,
            ``max_consecutive_failed_trials`` (counted in groups) and ``deployment`` (a
            :class:`~bnas_tf.tuners.DeploymentObjective`, its config dict or None) of
            :class:`~bnas_tf.tuners.sampling.SamplingOracle`, then ``keras_tuner.Oracle``'s.

    Raises:
        TypeError: ``space`` is not a ``CellSpace``, or ``deployment`` is not an objective or dict.
        ValueError: fewer than 2 ops per edge, a count that is not an integer of the allowed range, or a
            bad seed.
    """

    def __init__(
        self,
        space: CellSpace,
        *,
        repetitions: int = 3,
        warmup_epochs: int = 5,
        warmup_weights_only: int = 3,
        finetune_epochs: int = 1,
        ucb: bool = False,
        delta: float = 2.0,
        **kwargs,
    ):
        self.ucb = bool(ucb)
        self.delta = arguments.finite_number("delta", delta)
        if self.ucb:
            warmup_epochs = 0  # SPEC P1 step 2d: the 1-bit (UCB) search skips the warm-up, O_smaller = O
        super().__init__(
            space,
            repetitions=repetitions,
            warmup_epochs=warmup_epochs,
            warmup_weights_only=warmup_weights_only,
            finetune_epochs=finetune_epochs,
            halve_candidates=not self.ucb,
            half_paths=True,
            **kwargs,
        )

    def round_scores(self, kind, edge, remaining, mean_values, in_sampled):
        previous = np.array([self.likelihood[kind][edge][op] for op in remaining])
        s = scores.update_likelihood(previous, np.nan_to_num(mean_values, nan=0.0), in_sampled)
        if self.ucb:
            total = sum(self.times_selected[kind][edge])
            counts = np.array([self.times_selected[kind][edge][op] for op in remaining])
            selected = counts > 0  # an op never selected has an infinite bound: no bonus, and it is kept (below)
            s[selected] = scores.ucb_bonus(s[selected], total, counts[selected], delta=self.delta)
        return s

    def kept_this_round(self, kind, edge, remaining):
        """With UCB, an op no path has selected yet cannot be abandoned: its bound sqrt(2 ln N / n_k) is
        infinite (only when a round's ⌈K/2⌉·T samples do not reach every op, e.g. T = 1)."""
        if not self.ucb:
            return super().kept_this_round(kind, edge, remaining)
        return np.array([self.times_selected[kind][edge][op] == 0 for op in remaining])


class OperationPruning(SupernetTuner):
    """KerasTuner tuner for :class:`OperationPruningOracle` over a weight-sharing supernet.

    SPEC P1's successive operation pruning (Algorithm 1, Eq. 7-9 and 11; Eq. 10 with ``ucb=True``).
    ``search(train_data, validation_data, architecture_data=None, steps_per_epoch=None)`` trains each
    group of sampled paths together in one graph for one epoch and scores every path on
    ``validation_data``; ``best_genotype()`` returns the op left on every edge as a
    :class:`~bnas_tf.space.genotype.Genotype`.

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched.
        repetitions, warmup_epochs, warmup_weights_only, finetune_epochs, ucb, delta: see
            :class:`OperationPruningOracle` (defaults 3, 5, 3, 1, False, 2.0).
        seed: non-negative int or None (default); fixes the oracle's draws and the supernet's initial
            weights (the same weights every run also need ``bnas_tf.enable_determinism``).
        max_retries_per_trial: retries of a raising group (default 0).
        max_consecutive_failed_trials: failed groups in a row that stop the search (default 3).
        deployment: a :class:`~bnas_tf.tuners.DeploymentObjective` (or its config dict) costing every
            sampled path on the network it becomes: budget, penalty or only recorded (default None).
        **kwargs: :class:`~bnas_tf.tuners.SupernetTuner`'s ``binarization`` (default ``"W1/A32"``),
            ``num_classes`` (default: read from the validation labels), ``learning_rate`` (SGD with
            momentum, cosine decay over the search; default 0.025), ``momentum`` (0.9),
            ``weight_decay`` (5e-4), ``alpha_learning_rate`` (Adam on α; 3e-4), ``partial_channels``
            (PC-DARTS' q; 1), ``steps_per_epoch`` (default: the dataset's length),
            ``distribution_strategy`` (a ``tf.distribute.Strategy``: data-parallel steps, the batch size is
            global; None), ``sync_batch_norm`` (BatchNorm statistics over all replicas; False), then
            ``keras_tuner.Tuner``'s (``directory``, ``project_name``, ``overwrite``, ...).

    Raises:
        TypeError: see :class:`OperationPruningOracle`.
        ValueError: see :class:`OperationPruningOracle`; also train or architecture batches that do not split
            evenly over a ``distribution_strategy``'s replicas (raised by ``search``).
    """

    def __init__(
        self,
        space: CellSpace,
        *,
        repetitions: int = 3,
        warmup_epochs: int = 5,
        warmup_weights_only: int = 3,
        finetune_epochs: int = 1,
        ucb: bool = False,
        delta: float = 2.0,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        deployment: DeploymentObjective | dict | None = None,
        **kwargs,
    ):
        oracle = OperationPruningOracle(
            space,
            repetitions=repetitions,
            warmup_epochs=warmup_epochs,
            warmup_weights_only=warmup_weights_only,
            finetune_epochs=finetune_epochs,
            ucb=ucb,
            delta=delta,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            deployment=deployment,
        )
        super().__init__(oracle, space, deployment=deployment, **kwargs)
