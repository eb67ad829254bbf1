"""The main job, ``bnas-tf run``: search -> retrain the winner -> convert with LCE -> verify -> report.

With no arguments it runs the default recipe's quick profile on the embedded
digits (``bnas_tf.recipes.DEFAULT_RECIPE``) and writes a run folder
``runs/<timestamp>-<recipe>/`` (:mod:`bnas_tf.pipeline.run_folder`): genotype.json,
model.keras, model.tflite, metrics.json, report.md, PNG plots, the search log,
the training history and TensorBoard logs (``logs/search``, ``logs/train``).
The .tflite is checked in Larq Compute Engine's interpreter on the validation
and test splits, and its accuracy is reported next to the Keras model's.
"""

from __future__ import annotations

import os
import time

from bnas_tf.convert import verify
from bnas_tf.pipeline import baselines, conversion, distribution, report, run_folder, search, train
from bnas_tf.pipeline.console import fit_verbosity
from bnas_tf.pipeline.face import done_line, run_face_recipe
from bnas_tf.tuners import keras_tuner_internals


def preflight(recipe, bundle) -> None:
    """Check the settings against the loaded data before anything runs or is written: what the recipe alone
    cannot know (its own checks ran when it was made), such as images too small for its networks."""
    height, width = bundle.input_shape[:2]
    recipe.check_images(height, width)


def convert_and_verify(model, recipe, run_dir: str, bundle, *, verbose: int = 1) -> dict:
    """Write model.tflite, check it against Keras on validation and test, and record ``tflite``/``costs``/``size``."""
    converted = conversion.convert(model, recipe, run_dir)
    checks = {
        part: verify(model, converted.path, getattr(bundle, part), max_samples=recipe.verify_samples)
        for part in ("validation", "test")
    }
    checked = {
        "val_accuracy": checks["validation"]["tflite_accuracy"],
        "test_accuracy": checks["test"]["tflite_accuracy"],
        "top1_agreement": min(c["top1_agreement"] for c in checks.values()),
        "max_abs_diff": max(c["max_abs_diff"] for c in checks.values()),
        "verified_on": {part: c["num_samples"] for part, c in checks.items()},
        "checks": checks,
    }
    if verbose:
        print(
            f"converted in {converted.seconds:.1f} s: {converted.path} ({converted.size_bytes / 1024:.1f} KB); "
            f".tflite accuracy val {checked['val_accuracy']:.2%} / test {checked['test_accuracy']:.2%}, top-1 "
            f"agreement with Keras {checked['top1_agreement']:.2%}",
            flush=True,
        )
    return conversion.record(run_dir, model, converted, **checked)


