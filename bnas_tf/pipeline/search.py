"""Running a recipe's search (``bnas-tf search``): the strategy table, per-trial lines and TensorBoard logs.

``STRATEGIES`` maps a recipe's ``strategy`` to the function that builds its
tuner from the recipe's fields (SPEC P1: ``OperationPruning``, P4:
``ChildParent``, P2: ``Differentiable``, P3: ``Evolution``). Each tuner is
wrapped with :class:`TrialLines`, which prints one line per finished trial
and writes its metrics as TensorBoard scalars (``<run>/logs/search``).
The search writes ``genotype.json``, ``search_log.json`` and the ``search``
part of ``metrics.json`` into the run folder. A search that stops because a
round had no valid measurement (:class:`~bnas_tf.tuners.failures.SearchStopped`)
writes none of them: it raises a one-line ``ValueError`` naming the recipe
setting to change, and the trials stay in ``<run>/search`` for a rerun with the
same ``--output`` to go on from.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import tensorflow as tf

from bnas_tf import data as data_lib
from bnas_tf.face.data import load_pairs, pairs_from_dataset
from bnas_tf.face.pairs import PairSet
from bnas_tf.face.tuners import FaceOperationPruning
from bnas_tf.files import atomic_write_json
from bnas_tf.pipeline import distribution, run_folder
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import (
    ChildParent,
    DeploymentObjective,
    Differentiable,
    OperationPruning,
    failures,
    keras_tuner_internals,
)
from bnas_tf.tuners.evolution import Evolution

_HIDDEN_VALUES = ("phase", "round", "repetition", "epoch", "generation")


class TrialLines:
    """Tuner mixin: one printed line and one TensorBoard step per finished trial."""

    def configure_logging(self, log_dir: str | None, verbose: int):
        self._line_verbose, self._line_start, self._line_count = verbose, time.perf_counter(), 0
        self._line_writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_trial_end(self, trial):
        try:
            super().on_trial_end(trial)
        finally:  # the trial that stopped the search (failures.SearchStopped) gets its line too
            self._trial_line(trial)

    def _trial_line(self, trial):
        trial = self.oracle.get_trial(trial.trial_id)  # with its metrics; on a distributed worker, from the chief
        metrics = _scalar_metrics(trial)
        step = getattr(self, "_line_count", 0)
        self._line_count = step + 1
        writer = getattr(self, "_line_writer", None)
        if writer is not None:
            with writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(f"trial/{name}", value)
            writer.flush()
        if getattr(self, "_line_verbose", 1):
            print(
                trial_line(trial, metrics, time.perf_counter() - getattr(self, "_line_start", time.perf_counter())),
                flush=True,
            )


def _scalar_metrics(trial) -> dict:
    """A trial's measured metrics (α values and never-measured NaNs, e.g. of rejected trials, left out)."""
    out = {}
    for name in trial.metrics.metrics:
        value = trial.metrics.get_last_value(name)
        if not name.startswith("alpha_") and value is not None and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def trial_line(trial, metrics: dict, elapsed: float) -> str:
    """``[  12.3 s] trial 0004  sample round 0  val_accuracy 0.2611  score 0.5388``"""
    values = trial.hyperparameters.values
    where = " ".join(f"{key} {values[key]}" for key in _HIDDEN_VALUES if key in values and key != "phase")
    phase = values.get("phase", "")
    if "width_ratio_0" in values:
        where = "ratios " + ",".join(f"{values[k]:g}" for k in sorted(values) if k.startswith("width_ratio_"))
    shown = "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    reason = (trial.message or "").strip().splitlines()[-1:]  # KerasTuner's messages end a traceback with the error
    status = "" if trial.status == "COMPLETED" else f"  {trial.status}: {''.join(reason)}".rstrip()
    return f"[{elapsed:7.1f} s] trial {trial.trial_id}  {phase} {where}  {shown}{status}".replace("   ", "  ")


# --- one builder per strategy ------------------------------------------------------
def deployment_objective(recipe):
    """The :class:`~bnas_tf.tuners.DeploymentObjective` of the recipe's ``deploy_*`` fields (None when neither a
    budget nor a penalty is set)."""
    if recipe.deploy_budget is None and not recipe.deploy_penalty:
        return None
    return DeploymentObjective(
        recipe.deploy_cost,
        budget=recipe.deploy_budget,
        penalty=recipe.deploy_penalty,
        network=recipe.deployed_network_settings(),
    )


