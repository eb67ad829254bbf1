"""Differentiable binary search (SPEC P2): DARTS bilevel search with diversity and Zeroise.

Each epoch is one trial: the tuner trains the supernet's weights on the
weights half and α on the architecture half (first-order DARTS), with the
diversity regulariser L = L_S − λ H(α) e^(−t/τ) (P2 Eq. 5, λ = 1, τ = 7.7),
and reports α. After the last epoch the oracle discretises: on every edge it
picks the op by the Zeroise rule max(α_z / γ, α_1, ..., α_n) (P2 Eq. 4, on
softmax weights as P2's code does), then keeps per node the 2 strongest
incoming edges by their strongest non-Zeroise weight (DARTS); a kept edge
whose choice is Zeroise stays Zeroise in the final network.

An epoch that fails (a loss that is not finite, or an error after
``max_retries_per_trial`` retries) gives no α to discretise: the search stops
with :class:`~bnas_tf.tuners.failures.SearchStopped` naming the cause and the
fix, and the epoch is not counted, so searching again in the same project runs
it again from the last committed weights.
"""

from __future__ import annotations

import dataclasses
import json

import keras_tuner as kt
import numpy as np

from bnas_tf import arguments
from bnas_tf.space.genotype import Genotype
from bnas_tf.space.networks import default_reduction_cells
from bnas_tf.space.supernet import KINDS, CellSpace
from bnas_tf.tuners import deployment as deployment_lib
from bnas_tf.tuners import failures, scores
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.keras_tuner_internals import TrialStatus
from bnas_tf.tuners.state import AtomicOracleState
from bnas_tf.tuners.supernet_tuner import SupernetTuner


def discretise(space: CellSpace, alpha: dict, gamma: float = 3.0, name: str | None = None) -> Genotype:
    """The P2 genotype from α logits (``alpha[kind][edge][op]``): Zeroise rule per edge, 2 inputs per node."""
    zero_index = space.op_set.index("zero") if "zero" in space.op_set else None
    cells = {}
    for kind in KINDS:
        weights = [scores.softmax_likelihood(np.asarray(a, dtype=float)) for a in alpha[kind]]
        edges, index = [], 0
        for node in range(2, space.nodes + 2):
            node_edges = []
            for source in range(node):
                w = weights[index]
                strength = max(w[i] for i in range(len(w)) if i != zero_index) if zero_index is not None else w.max()
                choice = scores.zeroise_select(w, zero_index, gamma)
                node_edges.append((strength, source, space.op_set[choice]))
                index += 1
            kept = sorted(node_edges, key=lambda e: (-e[0], e[1]))[:2]
            edges += [(op, source) for _, source, op in sorted(kept, key=lambda e: e[1])]
        cells[kind] = edges
    return Genotype(
        normal=cells["normal"], reduce=cells["reduce"], op_set=list(space.op_set), nodes=space.nodes, name=name
    )


