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
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import scores
from bnas_tf.tuners.deployment import DeploymentObjective
from bnas_tf.tuners.sampling import SamplingOracle
from bnas_tf.tuners.supernet_tuner import SupernetTuner


class ChildParentOracle(SamplingOracle):
    """P4: indicator e(o) = softmax of the mean Child-Parent score z of each op.

    Each pruning round samples every remaining op of every edge once per repetition (SPEC P4 Algorithm 1),
    scores each path by z = A_C + β (A_P − A_C) (Eq. 1), sets each op's indicator to the softmax over its
    edge of the mean z (Eq. 2) and abandons the worst op per edge, until one op per edge is left. There is
    no warm-up and no fine-tuning between rounds. Its objective is ``score`` (``deployed_score`` with a
    deployment penalty).

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched (at least 2 ops per edge).
        repetitions: T, sampled groups of paths per round, a positive integer (default 3).
        beta: β of Eq. 1 (default 2.0, P4's CIFAR value; 0 is P1's plain accuracy, "BNAS†").
        **kwargs: ``seed`` (non-negative int or None), ``max_retries_per_trial``,
            ``max_consecutive_failed_trials`` (counted in groups) and ``deployment`` (a
            :class:`~bnas_tf.tuners.DeploymentObjective`, its config dict or None) of
            :class:`~bnas_tf.tuners.sampling.SamplingOracle`, then ``keras_tuner.Oracle``'s.

    Raises:
        TypeError: ``space`` is not a ``CellSpace``, or ``deployment`` is not an objective or dict.
        ValueError: fewer than 2 ops per edge, ``repetitions`` not a positive integer, or a bad seed.
    """

    objective_name = "score"

    def __init__(self, space: CellSpace, *, repetitions: int = 3, beta: float = 2.0, **kwargs):
        self.beta = arguments.finite_number("beta", beta)
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

    Both supernets (the child with ``binarization``, the parent its full-precision twin) train on the
    same sampled paths; each path reports ``score`` (z, SPEC P4 Eq. 1), ``val_accuracy`` and
    ``child_accuracy`` (the child's), and ``parent_accuracy``. ``search(train_data, validation_data,
    architecture_data=None, steps_per_epoch=None)`` runs the search; ``best_genotype()`` returns the
    op left on every edge as a :class:`~bnas_tf.space.genotype.Genotype`.

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched.
        repetitions, beta: see :class:`ChildParentOracle` (defaults 3 and 2.0).
        seed: non-negative int or None (default); fixes the oracle's draws and the supernets' initial
            weights (the same weights every run also need ``bnas_tf.enable_determinism``).
        max_retries_per_trial: retries of a raising group (default 0).
        max_consecutive_failed_trials: failed groups in a row that stop the search (default 3).
        deployment: a :class:`~bnas_tf.tuners.DeploymentObjective` (or its config dict) costing every
            sampled path on the network it becomes: budget, penalty or only recorded (default None).
        kernel_loss_lambda: λ of the kernel-level CP loss above, a number >= 0; None (default) leaves the
            loss off.
        **kwargs: :class:`~bnas_tf.tuners.SupernetTuner`'s ``binarization`` (default ``"W1/A32"``),
            ``num_classes`` (default: read from the validation labels), ``learning_rate`` (SGD with
            momentum, cosine decay over the search; default 0.025), ``momentum`` (0.9),
            ``weight_decay`` (5e-4), ``alpha_learning_rate`` (3e-4), ``partial_channels`` (1),
            ``steps_per_epoch`` (default: the dataset's length), ``distribution_strategy`` (a
            ``tf.distribute.Strategy``: data-parallel steps, the batch size is global; None),
            ``sync_batch_norm`` (BatchNorm statistics over all replicas; False), then ``keras_tuner.Tuner``'s
            (``directory``, ``project_name``, ``overwrite``, ...).

    Raises:
        TypeError: see :class:`ChildParentOracle`.
        ValueError: see :class:`ChildParentOracle`; also a ``kernel_loss_lambda`` that is not a finite
            number >= 0, or train or architecture batches that do not split evenly over a
            ``distribution_strategy``'s replicas (raised by ``search``).
    """

    has_parent = True

    def __init__(
        self,
        space: CellSpace,
        *,
        repetitions: int = 3,
        beta: float = 2.0,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        deployment: DeploymentObjective | dict | None = None,
        kernel_loss_lambda: float | None = None,
        **kwargs,
    ):
        self.beta = arguments.finite_number("beta", beta)
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
