"""The main job, ``bnas-tf run``: search -> retrain the winner -> convert with LCE -> verify -> report.

With no arguments it runs the default recipe's quick profile on the embedded
digits (``bnas_tf.recipes.DEFAULT_RECIPE``) and writes a run folder
``runs/<timestamp>-<recipe>/`` (:mod:`bnas_tf.runfolder`): genotype.json,
model.keras, model.tflite, metrics.json, report.md, PNG plots, the search log,
the training history and TensorBoard logs (``logs/search``, ``logs/train``).
The .tflite is checked in Larq Compute Engine's interpreter on the validation
and test splits, and its accuracy is reported next to the Keras model's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from bnas_tf import runfolder


def convert_and_verify(model, recipe, run_dir: str, bundle, *, verbose: int = 1) -> dict:
    """Write model.tflite, check it against Keras on validation and test, and record ``tflite``/``costs``/``size``."""
    from bnas_tf import costs
    from bnas_tf.convert import inspect, to_tflite, verify

    path = os.path.join(run_dir, runfolder.TFLITE)
    start = time.perf_counter()
    to_tflite(model, path, weights=recipe.tflite_weights)
    convert_seconds = time.perf_counter() - start
    info = inspect(path, model=model)
    checks = {part: verify(model, path, getattr(bundle, part), max_samples=recipe.verify_samples)
              for part in ("validation", "test")}
    tflite = {"path": runfolder.TFLITE, "weights": recipe.tflite_weights, "convert_seconds": convert_seconds,
              "val_accuracy": checks["validation"]["tflite_accuracy"], "test_accuracy": checks["test"]["tflite_accuracy"],
              "top1_agreement": min(c["top1_agreement"] for c in checks.values()),
              "max_abs_diff": max(c["max_abs_diff"] for c in checks.values()),
              "verified_on": {part: c["num_samples"] for part, c in checks.items()},
              "checks": checks, "ops": info["ops"], "binary_kernel_ops": info["binary_kernel_ops"],
              "float_kernel_ops": info["float_kernel_ops"]}
    size = {"tflite_bytes": info["size_bytes"], "keras_bytes": os.path.getsize(os.path.join(run_dir, runfolder.MODEL)),
            "weight_bound_bytes": info.get("bound_bytes"), "size_over_bound": info.get("size_over_bound")}
    if verbose:
        print(f"converted in {convert_seconds:.1f} s: {path} ({info['size_bytes'] / 1024:.1f} KB); .tflite accuracy "
              f"val {tflite['val_accuracy']:.2%} / test {tflite['test_accuracy']:.2%}, top-1 agreement with Keras "
              f"{tflite['top1_agreement']:.2%}", flush=True)
    return runfolder.update_metrics(run_dir, tflite=tflite, costs=costs.profile(model), size=size)


def run_recipe(recipe, run_dir: str, *, profile: str = "custom", verbose: int = 1, search_bundle=None) -> dict:
    """The whole job for ``recipe`` into ``run_dir``; returns metrics.json's content."""
    if recipe.task == "face_verification":  # identity training, margin head, pair verification (bnas_tf.face)
        from bnas_tf.face.pipeline import run_face_recipe

        return run_face_recipe(recipe, run_dir, profile=profile, verbose=verbose, search_bundle=search_bundle)
    from bnas_tf import report, search, train

    start = time.perf_counter()
    runfolder.update_metrics(run_dir, recipe=recipe.name, paper=recipe.paper, profile=profile,
                             settings=recipe.settings(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
    found = search.search(recipe, run_dir, bundle=search_bundle, verbose=verbose)
    if verbose:
        print(f"searched in {found.seconds:.0f} s; retraining the winner ({recipe.train_epochs} epochs)", flush=True)
    bundle = train.load_training_data(recipe)
    trained = train.train_and_save(found.genotype, recipe, run_dir, bundle=bundle, verbose=_fit_verbosity(verbose))
    convert_and_verify(trained.model, recipe, run_dir, bundle, verbose=verbose)
    metrics = runfolder.update_metrics(run_dir, total_seconds=time.perf_counter() - start)
    report.write_report(run_dir)
    return metrics


def _fit_verbosity(verbose: int) -> int:
    """Keras progress bars on a terminal; one line per epoch in a log file."""
    if not verbose:
        return 0
    return 1 if sys.stdout.isatty() else 2


# --- bnas-tf run --------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    runfolder.add_recipe_arguments(parser)


def run(args) -> int:
    from bnas_tf import search

    if "KERASTUNER_ORACLE_IP" in os.environ:
        raise ValueError("bnas-tf run does not run distributed: run `bnas-tf search -o DIR` on the chief and the "
                         "workers, then `bnas-tf train DIR/genotype.json` (docs/scaling_out.md)")
    recipe = runfolder.recipe_from_args(args)
    search_bundle = search.load_search_data(recipe)  # a missing dataset fails before the run folder gets any file
    run_dir = runfolder.prepare_output(args.output, recipe.name)
    verbose = 0 if args.quiet else 1
    print(f"bnas-tf run: recipe {recipe.name} ({args.profile} profile) -> {run_dir}", flush=True)
    metrics = run_recipe(recipe, run_dir, profile=args.profile, verbose=verbose, search_bundle=search_bundle)
    keras, tflite = metrics["keras"], metrics["tflite"]
    if recipe.task == "face_verification":
        from bnas_tf.face.pipeline import done_line

        print(done_line(metrics))
    else:
        print(f"done in {metrics['total_seconds']:.0f} s: test accuracy Keras {keras['test_accuracy']:.2%}, "
              f".tflite {tflite['test_accuracy']:.2%} (verified in the LCE interpreter)")
    print(f"report: {os.path.join(run_dir, runfolder.REPORT)}")
    return 0