def cell_space(recipe) -> CellSpace:
    """The search space a cell recipe names."""
    return recipe.search_space()


def _supernet_settings(recipe, bundle) -> dict:
    return dict(
        binarization=recipe.search_binarization_config(),
        num_classes=bundle.num_classes,
        learning_rate=recipe.search_learning_rate,
        momentum=recipe.search_momentum,
        weight_decay=recipe.search_weight_decay,
        alpha_learning_rate=recipe.alpha_learning_rate,
        partial_channels=recipe.partial_channels,
        sync_batch_norm=recipe.sync_batch_norm,
        seed=recipe.seed,
        deployment=deployment_objective(recipe),
    )


def _operation_pruning(recipe, bundle, common):
    return _logged(OperationPruning)(
        cell_space(recipe),
        repetitions=recipe.repetitions,
        warmup_epochs=recipe.warmup_epochs,
        warmup_weights_only=recipe.warmup_weights_only,
        finetune_epochs=recipe.finetune_epochs,
        ucb=recipe.ucb,
        delta=recipe.delta,
        **_supernet_settings(recipe, bundle),
        **common,
    )


def _child_parent(recipe, bundle, common):
    return _logged(ChildParent)(
        cell_space(recipe),
        repetitions=recipe.repetitions,
        beta=recipe.beta,
        kernel_loss_lambda=recipe.kernel_loss_lambda if recipe.kernel_loss else None,
        **_supernet_settings(recipe, bundle),
        **common,
    )


def _differentiable(recipe, bundle, common):
    return _logged(Differentiable)(
        cell_space(recipe),
        epochs=recipe.search_epochs,
        diversity_lambda=recipe.diversity_lambda,
        diversity_tau=recipe.diversity_tau,
        gamma=recipe.gamma,
        **_supernet_settings(recipe, bundle),
        **common,
    )


def _evolution(recipe, bundle, common):
    return _logged(Evolution)(
        recipe.backbone,
        population_size=recipe.population_size,
        generations=recipe.generations,
        seed=recipe.seed,
        epochs_per_candidate=recipe.epochs_per_candidate,
        binarization=recipe.binarization_config(),
        num_classes=bundle.num_classes,
        input_shape=tuple(bundle.input_shape),
        width_multiplier=recipe.width_multiplier,
        lce_friendly=recipe.lce_friendly,
        learning_rate=recipe.search_learning_rate,
        momentum=recipe.search_momentum,
        flops_penalty=recipe.flops_penalty,
        initial_weights=recipe.initial_weights,
        initial_epochs=recipe.initial_epochs,
        deployment=deployment_objective(recipe),
        **common,
    )


def search_pairs(recipe, bundle) -> PairSet:
    """The held-out pairs that score a face search: the recipe's ``search_pairs`` file, or pairs drawn among the
    search validation images (identities seen in training, other images)."""
    if recipe.search_pairs:
        return load_pairs(recipe.search_pairs, bundle.input_shape)
    return pairs_from_dataset(
        bundle.search_validation, name="search_validation", num_pairs=recipe.generated_pairs, seed=recipe.seed
    )


def _face_operation_pruning(recipe, bundle, common):
    """P1's face search: pruning over the recipe's space and stem, paths scored by verification accuracy."""
    space = dataclasses.replace(cell_space(recipe), stem=recipe.stem)
    return _logged(FaceOperationPruning)(
        space,
        repetitions=recipe.repetitions,
        warmup_epochs=recipe.warmup_epochs,
        warmup_weights_only=recipe.warmup_weights_only,
        finetune_epochs=recipe.finetune_epochs,
        ucb=recipe.ucb,
        delta=recipe.delta,
        verification_pairs=search_pairs(recipe, bundle),
        **_supernet_settings(recipe, bundle),
        **common,
    )


STRATEGIES = {
    "operation_pruning": _operation_pruning,
    "child_parent": _child_parent,
    "differentiable": _differentiable,
    "evolution": _evolution,
    "face_operation_pruning": _face_operation_pruning,
}
_LOGGED = {}


