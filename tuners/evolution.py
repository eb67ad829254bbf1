"""Evolutionary width search (SPEC P3) as a KerasTuner Oracle and Tuner.

A gene is one width ratio per searchable layer of a fixed backbone
(VGG-small, ResNet-18), each from ``WIDTH_RATIOS`` = {0.25, 0.5, 1, 2, 3, 4}.
Its fitness is SPEC P3 Eq. 4, ``max(Acc - lam * FLOPs(a) / FLOPs(uniform 1x), 0)``
with ``lam = 4`` and Bi-Real FLOPs (float + binary / 64).

:class:`EvolutionOracle` decides; :class:`Evolution` trains, one candidate
per trial (:mod:`bnas_tf.tuners.width_candidates`); selection, crossover and
mutation are pure functions (:mod:`bnas_tf.tuners.evolution_operators`). Each
individual is one KerasTuner trial, so several workers can share a
generation. Choices the paper leaves open, made here:

- Generation 0 is uniformly random. Later generations: survivors by
  truncation over everything evaluated so far (the ``population_size`` best,
  (mu + lambda) elitism; equal fitness, e.g. several genes clipped to 0 by
  Eq. 4, ranks by accuracy), parents by tournament (``tournament_size=2``)
  among the survivors, uniform crossover (each gene from either parent with
  probability 1/2), then each gene mutates with probability
  ``mutation_rate`` (default ``1 / len(gene)``) to one of the other ratios.
- A child already in this generation or evaluated before is drawn again
  (up to ``MAX_DRAWS`` times; then only this generation is avoided; then it
  is kept), so trials are not spent on known genes.
- A failed trial (KerasTuner status FAILED: a NaN/inf loss, or an error
  after ``max_retries_per_trial`` retries) gets fitness 0 for selection.
  A generation whose every individual failed has no valid measurement to
  breed from: the search stops with
  :class:`~bnas_tf.tuners.failures.SearchStopped` (the cause and the fix),
  and the generation is handed out again when the search goes on (its failed
  trials stay recorded and do not count toward ``max_trials``).
- When every individual of the generation is handed out, the oracle answers
  IDLE only while one of them still runs on another worker (KerasTuner
  re-asks at once, so an IDLE with nothing running would spin forever); an
  individual whose trial is neither running nor ended is handed out again.
- With P3's ``lam = 4`` a candidate scores above 0 only below Acc / 4 of
  the uniform-1x FLOPs; the accuracy tie-break keeps selection informative
  when many genes clip to 0.
- The random generator of generation ``g`` is ``default_rng([seed, g])``
  and the seed is saved in the oracle state: a resumed search breeds the
  same genes. The whole state is JSON (``get_state``/``set_state``).
"""

from __future__ import annotations

import json
import math
import os
import time

import keras_tuner
import numpy as np
import tensorflow as tf

from bnas_tf import arguments
from bnas_tf.data import DataBundle
from bnas_tf.files import atomic_write_json, read_json
from bnas_tf.space.backbones import BACKBONES
from bnas_tf.space.genotype import WidthGenotype
from bnas_tf.space.quantizers import Binarization
from bnas_tf.space.quantizers import get as get_binarization
from bnas_tf.tuners import deployment as deployment_lib
from bnas_tf.tuners import failures, scores
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.evolution_operators import (
    MAX_DRAWS,
    RATIOS,
    first_generation,
    mutate,
    next_generation,
    random_gene,
    survivors,
    tournament_select,
    uniform_crossover,
)
from bnas_tf.tuners.keras_tuner_internals import TrialStatus, synchronized
from bnas_tf.tuners.state import AtomicOracleState, AtomicTunerState
from bnas_tf.tuners.width_candidates import DivergenceMonitor, WidthCandidates

__all__ = [
    "EvolutionOracle",
    "Evolution",
    "DivergenceMonitor",
    "MAX_DRAWS",
    "RATIOS",
    "random_gene",
    "tournament_select",
    "uniform_crossover",
    "mutate",
    "first_generation",
    "next_generation",
    "survivors",
]

#: Search log file written in the project directory after every trial.
SEARCH_LOG_FILE = "search_log.json"


def ratio_name(layer: int) -> str:
    """KerasTuner hyperparameter name of a layer's width ratio."""
    return f"width_ratio_{layer}"


def genotype_from_values(backbone: str, values: dict, name: str | None = None) -> WidthGenotype:
    """The WidthGenotype of a trial's hyperparameter values."""
    return WidthGenotype(backbone, tuple(values[ratio_name(i)] for i in range(len(BACKBONES[backbone]))), name=name)


