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
