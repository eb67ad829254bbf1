"""The Tuner side of weight-sharing searches: owns the supernet weights and runs trials.

A :class:`SamplingOracle` hands out one sampled path per trial, a whole
group (one repetition: every candidate op of every edge exactly once) to one
tuner. The tuner collects the group, trains its paths together in one routed
graph for one epoch each (:mod:`bnas_tf.tuners.training`), evaluates every
path on the same validation samples, checkpoints the supernet, and only then
reports the trials, so a finished trial always has its weights on disk.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import time
import weakref

import keras_tuner as kt
import numpy as np
import tensorflow as tf

from bnas_tf import arguments
from bnas_tf.space.genotype import Genotype
from bnas_tf.space.networks import build_network
from bnas_tf.space.quantizers import get as get_binarization
from bnas_tf.space.supernet import KINDS, CellSpace, Supernet
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.deployment import DEPLOYED_PREFIX, DeploymentAware, report_rejection
from bnas_tf.tuners.keras_tuner_internals import BaseTuner, TrialStatus
from bnas_tf.tuners.replicas import check_batch, replicas_of
from bnas_tf.tuners.sampling import SLOT, edge_name
from bnas_tf.tuners.state import AtomicTunerState, recovery
from bnas_tf.tuners.training import SupernetTrainer, batch_size_of
from bnas_tf.tuners.workers import is_chief, lost_worker, worker_directory

IDLE_SLEEP_SECONDS = 0.2


def _collect():
    """Collect once per trial, then freeze what survives. Traced graphs hold millions of Python objects;
    with automatic collection on, each trace triggered full collections that rescanned them all (measured:
    half the wall time of a small search)."""
    gc.collect()
    gc.freeze()


def _check_dataset(data, what: str):
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(
            f"{what} must be a tf.data.Dataset of (images, labels) batches, got {type(data).__name__}; "
            f"bnas_tf.data.load(...) or bnas_tf.data.from_arrays(...) make one"
        )
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2 or len(spec[0].shape) != 4:
        raise ValueError(
            f"{what} must yield (images, labels) batches with images of rank 4 (batch, H, W, C); "
            f"got element_spec {spec}"
        )
    if not spec[0].dtype.is_floating or not (spec[1].dtype.is_integer and len(spec[1].shape) == 1):
        raise ValueError(
            f"{what} must yield float images and 1-D integer class ids, got images {spec[0].dtype.name} "
            f"and labels {spec[1].dtype.name} of shape {spec[1].shape}; bnas_tf.data.from_arrays(x, y) "
            "scales images and checks labels"
        )
    return data


def _check_same_images(data, reference, what: str):
    shape, expected = data.element_spec[0].shape[1:], reference.element_spec[0].shape[1:]
    if shape != expected:
        raise ValueError(
            f"{what} has images of shape {tuple(shape)} but train_data has {tuple(expected)}; "
            "load every part of the search at the same image_size"
        )


class SupernetTuner(AtomicTunerState, DeploymentAware, BaseTuner):
    """Runs a :class:`SamplingOracle` search over a :class:`Supernet` of ``space``.

    ``deployment=`` (a :class:`~bnas_tf.tuners.DeploymentObjective`) costs every sampled path on the
    network it becomes (``build_network`` with the space's settings and the objective's ``network``
    overrides): paths over its budget fail before training, a penalty makes the oracle maximise
    ``deployed_<objective>``, and :meth:`best_genotype` never returns an over-budget architecture.

    ``distribution_strategy=`` (any ``tf.distribute.Strategy``; None, the default: one device) trains and
    evaluates the supernets data-parallel on the strategy's replicas (:mod:`~bnas_tf.tuners.replicas`): the
    batch size is the global batch of each path, as the papers' batch sizes are; each replica trains on
    batch / replicas rows of every path, so it must divide evenly (checked before training). BatchNorm
    statistics are each replica's own; ``sync_batch_norm=True`` computes them over the global batch
    (``SyncBatchNormalization``), which makes the steps those of one device up to float rounding. With
    several workers (``MultiWorkerMirroredStrategy``) every worker runs the same search (the same seed, the
    same all-reduced scores, so the same oracle decisions); the chief's folder holds the search state and
    checkpoints, the others work in a temporary copy deleted at the end, and a worker that stops answering
    (after the strategy's ``CommunicationOptions(timeout_seconds=...)``) stops the search with a RuntimeError:
    starting every worker again resumes it from the last checkpoint.
    """

    has_parent = False

    def __init__(
        self,
        oracle,
        space: CellSpace,
        *,
        binarization="W1/A32",
        num_classes: int | None = None,
        learning_rate=0.025,
        momentum=0.9,
        weight_decay=5e-4,
        alpha_learning_rate=3e-4,
        partial_channels: int = 1,
        steps_per_epoch: int | None = None,
        deployment=None,
        distribution_strategy: tf.distribute.Strategy | None = None,
        sync_batch_norm: bool = False,
        **kwargs,
    ):
        self.space = space
        self._setup_deployment(deployment)
        self.input_shape = None
        self.binarization = get_binarization(binarization)
        self.num_classes = num_classes
        self.training_settings = dict(
            learning_rate=arguments.finite_number("learning_rate", learning_rate, strict=True),
            momentum=arguments.finite_number("momentum", momentum),
            weight_decay=arguments.finite_number("weight_decay", weight_decay),
            alpha_learning_rate=arguments.finite_number("alpha_learning_rate", alpha_learning_rate),
        )
        self.partial_channels = partial_channels
        self.steps_per_epoch = steps_per_epoch
        self.child = self.parent = None
        replicas_of(distribution_strategy)  # checks it
        if not isinstance(sync_batch_norm, bool):
            raise TypeError(f"sync_batch_norm must be True or False, got {sync_batch_norm!r}")
        self.distribution_strategy = distribution_strategy
        self.sync_batch_norm = sync_batch_norm
        self.is_chief = is_chief(distribution_strategy)
        if not self.is_chief:  # every worker runs the same search; only the chief's folder is kept
            kwargs["directory"] = worker_directory(kwargs.get("directory"), kwargs.get("project_name"))
            weakref.finalize(self, shutil.rmtree, kwargs["directory"], ignore_errors=True)
        super().__init__(oracle, hypermodel=None, **kwargs)

    def run_trial(self, trial, *args, **kwargs):  # trials run in groups: see search()
        raise NotImplementedError("SupernetTuner runs trials through search()")

    # --- networks ---------------------------------------------------------------
    def _build(self, train_data, validation_data):
        if self.child is not None:
            return
        input_shape = tuple(int(d) for d in train_data.element_spec[0].shape[1:])
        self.input_shape = input_shape
        if int(train_data.cardinality()) == 0:  # not iterated here: that would move a reshuffling dataset's order
            raise ValueError("train_data is empty: pass a dataset with at least one batch")
        labels = [y.numpy().ravel() for _, y in validation_data]
        if not labels:
            raise ValueError("validation_data is empty: every sampled path is scored on it; pass at least one batch")
        labels = np.concatenate(labels)
        if self.num_classes is None:
            self.num_classes = max(int(labels.max()) + 1, 2)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            bad = labels.max() if labels.max() >= self.num_classes else labels.min()
            raise ValueError(
                f"validation_data has label {int(bad)} "
                f"outside 0..{self.num_classes - 1}; pass num_classes= the number of classes, or "
                "labels 0..num_classes-1"
            )
        # Keras initialisers draw from the global generator: seed it so a seeded search builds the same supernet.
        # (A distributed worker's oracle is an OracleClient; its own copy of the oracle has the seed.)
        tf.keras.utils.set_random_seed(int(getattr(getattr(self.oracle, "_oracle", self.oracle), "seed", 0) or 0))
        self.child = self._trainer(self.binarization, input_shape, "child")
        if self.has_parent:
            self.parent = self._trainer(self.binarization.full_precision(), input_shape, "parent")
        tag = self._restore()
        if tag is None:
            self._save_weights("init", {})  # what a failed first group rolls back to
        else:
            print(f"Restored the supernet weights of trial {tag}")

    def _trainer(self, binarization, input_shape, name):
        strategy = self.distribution_strategy
        with replicas_of(strategy).scope():
            supernet = Supernet(
                self.space,
                num_classes=self.num_classes,
                input_shape=input_shape,
                binarization=binarization,
                partial_channels=self.partial_channels,
                name=name,
                sync_batch_norm=self.sync_batch_norm,
            )
        return SupernetTrainer(supernet, distribution_strategy=strategy, **self.trainer_settings(name))

    def trainer_settings(self, name: str) -> dict:
        """Keyword arguments of the ``name`` supernet's :class:`SupernetTrainer` ("child" or "parent")."""
        return self.training_settings

    def _folder(self, name):
        """Checkpoint folder of the ``name`` supernet. Distributed workers each train their own copy."""
        if internals.has_chief_oracle():
            name = f"{name}-{self.tuner_id}"
        return os.path.join(self.project_dir, name)

    def _restore(self):
        """Load the last committed weights (the child's pointer is the commit; the parent follows it)."""
        tag = self.child.restore(self._folder("supernet"))
        if self.parent is not None:
            self.parent.restore(self._folder("parent"), tag)
        return tag

    def _save_weights(self, tag, record):
        """Checkpoint, then commit: the parent first, the child's pointer last with ``record`` (the metrics of
        the trials these weights finished), so a crash at any point leaves weights and results that agree."""
        if self.parent is not None:
            self.parent.save(self._folder("parent"), tag)
        self.child.save(self._folder("supernet"), tag, record)

    def _report_committed(self):
        """Report trials whose weights were committed but whose results a crash kept from the oracle."""
        state = self.child.pointer(self._folder("supernet")) or {}
        for trial_id, metrics in sorted((state.get("record") or {}).items()):
            try:
                trial = self.oracle.get_trial(trial_id)
            except KeyError:
                raise ValueError(
                    f"the supernet checkpoint in {self._folder('supernet')} holds the results of trial "
                    f"{trial_id}, which the search state in {self.project_dir} does not know (its files "
                    f"were deleted or come from another search); {recovery(self.project_dir)}"
                ) from None
            if trial.status in (TrialStatus.COMPLETED, TrialStatus.FAILED):
                continue
            if not trial.metrics.exists(self.oracle.objective.name):  # else the trial file has them already
                self.oracle.update_trial(trial_id, metrics)
            print(
                f"Trial {trial_id} finished before the search stopped: its results are reported from the "
                "supernet checkpoint, not trained again"
            )
            trial.status = TrialStatus.COMPLETED
            self.on_trial_end(trial)

    def _trainers(self):
        return [t for t in (self.child, self.parent) if t is not None]

    # --- the search loop ----------------------------------------------------------
    def search(self, train_data, validation_data=None, *, architecture_data=None, steps_per_epoch=None, verbose=1):
        """Run the search. ``train_data`` trains the weights, ``architecture_data`` (mixed-mode α steps;
        defaults to ``train_data``) the architecture, ``validation_data`` scores each sampled path."""
        if internals.is_chief_oracle():
            return super().search()  # serves the oracle to the workers until the search ends
        _check_dataset(train_data, "train_data")
        if validation_data is None:
            raise ValueError(
                "validation_data is required: every sampled path is scored on it "
                "(bnas_tf.data.load(..., search_split=True).search_validation)"
            )
        _check_dataset(validation_data, "validation_data")
        architecture_data = (
            _check_dataset(architecture_data, "architecture_data") if architecture_data is not None else train_data
        )
        for data, what in ((validation_data, "validation_data"), (architecture_data, "architecture_data")):
            _check_same_images(data, train_data, what)
        for name, value in (
            ("steps_per_epoch", steps_per_epoch),
            ("the tuner's steps_per_epoch", self.steps_per_epoch),
        ):
            arguments.count(name, value, allow_none=True)
        steps = steps_per_epoch or self.steps_per_epoch or int(train_data.cardinality())
        if steps <= 0:
            raise ValueError("cannot tell how many steps make an epoch of train_data; pass steps_per_epoch=")
        if self.distribution_strategy is not None:  # before any weight moves (a ragged last batch is trimmed)
            replicas = self.distribution_strategy.num_replicas_in_sync
            for data, what in ((train_data, "train_data"), (architecture_data, "architecture_data")):
                check_batch(batch_size_of(data), replicas, what)
        self.oracle.verbose = verbose
        self._build(train_data, validation_data)
        self.on_search_begin()
        self._report_committed()
        collecting = gc.isenabled()
        gc.disable()  # see _collect
        try:
            self._search_loop(train_data, validation_data, architecture_data, steps)
        except tf.errors.OpError as error:  # outside a trial: a checkpoint's collective read
            self._stop_if_workers_lost(error)
            raise
        finally:
            gc.unfreeze()
            if collecting:
                gc.enable()
        self.on_search_end()

    def _search_loop(self, train_data, validation_data, architecture_data, steps):
        pending = None
        while True:
            trial = pending or self.oracle.create_trial(self._slot(0))
            pending = None
            if trial.status == TrialStatus.STOPPED:
                break
            if trial.status == TrialStatus.IDLE:
                time.sleep(IDLE_SLEEP_SECONDS)  # the round waits for other workers' trials
                continue
            values = trial.hyperparameters.values
            if values["phase"] == "sample":
                group, pending = self._collect_group(trial)
                self._run_group(group, train_data, validation_data, steps)
            else:
                self._run_mixed(trial, train_data, architecture_data, validation_data, steps)

    def _slot(self, index):
        return f"{self.tuner_id}{SLOT}{index}"

    def _collect_group(self, first):
        group_id, size = first.hyperparameters.values["group"], first.hyperparameters.values["group_size"]
        group = [first]
        while len(group) < size:
            trial = self.oracle.create_trial(self._slot(len(group)))
            if trial.status != TrialStatus.RUNNING:
                break
            if trial.hyperparameters.values.get("group") != group_id:
                return self._by_path(group), trial
            group.append(trial)
        return self._by_path(group), None

    @staticmethod
    def _by_path(group):
        """Paths in their oracle order: retried trials come back last-in first-out, and each path's place
        decides which chunk of every batch it trains on."""
        return sorted(group, key=lambda trial: trial.hyperparameters.values["path"])

    def _routes(self, group):
        """The graph's ops per edge (the oracle's layout), each path's position in them, and the sampled ops.
        Real paths come first; layout slots no sampled path uses are filled by filler paths (no loss, frozen)."""
        layout = json.loads(group[0].hyperparameters.values["layout"])
        routes, active = {}, {}
        for kind in KINDS:
            routes[kind], active[kind] = [], []
            for edge in range(self.space.num_edges):
                slots = layout[kind][edge]
                ops = [self.space.op_set.index(t.hyperparameters.values[edge_name(kind, edge)]) for t in group]
                if len(set(ops)) != len(ops) or not set(ops) <= set(slots):
                    raise RuntimeError(
                        f"group {group[0].hyperparameters.values['group']} does not fit layout "
                        f"{slots} on {edge_name(kind, edge)}: {ops}"
                    )
                fillers = [position for position, op in enumerate(slots) if op not in ops]
                routes[kind].append([slots.index(op) for op in ops] + fillers)
                active[kind].append(set(ops))
        return layout, routes, active

    def _run_group(self, group, train_data, validation_data, steps):
        for trial in group:
            self.on_trial_begin(trial)
        group, costs = self._reject_over_budget(group)
        if not group:
            return
        layout, routes, active = self._routes(group)
        accuracies, diverged = [], None
        try:
            for trainer in self._trainers():
                trainer.supernet.set_paths(layout, routes, sampled_paths=len(group))
                frozen = trainer.set_active(active)
                trainer.set_progress(group[0].hyperparameters.values["progress"])
                result = trainer.train_paths(train_data, steps)
                trainer.restore_statistics(frozen)
                if not np.all(np.isfinite(result["losses"])):
                    diverged = f"training loss became {result['loss']} (NaN/inf): the sampled paths diverged"
                    break
                accuracies.append(self.score_paths(trainer, validation_data)[: len(group)])
        except Exception as error:  # KerasTuner's retry mechanism (INVALID: retried up to max_retries_per_trial)
            self._stop_if_workers_lost(error)
            return self._fail(group, TrialStatus.INVALID, f"{type(error).__name__}: {error}")
        if diverged is not None:  # ended outside the try: the oracle may stop the search (failures.SearchStopped)
            return self._fail(group, TrialStatus.FAILED, diverged)
        _collect()
        metrics = [
            self.with_deployment(m, c, self.objective_name) for m, c in zip(self.path_metrics(*accuracies), costs)
        ]
        self._save_weights(max(t.trial_id for t in group), {t.trial_id: m for t, m in zip(group, metrics)})
        for trial, trial_metrics in zip(group, metrics):
            self.oracle.update_trial(trial.trial_id, trial_metrics)
            trial.status = TrialStatus.COMPLETED
            self.on_trial_end(trial)

    def _reject_over_budget(self, group):
        """The group's paths within the deployment budget, with their cost metrics; the others end FAILED
        here, before training, with the reason and their costs (their ops get no measurement this round)."""
        if self.deployment is None:
            return group, [{} for _ in group]
        kept, costs = [], []
        for trial in group:
            metrics, reason = self.deployment_check(trial)
            if reason is None:
                kept.append(trial)
                costs.append(metrics)
                continue
            report_rejection(self.oracle, trial.trial_id, metrics)
            trial.status, trial.message = TrialStatus.FAILED, reason
            self.on_trial_end(trial)
        return kept, costs

    @property
    def objective_name(self) -> str:
        """The metric the oracle's scores are made of, before any deployment penalty (a distributed worker's
        OracleClient forwards ``objective`` from its local copy of the oracle)."""
        return self.oracle.objective.name.removeprefix(DEPLOYED_PREFIX)

    def mixed_cost_settings(self) -> dict:
        """``cost_weight`` and ``op_costs`` of the α step's deployment penalty (none here; Differentiable)."""
        return {}

    def mixed_costs(self, trial, metrics) -> dict:
        """Deployment metrics of a mixed-mode epoch (its architecture is not a sampled path: none here)."""
        return {}

    # --- deployment costs (DeploymentAware) -----------------------------------------
    def trial_candidate(self, trial) -> Genotype:
        values = trial.hyperparameters.values
        choice = {
            kind: [self.space.op_set.index(values[edge_name(kind, edge)]) for edge in range(self.space.num_edges)]
            for kind in KINDS
        }
        return self.space.genotype(choice, name=f"trial_{trial.trial_id}")

    def deployed_settings(self) -> dict:
        """``build_network`` arguments of the deployed network: the space's, then the objective's ``network``."""
        if self.input_shape is None or self.num_classes is None:
            raise ValueError("the deployed network's input shape and classes come from the data: call search() first")
        settings = dict(
            cells=self.space.cells,
            channels=self.space.channels,
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            binarization=self.binarization,
            inter_cell_skip=self.space.inter_cell_skip,
            reduction_cells=self.space.reduction_cells,
            stem=self.space.stem,
            lce_friendly=self.space.lce_friendly,
        )
        settings.update(self.deployment.network)
        return settings

    def deployed_network(self, genotype):
        return build_network(genotype, **self.deployed_settings())

    def uniform_genotype(self, op: int) -> Genotype:
        """Op ``op`` on every edge."""
        return self.space.genotype(
            {kind: [op] * self.space.num_edges for kind in KINDS}, name=f"all_{self.space.op_set[op]}"
        )

    def reference_candidates(self) -> list:
        """One genotype per op (Zeroise excluded): the same op on every edge."""
        return [self.uniform_genotype(op) for op, name in enumerate(self.space.op_set) if name != "zero"]

    def _stop_if_workers_lost(self, error):
        """Stop the search, not only the trial, when the strategy's workers stopped answering: every later
        collective of the group fails too (:func:`~bnas_tf.tuners.workers.lost_worker`)."""
        failure = lost_worker(self.distribution_strategy, error, self.project_dir)
        if failure is not None:
            raise failure from error

    def _fail(self, trials, status, message):
        """End ``trials`` as failed after putting back the last committed weights (a diverged group leaves
        NaN weights behind, and a retried or later group must start from what the finished trials left)."""
        _collect()
        self._restore()
        for trial in trials:
            trial.status, trial.message = status, message
            self.on_trial_end(trial)

    def path_metrics(self, child_accuracy, parent_accuracy=None):
        """Metrics each path reports (its objective first); Child-Parent overrides."""
        return [{"val_accuracy": float(a)} for a in child_accuracy]

    def score_paths(self, trainer, validation_data):
        """Each current path's measurement: validation accuracy; face verification overrides (bnas_tf.face)."""
        return trainer.evaluate_paths(validation_data)

    def _run_mixed(self, trial, train_data, architecture_data, validation_data, steps):
        self.on_trial_begin(trial)
        values = trial.hyperparameters.values
        remaining = json.loads(values["remaining"])
        trainer = self.child
        try:
            trainer.supernet.set_mixed(json.loads(values.get("layout", values["remaining"])), remaining)
            frozen = trainer.set_active({kind: [set(r) for r in remaining[kind]] for kind in KINDS})
            trainer.set_progress(values["progress"])
            result = trainer.train_mixed(
                train_data,
                steps,
                diversity_weight=values.get("diversity_weight", 0.0),
                architecture_data=architecture_data if values["train_alpha"] else None,
                **self.mixed_cost_settings(),
            )
            trainer.restore_statistics(frozen)
            accuracy = float(trainer.evaluate_paths(validation_data)[0])
        except Exception as error:
            self._stop_if_workers_lost(error)
            return self._fail([trial], TrialStatus.INVALID, f"{type(error).__name__}: {error}")
        if not np.all(np.isfinite(result["losses"])):
            return self._fail([trial], TrialStatus.FAILED, "mixed-mode loss became NaN/inf")
        _collect()
        metrics = {self.oracle.objective.name: accuracy, "loss": result["loss"]}
        for kind in KINDS:
            for edge, alpha in enumerate(trainer.supernet.alpha_values()[kind]):
                metrics.update({f"alpha_{kind}_{edge}_{op}": float(a) for op, a in enumerate(alpha)})
        metrics.update(self.mixed_costs(trial, metrics))
        self._save_weights(trial.trial_id, {trial.trial_id: metrics})
        self.oracle.update_trial(trial.trial_id, metrics)
        trial.status = TrialStatus.COMPLETED
        self.on_trial_end(trial)

    # --- results ----------------------------------------------------------------
    def search_oracle(self):
        """The oracle holding the search state; a distributed worker has only a client of the chief's."""
        if not isinstance(self.oracle, kt.Oracle):
            raise ValueError(
                "this tuner is a distributed worker: the search state lives on the chief "
                "(KERASTUNER_TUNER_ID=chief); read the results there once its search() returns"
            )
        return self.oracle

    def best_genotype(self, name: str | None = None):
        """The searched architecture: the op left on every edge (while searching: the best-scored one).

        With a deployment budget it is costed; over the budget, the best-scored sampled path within it is
        returned instead (and a ValueError when there is none)."""
        name = name or self.project_name
        searched = self.space.genotype(self.search_oracle().best_choice(), name=name)
        if self.deployment is None or self.deployment.budget is None:
            return searched
        sampled = [dataclasses.replace(self.trial_candidate(t), name=name) for t in self.oracle.get_best_trials(None)]
        return self.within_budget([searched] + sampled, "the pruned architecture")

    def get_best_hyperparameters(self, num_trials=1):
        """The searched architecture first (one Choice per edge), then the best sampled paths."""
        best = self.oracle.get_space()
        choice = self.search_oracle().best_choice()
        best.values = {
            edge_name(kind, edge): self.space.op_set[op] for kind in KINDS for edge, op in enumerate(choice[kind])
        }
        return ([best] + super().get_best_hyperparameters(num_trials))[:num_trials]

    def search_log(self) -> list:
        """Per round: candidates, mean measurements, scores, the abandoned and the remaining ops per edge."""
        return list(self.search_oracle().log)