class DifferentiableOracle(AtomicOracleState, kt.Oracle):
    """P2: ``epochs`` mixed-mode search epochs, one trial each, then discretisation.

    Every trial is one epoch of first-order DARTS with the diversity regulariser
    ``L = L_S − λ H(α) e^(−t/τ)`` (SPEC P2 Eq. 5) and reports α; :meth:`genotype` discretises the last α
    with the Zeroise rule (Eq. 4) and 2 inputs per node (:func:`discretise`). Its objective is
    ``val_accuracy``.

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched (P2: ``BINARY_OPS`` with
            ``inter_cell_skip=True``).
        epochs: search epochs, a positive integer (default 50).
        diversity_lambda: λ of Eq. 5 (default 1.0, P2's).
        diversity_tau: τ of Eq. 5 (default 7.7, P2's).
        gamma: γ >= 1 of the Zeroise rule; larger keeps fewer Zeroise edges (default 3.0, P2's code).
        seed: non-negative int or None (default).
        max_retries_per_trial: retries of a raising epoch (default 0), KerasTuner's.
        max_consecutive_failed_trials: KerasTuner's (default 3); a failed epoch stops the search anyway (it
            leaves no α to discretise).
        **kwargs: ``keras_tuner.Oracle``'s.

    Raises:
        ValueError: ``epochs`` not a positive integer, ``gamma`` < 1, or a bad seed.
    """

    def __init__(
        self,
        space: CellSpace,
        *,
        epochs: int = 50,
        diversity_lambda: float = 1.0,
        diversity_tau: float = 7.7,
        gamma: float = 3.0,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        **kwargs,
    ):
        arguments.count("epochs", epochs)
        if gamma < 1:
            raise ValueError(f"gamma must be >= 1 (got {gamma}): larger gamma keeps fewer Zeroise edges (P2 Eq. 4)")
        self._check_seed(seed)
        super().__init__(
            objective=kt.Objective("val_accuracy", "max"),
            max_trials=None,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **kwargs,
        )
        self._keep_seed(seed)
        self.space, self.epochs, self.gamma = space, epochs, float(gamma)
        self.diversity_lambda, self.diversity_tau = float(diversity_lambda), float(diversity_tau)
        self.epoch, self.running, self.alpha, self.log = 0, None, None, []

    def get_state(self):
        state = super().get_state()
        state["search"] = {"epoch": self.epoch, "running": self.running, "alpha": self.alpha, "log": self.log}
        return state

    def set_state(self, state):
        super().set_state(state)
        for name, value in state["search"].items():
            setattr(self, name, value)

    def populate_space(self, trial_id):
        if self.epoch >= self.epochs:
            return {"status": TrialStatus.STOPPED, "values": None}
        if self.running is not None:
            return {"status": TrialStatus.IDLE, "values": None}
        self.running = trial_id
        all_ops = list(range(self.space.num_ops))
        remaining = {kind: [all_ops] * self.space.num_edges for kind in KINDS}
        return {
            "status": TrialStatus.RUNNING,
            "values": {
                "phase": "search",
                "epoch": self.epoch,
                "train_alpha": True,
                "progress": self.epoch / self.epochs,
                "diversity_weight": scores.diversity_weight(self.epoch, self.diversity_lambda, self.diversity_tau),
                "remaining": json.dumps(remaining),
            },
        }

    def end_trial(self, trial):
        super().end_trial(trial)
        trial = self.trials[trial.trial_id]
        if trial.trial_id in internals.retry_queue(self):
            return self.save()
        self.running = None
        if trial.status != TrialStatus.COMPLETED:  # not counted: searching again runs this epoch again
            self.save()
            raise failures.stop(self, f"search epoch {self.epoch} failed", [trial])
        self.alpha = {
            kind: [
                [float(trial.metrics.get_last_value(f"alpha_{kind}_{e}_{op}")) for op in range(self.space.num_ops)]
                for e in range(self.space.num_edges)
            ]
            for kind in KINDS
        }
        self.log.append({"epoch": self.epoch, "val_accuracy": trial.score, "alpha": self.alpha})
        self.epoch += 1
        self.save()

    def _check_consecutive_failures(self):
        """A failed epoch stops the search in :meth:`end_trial`, once the state is saved (KerasTuner's check would
        raise before)."""

    def genotype(self, name=None) -> Genotype:
        """The discretised α of the last finished epoch (a ValueError before one has finished)."""
        if self.alpha is None:
            raise ValueError("no search epoch has finished: there is no α to discretise; run search() first")
        return discretise(self.space, self.alpha, self.gamma, name=name)


def _alpha_of(trial_metrics, space: CellSpace) -> dict:
    return {
        kind: [
            [float(trial_metrics(f"alpha_{kind}_{e}_{op}")) for op in range(space.num_ops)]
            for e in range(space.num_edges)
        ]
        for kind in KINDS
    }


