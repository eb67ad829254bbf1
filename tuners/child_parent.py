"""Child-Parent search (SPEC P4 Algorithm 1): a binarized child and its full-precision parent.

Both supernets train on the same sampled paths; a path's measurement is
z = A_C + β (A_P − A_C) (Eq. 1), its ops' indicator e = softmax over the edge
of the mean z (Eq. 2), and the worst op per edge is abandoned. ``beta=0``
reproduces P1's plain performance measure ("BNAS†").
"""

from __future__ import annotations

import numpy as np

from bnas_tf import arguments
from bnas_tf.space.losses import ChildParentKernelLoss
from bnas_tf.tuners import scores
from bnas_tf.tuners.sampling import SamplingOracle
from bnas_tf.tuners.supernet_tuner import SupernetTuner


class ChildParentOracle(SamplingOracle):
    """P4: indicator e(o) = softmax of the mean Child-Parent score z of each op."""

    objective_name = "score"

    def __init__(self, space, *, repetitions=3, beta=2.0, **kwargs):
        self.beta = float(beta)
        super().__init__(
            space, repetitions=repetitions, warmup_epochs=0, finetune_epochs=0, halve_candidates=False, **kwargs
        )

    def round_scores(self, kind, edge, remaining, mean_values, in_sampled):
        return scores.softmax_likelihood(np.nan_to_num(mean_values, nan=-np.inf))


class ChildParent(SupernetTuner):
    """KerasTuner tuner for :class:`ChildParentOracle`: trains a child and a parent supernet.

    ``kernel_loss_lambda`` (None: off) adds P4's kernel-level Child-Parent loss to the child's path training:
    ``L = L_CE + Σ MSE(H, Ĥ) + λ/2 Σ_s ||f_s − f̄_class(s)||²`` (Eq. 3-4) with λ = ``kernel_loss_lambda``,
    H the latent kernels, Ĥ what the 1-bit forward pass uses, f the pooled last features, f̄ the batch's class
    means of each sampled path (:class:`~bnas_tf.space.losses.ChildParentKernelLoss`).
    """

    has_parent = True

    def __init__(
        self,
        space,
        *,
        repetitions=3,
        beta=2.0,
        seed=None,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        deployment=None,
        kernel_loss_lambda=None,
        **kwargs,
    ):
        self.beta = float(beta)
        if kernel_loss_lambda is not None:
            arguments.number("kernel_loss_lambda", kernel_loss_lambda, minimum=0.0)
        self.kernel_loss_lambda = kernel_loss_lambda
        oracle = ChildParentOracle(
            space,
            repetitions=repetitions,
            beta=beta,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            deployment=deployment,
        )
        super().__init__(oracle, space, deployment=deployment, **kwargs)

    def trainer_settings(self, name):
        """The child trains with P4's kernel-level CP loss (Eq. 3-4) when ``kernel_loss_lambda`` is set; the
        parent, full precision, has no binarized kernels and trains on the cross-entropy."""
        settings = super().trainer_settings(name)
        if name == "child" and self.kernel_loss_lambda is not None:
            settings = dict(settings, kernel_loss=ChildParentKernelLoss(self.kernel_loss_lambda))
        return settings

    def path_metrics(self, child_accuracy, parent_accuracy):
        z = scores.child_parent_score(child_accuracy, parent_accuracy, self.beta)
        return [
            {"score": float(z_i), "val_accuracy": float(c), "child_accuracy": float(c), "parent_accuracy": float(p)}
            for z_i, c, p in zip(np.atleast_1d(z), child_accuracy, parent_accuracy)
        ]