def run_recipe(
    recipe, run_dir: str, *, profile: str = "custom", verbose: int = 1, search_bundle=None, distribution_strategy=None
) -> dict:
    """The whole job for ``recipe`` into ``run_dir``; returns metrics.json's content.

    What ``bnas-tf run`` does after parsing its arguments: search with the recipe's tuner (genotype.json,
    search_log.json, the tuner state under ``search/``), retrain the winner with the recipe's schedule
    (model.keras, history.json), convert it with Larq Compute Engine and verify model.tflite against
    Keras on the validation and test splits, then write report.md and its plots. A face-verification
    recipe (``task == "face_verification"``) runs the face job instead (identity training, margin head,
    pair verification; :mod:`bnas_tf.face`). Rerunning on the same folder resumes the search.

    Args:
        recipe: the settings, e.g. ``bnas_tf.recipes.get("cpnas", "quick", ["train_epochs=5"])``.
        run_dir: the run folder, created if missing.
        profile: the profile name recorded in metrics.json (default ``"custom"``).
        verbose: 0 for no progress lines, 1 (default) for progress lines and Keras training progress
            (bars on a terminal, one line per epoch in a log file).
        search_bundle: the search data, a :class:`~bnas_tf.data.DataBundle` with the search split, checked
            against the recipe (:func:`preflight`) before anything is written; default (None) loaded from the
            recipe's dataset.
        distribution_strategy: a ``tf.distribute.Strategy`` the search's supernet and the winner's retraining
            train under (default: none); every process of a multi-worker strategy calls this with the same
            ``run_dir``, and only the one that writes results (its chief) writes there, converts and trains the
            baselines: the others read the chief's search state and return None after the retraining.

    Returns:
        The content of ``run_dir/metrics.json``: settings, search, Keras and .tflite accuracies, costs,
        sizes and the total time.

    Raises:
        ValueError: images of ``search_bundle`` too small for the recipe's networks, and every error of the
            search, training and conversion steps.
    """
    if search_bundle is not None:
        preflight(recipe, search_bundle)
    if recipe.task == "face_verification":  # identity training, margin head, pair verification (bnas_tf.face)
        return run_face_recipe(recipe, run_dir, profile=profile, verbose=verbose, search_bundle=search_bundle)

    start = time.perf_counter()
    if not distribution.writes_results(distribution_strategy):  # another worker: the same training steps, no files
        found = search.search(
            recipe, run_dir, bundle=search_bundle, verbose=0, distribution_strategy=distribution_strategy
        )
        train.train(found.genotype, recipe, verbose=0, distribution_strategy=distribution_strategy)
        return None
    run_folder.update_metrics(
        run_dir,
        recipe=recipe.name,
        paper=recipe.paper,
        profile=profile,
        settings=recipe.settings(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    found = search.search(
        recipe, run_dir, bundle=search_bundle, verbose=verbose, distribution_strategy=distribution_strategy
    )
    if verbose:
        print(f"searched in {found.seconds:.0f} s; retraining the winner ({recipe.train_epochs} epochs)", flush=True)
    bundle = train.load_training_data(recipe)
    trained = train.train_and_save(
        found.genotype,
        recipe,
        run_dir,
        bundle=bundle,
        verbose=fit_verbosity(verbose),
        distribution_strategy=distribution_strategy,
    )
    convert_and_verify(trained.model, recipe, run_dir, bundle, verbose=verbose)
    if getattr(recipe, "baselines", 0):
        baselines.run_baselines(recipe, found.genotype, trained.model, run_dir, bundle, verbose=verbose)
    metrics = run_folder.update_metrics(run_dir, total_seconds=time.perf_counter() - start)
    report.write_report(run_dir)
    return metrics


# --- bnas-tf run (arguments: bnas_tf.pipeline.commands) ------------------------------
def run(args) -> int:
    distributed = sorted(name for name in keras_tuner_internals.DISTRIBUTED_VARIABLES if name in os.environ)
    if distributed:
        raise ValueError(
            f"bnas-tf run does not run distributed ({', '.join(distributed)} set): run `bnas-tf search -o DIR` on "
            "the chief and the workers, then `bnas-tf train DIR/genotype.json` (docs/scaling_out.md); unset "
            "them for a single-process run"
        )
    recipe = run_folder.recipe_from_args(args)
    if getattr(args, "strategy", None) and recipe.task != "classification":
        raise ValueError(
            f"--strategy trains classification recipes; {recipe.name!r} is a {recipe.task} recipe: run it "
            "without --strategy"
        )
    strategy = distribution.make(getattr(args, "strategy", None), output=args.output)  # before other TF work
    search_bundle = search.load_search_data(recipe)  # a missing dataset fails before the run folder gets any file
    preflight(recipe, search_bundle)
    if not distribution.writes_results(strategy):  # another worker: the same training steps; the chief writes
        run_recipe(recipe, args.output, verbose=0, search_bundle=search_bundle, distribution_strategy=strategy)
        print(f"worker done: the chief converts the winner and writes {args.output}")
        return 0
    run_dir = run_folder.prepare_output(args.output, recipe.name)
    verbose = 0 if args.quiet else 1
    print(f"bnas-tf run: recipe {recipe.name} ({args.profile} profile) -> {run_dir}", flush=True)
    metrics = run_recipe(
        recipe,
        run_dir,
        profile=args.profile,
        verbose=verbose,
        search_bundle=search_bundle,
        distribution_strategy=strategy,
    )
    keras, tflite = metrics["keras"], metrics["tflite"]
    if recipe.task == "face_verification":
        print(done_line(metrics))
    else:
        print(
            f"done in {metrics['total_seconds']:.0f} s: test accuracy Keras {keras['test_accuracy']:.2%}, "
            f".tflite {tflite['test_accuracy']:.2%} (verified in the LCE interpreter)"
        )
    print(f"report: {os.path.join(run_dir, run_folder.REPORT)}")
    return 0