# ---------------------------------------------------------------- oracle


class EvolutionOracle(AtomicOracleState, keras_tuner.Oracle):
    """Evolutionary width search over a backbone, SPEC P3 (choices in the module docstring).

    Each trial is one individual, a :class:`~bnas_tf.space.genotype.WidthGenotype` gene (one ratio per
    searchable layer); generation 0 is uniformly random, later ones come from truncation survivors,
    tournaments, uniform crossover and mutation. The oracle maximises the tuner's ``fitness``, SPEC P3
    Eq. 4; a failed trial gets fitness 0.

    Args:
        backbone: ``"vgg_small"`` (default) or ``"resnet18"`` (``bnas_tf.space.networks.BACKBONES``).
        population_size: individuals per generation, a positive integer (default 32, P3's).
        generations: generations including the random generation 0, a positive integer (default 50, P3's).
        mutation_rate: per-gene mutation probability in [0, 1]; default (None) ``1 / len(gene)``.
        tournament_size: entrants per parent tournament, a positive integer (default 2 = binary
            tournament).
        objective: defaults to ``Objective("fitness", "max")``, the metric the
            :class:`Evolution` tuner reports.
        max_trials: defaults to ``population_size * generations``; smaller
            stops early, and a later ``overwrite=False`` search continues.
        seed: non-negative int (0 included, unlike KerasTuner's ``seed or random``); the same
            fitness values every run also need ``bnas_tf.enable_determinism``. Default None.
        max_retries_per_trial, max_consecutive_failed_trials: KerasTuner's (defaults 0 and 3).
        deployment: the tuner's :class:`~bnas_tf.tuners.DeploymentObjective` or None (default); only names the
            budget when a generation's every gene was over it.

    Raises:
        ValueError: an unknown backbone, a count that is not a positive integer, a ``mutation_rate``
            outside [0, 1], or a bad seed.
    """

    def __init__(
        self,
        backbone: str = "vgg_small",
        population_size: int = 32,
        generations: int = 50,
        mutation_rate: float | None = None,
        tournament_size: int = 2,
        objective: keras_tuner.Objective | None = None,
        max_trials: int | None = None,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        deployment=None,
    ):
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known backbones: {', '.join(BACKBONES)}")
        self.backbone = backbone
        self.gene_length = len(BACKBONES[backbone])
        self.population_size = arguments.count("population_size", population_size)
        self.generations = arguments.count("generations", generations)
        self.tournament_size = arguments.count("tournament_size", tournament_size)
        self.mutation_rate = (
            1.0 / self.gene_length if mutation_rate is None else arguments.number("mutation_rate", mutation_rate)
        )
        if not 0.0 <= self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {mutation_rate!r}")
        self._check_seed(seed)
        space = keras_tuner.HyperParameters()
        for layer in range(self.gene_length):
            space.Choice(ratio_name(layer), list(RATIOS), ordered=True)
        super().__init__(
            objective=objective or keras_tuner.Objective("fitness", "max"),
            max_trials=population_size * generations if max_trials is None else max_trials,
            hyperparameters=space,
            allow_new_entries=False,
            tune_new_entries=False,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self._keep_seed(seed)
        self.deployment = deployment_lib.get(deployment)
        self.planned_trials = self.max_trials
        # trials of generations whose every individual failed: recorded, but not counted toward max_trials
        self.discarded = []
        self._stopping = None  # the SearchStopped that end_trial raises once the state is saved
        # One entry per generation so far: {"genes": [[ratio, ...], ...], "trial_ids": [id or None, ...]}.
        self.populations = []
        # trial_id -> fitness of every finished trial (0.0 for FAILED).
        self.fitness = {}

    # --- what a trial runs

    def populate_space(self, trial_id):
        """Next individual of the current generation; IDLE while others of it run; STOPPED at the end."""
        if not self.populations:
            self._start_generation()
        while True:
            population = self.populations[-1]
            ids = population["trial_ids"]
            unfinished = [i for i, tid in enumerate(ids) if tid is None or tid not in self.fitness]
            running = {trial.trial_id for trial in self.ongoing_trials.values()} | set(internals.retry_queue(self))
            # Individuals never handed out first, then any whose trial was lost (neither running nor ended).
            waiting = [i for i in unfinished if ids[i] is None] or [i for i in unfinished if ids[i] not in running]
            if waiting:
                ids[waiting[0]] = trial_id
                return {"status": TrialStatus.RUNNING, "values": self._values(population["genes"][waiting[0]])}
            if unfinished:  # the rest of this generation is really running elsewhere
                return {"status": TrialStatus.IDLE, "values": None}
            if len(self.populations) >= self.generations:
                return {"status": TrialStatus.STOPPED, "values": None}
            self._start_generation()

    def _values(self, gene):
        return {ratio_name(i): float(r) for i, r in enumerate(gene)}

    def _start_generation(self):
        generation = len(self.populations)
        rng = np.random.default_rng([self.seed, generation])
        if generation == 0:
            genes = first_generation(self.gene_length, self.population_size, rng)
        else:
            parents, fitness = survivors(self.evaluated(), self.population_size)
            seen = [tuple(g) for population in self.populations for g in population["genes"]]
            genes = next_generation(
                parents,
                fitness,
                self.population_size,
                rng,
                mutation_rate=self.mutation_rate,
                tournament_size=self.tournament_size,
                seen=seen,
            )
        self.populations.append({"genes": [list(g) for g in genes], "trial_ids": [None] * len(genes)})
        self._write_search_log()

    def evaluated(self):
        """``[(gene, fitness, val_accuracy or None), ...]`` of every finished individual, in generation order."""
        return [
            (tuple(gene), self.fitness[tid], self._metric(tid, "val_accuracy"))
            for population in self.populations
            for gene, tid in zip(population["genes"], population["trial_ids"])
            if tid in self.fitness
        ]

    def _metric(self, trial_id, name):
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != TrialStatus.COMPLETED or not trial.metrics.exists(name):
            return None
        return float(trial.metrics.get_last_value(name))

    def _check_consecutive_failures(self):
        """KerasTuner's limit, not counting genes the deployment budget rejected (they did not fail to train).
        Only the latest failures count (a search resumed after a stop goes on), and the stop waits for
        :meth:`end_trial` to save the state."""
        failed = []
        for trial_id in internals.ended_trial_ids(self):
            trial = self.trials[trial_id]
            if deployment_lib.is_rejected(trial):
                continue
            failed = failed + [trial] if trial.status == TrialStatus.FAILED else []
        if self.max_consecutive_failed_trials and len(failed) >= self.max_consecutive_failed_trials:
            self._stopping = failures.stop(
                self,
                f"{len(failed)} consecutive trials failed "
                f"(max_consecutive_failed_trials={self.max_consecutive_failed_trials})",
                failed,
                self.deployment,
            )

    # --- results coming back

    @synchronized
    def end_trial(self, trial):
        self._stopping = None
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.status == TrialStatus.COMPLETED:
            self.fitness[ended.trial_id] = float(ended.score)
        elif ended.status == TrialStatus.FAILED:
            self.fitness[ended.trial_id] = 0.0  # failed genes score 0 (module docstring)
            self._drop_failed_generation()
        self.save()
        self._write_search_log()
        if self._stopping is not None:  # raised only now, with the trial's end and the state on disk
            stopping, self._stopping = self._stopping, None
            raise stopping

    def _drop_failed_generation(self):
        """A finished generation whose every individual failed gives nothing to breed from: the search stops, and
        the generation's genes are handed out again when it goes on (the failed trials stay recorded)."""
        generation = len(self.populations) - 1
        ids = self.populations[generation]["trial_ids"]
        if any(tid is None or tid not in self.fitness for tid in ids):
            return
        trials = [self.trials[tid] for tid in ids]
        if any(t.status != TrialStatus.FAILED for t in trials):
            return
        self._stopping = self._stopping or failures.stop(  # a consecutive-failure stop names its limit first
            self,
            f"every individual of generation {generation} failed ({len(ids)} gene{'s' * (len(ids) != 1)})",
            trials,
            self.deployment,
        )
        self.discarded += ids  # their fitness (0) stays recorded; the generation no longer points to them
        self.max_trials = self.planned_trials + len(self.discarded)
        self.populations[generation]["trial_ids"] = [None] * len(ids)

    # --- state

    def get_state(self):
        state = super().get_state()
        state["evolution"] = {
            "backbone": self.backbone,
            "populations": json.loads(json.dumps(self.populations)),
            "fitness": dict(self.fitness),
            "discarded": list(self.discarded),
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        saved = state["evolution"]
        if saved["backbone"] != self.backbone:
            raise ValueError(
                f"the saved search is over {saved['backbone']!r}, not {self.backbone!r}; "
                "pass the same backbone or overwrite=True"
            )
        self.populations = saved["populations"]
        self.fitness = {tid: float(f) for tid, f in saved["fitness"].items()}
        self.discarded = list(saved.get("discarded", []))
        self.max_trials = self.planned_trials + len(self.discarded)

    # --- search log

    def search_log(self) -> dict:
        """Per generation: genes, status, val_accuracy, flops and fitness of each individual."""
        generations = []
        for index, population in enumerate(self.populations):
            individuals = []
            for gene, tid in zip(population["genes"], population["trial_ids"]):
                entry = {
                    "trial_id": tid,
                    "ratios": gene,
                    "status": None,
                    "val_accuracy": None,
                    "flops": None,
                    "fitness": self.fitness.get(tid),
                }
                if tid in self.trials:
                    entry["status"] = self.trials[tid].status
                    entry["val_accuracy"] = self._metric(tid, "val_accuracy")
                    entry["flops"] = self._metric(tid, "flops")
                individuals.append(entry)
            generations.append({"generation": index, "individuals": individuals})
        return {
            "backbone": self.backbone,
            "seed": self.seed,
            "population_size": self.population_size,
            "generations": self.generations,
            "mutation_rate": self.mutation_rate,
            "tournament_size": self.tournament_size,
            "log": generations,
        }

    def _write_search_log(self):
        if internals.oracle_directory(self) is not None:
            atomic_write_json(os.path.join(internals.project_dir(self), SEARCH_LOG_FILE), self.search_log())


# ----------------------------------------------------------------- tuner


def _check_labels(validation_data, num_classes):
    """Refuse validation labels outside 0..num_classes-1 before any trial (every trial would fail on them). Only
    integer class ids of arrays or of a dataset of known, finite length are read."""
    if isinstance(validation_data, tf.data.Dataset):
        if int(validation_data.cardinality()) < 0 or not isinstance(validation_data.element_spec, tuple):
            return
        if not validation_data.element_spec[1].dtype.is_integer:
            return
        labels = [np.asarray(element[1]).ravel() for element in validation_data]
    elif isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
        labels = [np.asarray(validation_data[1]).ravel()]
    else:
        return
    labels = np.concatenate(labels) if labels else np.zeros(0, dtype=int)
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        return
    if labels.min() < 0 or labels.max() >= num_classes:
        bad = labels.max() if labels.max() >= num_classes else labels.min()
        raise ValueError(
            f"validation_data has label {int(bad)} outside 0..{num_classes - 1}; pass num_classes= the number of "
            "classes, or labels 0..num_classes-1"
        )


class Evolution(AtomicTunerState, deployment_lib.DeploymentAware, WidthCandidates, keras_tuner.Tuner):
    """Evolutionary width search, SPEC P3: one trial trains one width candidate.

    Each trial builds ``build_width_network`` for the trial's gene, trains it
    ``epochs_per_candidate`` epochs on ``search``'s training data and reports
    ``val_accuracy``, ``flops`` (``bnas_tf.deploy.costs``, float + binary / 64),
    ``base_flops`` (uniform 1x) and ``fitness`` (SPEC P3 Eq. 4 with the accuracy in
    percent, ``lam = flops_penalty``); the :class:`EvolutionOracle` maximises ``fitness``.

    ``search(x, validation_data=..., ...)`` takes what ``model.fit`` takes, or a
    ``bnas_tf.data.DataBundle`` (its train and validation parts).
    ``epochs=`` given to ``search`` overrides ``epochs_per_candidate``.

    Args:
        backbone, population_size, generations, mutation_rate, tournament_size,
            seed, max_trials, max_retries_per_trial, max_consecutive_failed_trials:
            see :class:`EvolutionOracle` (defaults ``"vgg_small"``, 32, 50, ``1 / len(gene)``, 2,
            None, ``population_size * generations``, 0, 3).
        epochs_per_candidate: training epochs per candidate, a positive integer (P3: 10, the default).
        binarization, lce_friendly: passed to ``build_width_network`` (defaults ``"W1/A1"`` and False).
        num_classes, input_shape: of the data; default: read from the data.
        width_multiplier: scales the backbone's base widths (VGG-small 128..512)
            before the ratios apply; 1.0 (default) is the paper's network, 0.125 makes a
            test-sized one. FLOPs and fitness use the scaled network.
        learning_rate, momentum: SGD with momentum and cosine decay to 0 over
            the candidate's steps, unless ``optimizer=`` (a Keras optimizer,
            copied for every trial) is given; ``loss=`` and ``metrics=`` as in
            KerasTuner (defaults: sparse cross-entropy on logits, accuracy).
            Defaults 0.1 and 0.9.
        flops_penalty: ``lam`` of Eq. 4, a finite number >= 0 (P3: 4.0, the default).
        initial_weights: None (random init, default) or ``"uniform4x"``: train the
            uniform-4x net once (``initial_epochs``, default the candidates'
            epochs), save it in the project directory, and start every
            candidate from its first channels (SPEC P3 "Initialisation trick",
            :mod:`tuners.width_init`).
        initial_epochs: epochs of the uniform-4x training, a positive integer or None (default: the
            candidates' epochs).
        idle_wait_seconds: sleep of a worker whose last request was answered
            IDLE (the oracle waits for other workers' trials); default 1.0.
        deployment: a :class:`~bnas_tf.tuners.DeploymentObjective` costing each
            gene's network (``network={"width_multiplier": 1.0}`` costs the
            full-size one): genes over its budget fail before training, a
            penalty is subtracted inside the fitness,
            ``max(acc - lam * flops / base_flops - penalty * cost / base_cost, 0)``
            (base cost: the uniform-1x network).
        **kwargs: ``directory``, ``project_name``, ``overwrite``, ... of ``keras_tuner.Tuner``;
            ``distribution_strategy=`` (a ``tf.distribute.Strategy``) builds, compiles and
            trains every candidate under it (data-parallel training inside a trial).

    Raises:
        TypeError: ``binarization`` is not a Binarization, dict or tag, or ``deployment`` is not an
            objective or dict.
        ValueError: ``initial_weights`` other than None or ``"uniform4x"``, a ``width_multiplier`` that
            is not a finite number > 0, a negative or non-finite ``flops_penalty``, an unknown
            binarization, ``epochs_per_candidate`` or ``initial_epochs`` not a positive integer, or
            a bad oracle setting (see :class:`EvolutionOracle`).

    Reproducibility: each candidate's weights, and the passes over the
    training parts of :mod:`bnas_tf.data`, are seeded from (seed, gene); a
    dataset of your own that reshuffles each iteration gives a resumed
    search a different order than an unbroken one.
    """

    def __init__(
        self,
        backbone: str = "vgg_small",
        *,
        population_size: int = 32,
        generations: int = 50,
        mutation_rate: float | None = None,
        tournament_size: int = 2,
        seed: int | None = None,
        epochs_per_candidate: int = 10,
        binarization: Binarization | str | dict = "W1/A1",
        num_classes: int | None = None,
        input_shape: tuple | None = None,
        width_multiplier: float = 1.0,
        lce_friendly: bool = False,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        flops_penalty: float = 4.0,
        initial_weights: str | None = None,
        initial_epochs: int | None = None,
        max_trials: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        idle_wait_seconds: float = 1.0,
        deployment: deployment_lib.DeploymentObjective | dict | None = None,
        **kwargs,
    ):
        if initial_weights not in (None, "uniform4x"):
            raise ValueError(f"initial_weights must be None or 'uniform4x', got {initial_weights!r}")
        width_multiplier = arguments.finite_number("width_multiplier", width_multiplier, strict=True)
        arguments.finite_number("flops_penalty (lam, SPEC P3 Eq. 4)", flops_penalty)
        get_binarization(binarization)  # fail here, not inside the first trial
        self.backbone = backbone
        self.epochs_per_candidate = arguments.count("epochs_per_candidate", epochs_per_candidate)
        self.initial_epochs = arguments.count("initial_epochs", initial_epochs, allow_none=True)
        self.binarization = binarization
        self.num_classes = num_classes
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.width_multiplier = float(width_multiplier)
        self.lce_friendly = lce_friendly
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.flops_penalty = flops_penalty
        self.initial_weights = initial_weights
        self.idle_wait_seconds = idle_wait_seconds
        self._setup_deployment(deployment)
        self._asked_in_vain = False
        oracle = EvolutionOracle(
            backbone,
            population_size,
            generations,
            mutation_rate,
            tournament_size,
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            deployment=self.deployment,
        )
        super().__init__(oracle, **kwargs)
        self.seed = oracle.seed  # restored from the saved state on reload

    # --- search loop hooks

    def search(self, *fit_args, **fit_kwargs):
        if fit_args and isinstance(fit_args[0], DataBundle):
            bundle, fit_args = fit_args[0], fit_args[1:]
            fit_args = (bundle.train,) + fit_args
            fit_kwargs.setdefault("validation_data", bundle.validation)
            self.num_classes = self.num_classes or bundle.num_classes
            self.input_shape = self.input_shape or tuple(bundle.input_shape)
        if fit_args or "x" in fit_kwargs:
            if fit_kwargs.get("validation_data") is None and not fit_kwargs.get("validation_split"):
                raise ValueError(
                    "Evolution scores candidates on validation accuracy (SPEC P3): "
                    "pass validation_data= (or validation_split=) to search()"
                )
            self._read_data_shapes(fit_args, fit_kwargs)
            _check_labels(fit_kwargs.get("validation_data"), self.num_classes)
        return super().search(*fit_args, **fit_kwargs)

    def on_search_begin(self):
        self._asked_in_vain = False
        super().on_search_begin()

    def pre_create_trial(self):
        # KerasTuner re-asks at once after IDLE; sleep here, outside the oracle's lock.
        if self._asked_in_vain:
            time.sleep(self.idle_wait_seconds)
        self._asked_in_vain = True

    def on_trial_begin(self, trial):
        self._asked_in_vain = False
        super().on_trial_begin(trial)

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Train the trial's candidate and report val_accuracy, flops, base_flops and fitness (P3 Eq. 4)."""
        genotype = genotype_from_values(self.backbone, trial.hyperparameters.values)
        cost_metrics, reason = self.deployment_check(trial)
        if reason is not None:  # fail before training
            deployment_lib.report_rejection(self.oracle, trial.trial_id, cost_metrics)
            raise keras_tuner.errors.FailedTrialError(f"{list(genotype.ratios)} is {reason}")
        callbacks = internals.trial_callbacks(self, fit_kwargs.pop("callbacks", []), trial)
        measured = self.evaluate_candidate(genotype, *fit_args, callbacks=callbacks, **fit_kwargs)
        accuracy, flops = float(measured["val_accuracy"]), float(measured["flops"])
        if not math.isfinite(accuracy):
            raise keras_tuner.errors.FailedTrialError(
                f"val_accuracy is not finite ({accuracy}) for {list(genotype.ratios)}"
            )
        base_flops = self.base_flops()
        penalised = accuracy
        if self.deployment is not None and self.deployment.penalty:  # max(acc - both penalties, 0) below
            penalised = accuracy - self.deployment.penalty * cost_metrics["deploy_cost"] / self.base_cost()
        # Eq. 4 takes the accuracy in percent (any deployment penalty is in accuracy units, so it scales with it)
        fitness = scores.width_fitness(100.0 * penalised, flops, base_flops, self.flops_penalty)
        metrics = {"val_accuracy": accuracy, "flops": flops, "base_flops": base_flops, "fitness": float(fitness)}
        return self.with_deployment(metrics, cost_metrics, "val_accuracy")

    # --- deployment costs (DeploymentAware)

    def trial_candidate(self, trial) -> WidthGenotype:
        return genotype_from_values(self.backbone, trial.hyperparameters.values)

    def deployed_network(self, genotype):
        return self.build_candidate(genotype, **self.deployment.network)

    def reference_candidates(self) -> list:
        return [WidthGenotype.uniform(self.backbone, 1.0)]

    # --- results

    def best_genotype(self) -> WidthGenotype:
        """The gene of the fittest completed trial."""
        best = [t for t in self.oracle.get_best_trials(1) if t.status == TrialStatus.COMPLETED]
        if not best:
            raise ValueError("no completed trial yet: run search() first")
        return genotype_from_values(self.backbone, best[0].hyperparameters.values, name="evolution_best")

    def pareto(self) -> list:
        """``[(val_accuracy, flops, WidthGenotype), ...]`` of the non-dominated completed trials, by flops."""
        trials = [t for t in self.oracle.trials.values() if t.status == TrialStatus.COMPLETED]
        points = [(t.metrics.get_last_value("val_accuracy"), t.metrics.get_last_value("flops")) for t in trials]
        return [
            (
                float(points[i][0]),
                float(points[i][1]),
                genotype_from_values(self.backbone, trials[i].hyperparameters.values),
            )
            for i in scores.pareto_front(points)
        ]

    def search_log(self) -> dict:
        """The JSON search log of the project directory (per generation: genes, accuracy, FLOPs, fitness)."""
        return read_json(os.path.join(self.project_dir, SEARCH_LOG_FILE), what="search log")

    def load_model(self, trial):
        raise NotImplementedError(
            "Evolution keeps no candidate weights: P3 trains the best gene from scratch, "
            "build it with bnas_tf.build_width_network(tuner.best_genotype())"
        )