def _logged(tuner_class):
    """``tuner_class`` with :class:`TrialLines` mixed in (one subclass per tuner class)."""
    if tuner_class not in _LOGGED:
        _LOGGED[tuner_class] = type(tuner_class.__name__, (TrialLines, tuner_class), {"__module__": __name__})
    return _LOGGED[tuner_class]


# --- running it ----------------------------------------------------------------------
def is_distributed_worker() -> bool:
    """True in a KerasTuner worker process (KERASTUNER_TUNER_ID set and not a chief; docs/scaling_out.md)."""
    return keras_tuner_internals.is_worker()


@dataclasses.dataclass
class SearchResult:
    genotype: object  # Genotype or WidthGenotype
    log: dict  # what search_log.json holds
    seconds: float
    tuner: object


def load_search_data(recipe) -> data_lib.DataBundle:
    """The recipe's dataset at its search batch size, cut into the search split (SPEC P1 "Search data")."""
    return data_lib.load(
        recipe.dataset,
        batch_size=recipe.search_batch_size,
        image_size=recipe.image_size,
        search_split=True,
        seed=recipe.seed,
        max_examples=recipe.max_examples,
    )


def build_tuner(recipe, bundle, directory: str, *, overwrite: bool = True, distribution_strategy=None):
    """The recipe's tuner over ``bundle`` writing to ``directory``; ``distribution_strategy`` (a
    ``tf.distribute.Strategy``, default none) trains its supernet, or each Evolution candidate, data-parallel."""
    if recipe.strategy not in STRATEGIES:
        raise ValueError(f"recipe {recipe.name!r} names strategy {recipe.strategy!r}; known: {', '.join(STRATEGIES)}")
    common = dict(directory=directory, project_name=recipe.name, overwrite=overwrite)
    if distribution_strategy is not None:
        common.update(distribution_strategy=distribution_strategy)
    return STRATEGIES[recipe.strategy](recipe, bundle, common)


def _run_tuner(tuner, recipe, bundle, log_dir, verbose):
    tuner.configure_logging(log_dir, verbose)
    steps = recipe.search_steps_per_epoch
    if recipe.strategy == "evolution":
        train_data = bundle.train.repeat() if steps else bundle.train
        tuner.search(
            train_data,
            validation_data=bundle.validation,
            steps_per_epoch=steps,
            verbose=0,
            callbacks=[tf.keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0)],
        )
        return
    tuner.search(
        bundle.search_weights,
        bundle.search_validation,
        architecture_data=bundle.search_architecture,
        steps_per_epoch=steps,
        verbose=0,
    )


def _trials(tuner) -> list:
    """Every trial as data for the plots: id, status, the search position and the scalar metrics."""
    out = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        values = trial.hyperparameters.values
        out.append(
            {
                "trial_id": trial_id,
                "status": trial.status,
                "values": {k: v for k, v in values.items() if k in _HIDDEN_VALUES or k.startswith("width_ratio")},
                "metrics": _scalar_metrics(trial),
            }
        )
    return out


def deploy_pareto(tuner) -> list:
    """The tuner's accuracy-vs-deployment-cost Pareto front as JSON-able records (genotype included)."""
    return [
        dict({k: v for k, v in record.items() if k != "candidate"}, genotype=record["candidate"].to_dict())
        for record in tuner.deployment_pareto()
    ]