class Differentiable(SupernetTuner):
    """KerasTuner tuner for :class:`DifferentiableOracle` (P2; use ``inter_cell_skip=True`` spaces).

    ``deployment=`` records every epoch's discretised genotype's costs. With a budget,
    :meth:`best_genotype` returns the last epoch's genotype that is within it (the final one when it is).
    A penalty λ joins the α loss as a differentiable expected cost (FBNet / ProxylessNAS style):
    ``λ Σ_edges Σ_ops softmax(α)_op · cost(op on that edge) / base_cost``, with per-edge op costs read from
    ``lce_profile`` of the one-op-everywhere networks (:func:`~bnas_tf.tuners.deployment.edge_costs`; the
    cost must be one of ``binary_macs``, ``float_macs``, ``fallback_macs``, ``size_bytes``, whose
    per-edge share is the edge's constants).

    SPEC P2 Eq. 4-5: ``search(train_data, validation_data, architecture_data=None,
    steps_per_epoch=None)`` trains the supernet's weights on ``train_data`` and α on
    ``architecture_data`` (default ``train_data``) one epoch per trial; ``best_genotype()`` returns the
    discretised :class:`~bnas_tf.space.genotype.Genotype`.

    Args:
        space: the :class:`~bnas_tf.space.supernet.CellSpace` searched.
        epochs, diversity_lambda, diversity_tau, gamma, seed, max_retries_per_trial,
            max_consecutive_failed_trials: see :class:`DifferentiableOracle` (defaults 50, 1.0, 7.7, 3.0,
            None, 0, 3).
        **kwargs: ``deployment`` (a :class:`~bnas_tf.tuners.DeploymentObjective` or its config dict; see
            above), then :class:`~bnas_tf.tuners.SupernetTuner`'s ``binarization`` (default
            ``"W1/A32"``), ``num_classes`` (default: read from the validation labels), ``learning_rate``
            (SGD with momentum, cosine decay; 0.025), ``momentum`` (0.9), ``weight_decay`` (3e-4 here,
            DARTS's), ``alpha_learning_rate`` (Adam on α; 3e-4), ``partial_channels`` (1),
            ``steps_per_epoch``, ``distribution_strategy`` (a ``tf.distribute.Strategy``: data-parallel
            steps, the batch size is global; None), ``sync_batch_norm`` (BatchNorm statistics over all
            replicas; False), then ``keras_tuner.Tuner``'s (``directory``, ``project_name``,
            ``overwrite``, ...).

    Raises:
        TypeError: ``deployment`` is not an objective or dict.
        ValueError: see :class:`DifferentiableOracle`; also a deployment penalty whose cost is a function
            (it does not split over edges), or train or architecture batches that do not split evenly over a
            ``distribution_strategy``'s replicas (raised by ``search``).
    """

    def __init__(
        self,
        space: CellSpace,
        *,
        epochs: int = 50,
        diversity_lambda: float = 1.0,
        diversity_tau: float = 7.7,
        gamma: float = 3.0,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        **kwargs,
    ):
        deployment = deployment_lib.get(kwargs.get("deployment"))
        if deployment is not None and deployment.penalty and deployment.cost not in deployment_lib.ROW_FIELDS:
            raise ValueError(
                "Differentiable's deployment penalty is a differentiable sum of per-edge op costs: "
                f"name one of {', '.join(deployment_lib.ROW_FIELDS)} as the cost (a function of the "
                "whole profile does not split over edges), or use budget="
            )
        self._op_costs = None
        oracle = DifferentiableOracle(
            space,
            epochs=epochs,
            diversity_lambda=diversity_lambda,
            diversity_tau=diversity_tau,
            gamma=gamma,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        kwargs.setdefault("weight_decay", 3e-4)
        self._gamma = float(gamma)
        super().__init__(oracle, space, **kwargs)

    def mixed_cost_settings(self) -> dict:
        if self.deployment is None or not self.deployment.penalty:
            return {}
        return {"cost_weight": self.deployment.penalty, "op_costs": self.op_cost_table()}

    def op_cost_table(self) -> dict:
        """``{kind: [[cost of op on edge / base_cost for op] for edge]}`` from the one-op-everywhere networks."""
        if self._op_costs is None:
            settings = self.deployed_settings()
            reductions = settings["reduction_cells"]
            if reductions is None:
                reductions = default_reduction_cells(settings["cells"])
            edges, ops = self.space.num_edges, self.space.num_ops
            table = {kind: np.zeros((edges, ops)) for kind in KINDS}
            for op, name in enumerate(self.space.op_set):
                if name == "zero":
                    continue  # no layers: costs nothing
                rows = self.candidate_costs().profile(self.uniform_genotype(op))["layers"]  # base_cost's networks
                for kind, costs in deployment_lib.edge_costs(rows, self.deployment.cost, reductions, edges).items():
                    table[kind][:, op] = costs
            base = self.base_cost()
            self._op_costs = {kind: (t / base).tolist() for kind, t in table.items()}
        return self._op_costs

    def mixed_costs(self, trial, metrics) -> dict:
        if self.deployment is None:
            return {}
        return self.candidate_costs().metrics(self._epoch_genotype(metrics.__getitem__))

    def _epoch_genotype(self, metric, name=None):
        oracle = self.oracle if isinstance(self.oracle, kt.Oracle) else None
        gamma = oracle.gamma if oracle is not None else self._gamma
        return discretise(self.space, _alpha_of(metric, self.space), gamma, name=name)

    def trial_candidate(self, trial):
        return self._epoch_genotype(trial.metrics.get_last_value, name=f"epoch_{trial.hyperparameters.values['epoch']}")

    def best_genotype(self, name=None):
        name = name or self.project_name
        final = self.search_oracle().genotype(name=name)
        if self.deployment is None or self.deployment.budget is None:
            return final
        epochs = sorted(
            (t for t in self.oracle.trials.values() if t.status == TrialStatus.COMPLETED),
            key=lambda t: -t.hyperparameters.values["epoch"],
        )
        return self.within_budget(
            [final] + [dataclasses.replace(self.trial_candidate(t), name=name) for t in epochs],
            "the final discretised genotype",
        )

    def get_best_hyperparameters(self, num_trials=1):
        return [t.hyperparameters for t in self.oracle.get_best_trials(num_trials)]

    def search_log(self):
        return list(self.search_oracle().log)
