"""Performance-based successive operation pruning (SPEC P1 Algorithm 1), with its UCB variant (P1 Eq. 10).

``OperationPruningOracle`` scores an edge's ops with the selection likelihood
(Eq. 7-9) and, with ``ucb=True``, adds the upper-confidence bonus (Eq. 10);
then abandons the argmin (Eq. 11). With a PC-DARTS warm-up (``warmup_epochs``
L > 0) the round samples only O_smaller, the ⌈K/2⌉ ops with the smallest α;
``ucb=True`` follows P1's 1-bit setting and skips the warm-up, so O_smaller = O.
"""

from __future__ import annotations

import numpy as np

from bnas_tf.tuners import scores
from bnas_tf.tuners.sampling import SamplingOracle
from bnas_tf.tuners.supernet_tuner import SupernetTuner


class OperationPruningOracle(SamplingOracle):
    """P1: selection likelihood s(o) per op, updated each round, argmin abandoned."""

    def __init__(
        self,
        space,
        *,
        repetitions=3,
        warmup_epochs=5,
        warmup_weights_only=3,
        finetune_epochs=1,
        ucb=False,
        delta=2.0,
        **kwargs,
    ):
        self.ucb = bool(ucb)
        self.delta = float(delta)
        if self.ucb:
            warmup_epochs = 0  # SPEC P1 step 2d: the 1-bit (UCB) search skips the warm-up, O_smaller = O
        super().__init__(
            space,
            repetitions=repetitions,
            warmup_epochs=warmup_epochs,
            warmup_weights_only=warmup_weights_only,
            finetune_epochs=finetune_epochs,
            halve_candidates=not self.ucb,
            **kwargs,
        )

    def round_scores(self, kind, edge, remaining, mean_values, in_candidates):
        previous = np.array([self.likelihood[kind][edge][op] for op in remaining])
        s = scores.update_likelihood(previous, np.nan_to_num(mean_values, nan=0.0), in_candidates)
        if self.ucb:
            total = sum(self.times_selected[kind][edge])
            counts = np.array([self.times_selected[kind][edge][op] for op in remaining])
            s = scores.ucb_bonus(s, total, counts, delta=self.delta)
        return s


class OperationPruning(SupernetTuner):
    """KerasTuner tuner for :class:`OperationPruningOracle` over a weight-sharing supernet."""

    def __init__(
        self,
        space,
        *,
        repetitions=3,
        warmup_epochs=5,
        warmup_weights_only=3,
        finetune_epochs=1,
        ucb=False,
        delta=2.0,
        seed=None,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        deployment=None,
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