def search(recipe, run_dir: str, *, bundle=None, verbose: int = 1, distribution_strategy=None) -> SearchResult:
    """Search with ``recipe`` and write genotype.json, search_log.json and metrics.json's ``search`` part;
    ``distribution_strategy``: see :func:`build_tuner`."""
    bundle = bundle or load_search_data(recipe)
    # rerunning the same command on the same run folder resumes the search (a new folder starts a new one)
    tuner = build_tuner(
        recipe,
        bundle,
        os.path.join(run_dir, run_folder.SEARCH_DIR),
        overwrite=False,
        distribution_strategy=distribution_strategy,
    )
    if verbose:
        replicas = distribution.describe(distribution_strategy)
        on = f" on {replicas}" if replicas else ""
        print(f"search: {recipe.strategy} ({recipe.paper}) on {bundle.describe()}{on}", flush=True)
    start = time.perf_counter()
    writes = distribution.writes_results(distribution_strategy)  # else another worker of a multi-worker search
    log_dir = os.path.join(run_dir, run_folder.LOGS, "search") if writes else None
    try:
        _run_tuner(tuner, recipe, bundle, log_dir, verbose)
    except failures.SearchStopped as stopped:
        raise ValueError(stopped_message(stopped, recipe, run_dir)) from None
    seconds = time.perf_counter() - start
    if is_distributed_worker():  # the chief holds the search state and writes the results
        return SearchResult(genotype=None, log={}, seconds=seconds, tuner=tuner)
    genotype = tuner.best_genotype()
    if not writes:
        return SearchResult(genotype=genotype, log={}, seconds=seconds, tuner=tuner)
    log = {"strategy": recipe.strategy, "trials": _trials(tuner)}
    if recipe.strategy == "evolution":
        log.update(
            evolution=tuner.search_log(),
            pareto=[{"val_accuracy": a, "flops": f, "ratios": list(g.ratios)} for a, f, g in tuner.pareto()],
        )
    else:
        log.update(space=cell_space(recipe).get_config(), rounds=tuner.search_log())
    if tuner.deployment is not None:
        log.update(deployment=tuner.deployment.get_config(), deploy_pareto=deploy_pareto(tuner))
    genotype.save(os.path.join(run_dir, run_folder.GENOTYPE))
    atomic_write_json(os.path.join(run_dir, run_folder.SEARCH_LOG), log)
    completed = sum(t["status"] == "COMPLETED" for t in log["trials"])
    run_folder.update_metrics(
        run_dir,
        search={
            "strategy": recipe.strategy,
            "seconds": seconds,
            "trials": len(log["trials"]),
            "completed_trials": completed,
            "dataset": bundle.describe(),
        },
    )
    return SearchResult(genotype=genotype, log=log, seconds=seconds, tuner=tuner)


def stopped_message(stopped: failures.SearchStopped, recipe, run_dir: str) -> str:
    """The one line of a search that stopped with no valid measurement, with the fix in the recipe's settings."""
    if stopped.kind == failures.DIVERGED:
        fix = f"lower search_learning_rate (now {recipe.search_learning_rate:g})"
    elif stopped.kind == failures.OVER_BUDGET:
        cheaper = "a smaller width_multiplier" if recipe.strategy == "evolution" else "fewer search_cells or channels"
        fix = f"raise deploy_budget (now {recipe.deploy_budget}), or search a cheaper space ({cheaper})"
    else:
        fix = stopped.fix
    return (
        f"{stopped.what}: {stopped.cause}; {fix}; the trials stay in {os.path.join(run_dir, run_folder.SEARCH_DIR)} "
        f"and a rerun with --output {run_dir} goes on from them"
    )


# --- bnas-tf search (arguments: bnas_tf.pipeline.commands) ---------------------------
def run(args) -> int:
    recipe = run_folder.recipe_from_args(args)
    strategy = distribution.make(getattr(args, "strategy", None), output=args.output)  # before other TF work
    bundle = load_search_data(recipe)  # a missing dataset fails before the run folder gets any file
    recipe.check_images(*bundle.input_shape[:2])  # so do images too small for the networks
    if not distribution.writes_results(strategy):  # another worker: the same steps; the chief writes the files
        result = search(recipe, args.output, bundle=bundle, verbose=0, distribution_strategy=strategy)
        print(f"worker done in {result.seconds:.0f} s; the chief writes {args.output}")
        return 0
    run_dir = run_folder.prepare_output(args.output, f"search-{recipe.name}")
    run_folder.update_metrics(run_dir, recipe=recipe.name, profile=args.profile, settings=recipe.settings())
    result = search(recipe, run_dir, bundle=bundle, verbose=0 if args.quiet else 1, distribution_strategy=strategy)
    path = os.path.join(run_dir, run_folder.GENOTYPE)
    if result.genotype is None:
        print(f"worker {os.environ['KERASTUNER_TUNER_ID']} done in {result.seconds:.0f} s; the chief writes {path}")
        return 0
    print(f"searched in {result.seconds:.0f} s: {path}")
    print(f"retrain it with `bnas-tf train {path} --recipe {recipe.name} --profile {args.profile}`")
    return 0
