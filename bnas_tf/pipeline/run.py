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

from bnas_tf.convert import inspect, to_tflite, verify
from bnas_tf.deploy import costs
from bnas_tf.native_logs import converter_output_hidden
from bnas_tf.pipeline import report, run_folder, search, train
from bnas_tf.pipeline.console import fit_verbosity
from bnas_tf.pipeline.face import done_line, run_face_recipe


def convert_and_verify(model, recipe, run_dir: str, bundle, *, verbose: int = 1) -> dict:
    """Write model.tflite, check it against Keras on validation and test, and record ``tflite``/``costs``/``size``."""
    path = os.path.join(run_dir, run_folder.TFLITE)
    start = time.perf_counter()
    with converter_output_hidden():
        to_tflite(model, path, weights=recipe.tflite_weights)
    convert_seconds = time.perf_counter() - start
    info = inspect(path, model=model)
    checks = {
        part: verify(model, path, getattr(bundle, part), max_samples=recipe.verify_samples)
        for part in ("validation", "test")
    }
    tflite = {
        "path": run_folder.TFLITE,
        "weights": recipe.tflite_weights,
        "convert_seconds": convert_seconds,
        "val_accuracy": checks["validation"]["tflite_accuracy"],
        "test_accuracy": checks["test"]["tflite_accuracy"],
        "top1_agreement": min(c["top1_agreement"] for c in checks.values()),
        "max_abs_diff": max(c["max_abs_diff"] for c in checks.values()),
        "verified_on": {part: c["num_samples"] for part, c in checks.items()},
        "checks": checks,
        "ops": info["ops"],
        "binary_kernel_ops": info["binary_kernel_ops"],
        "float_kernel_ops": info["float_kernel_ops"],
    }
    size = {
        "tflite_bytes": info["size_bytes"],
        "keras_bytes": os.path.getsize(os.path.join(run_dir, run_folder.MODEL)),
        "weight_bound_bytes": info.get("bound_bytes"),
        "size_over_bound": info.get("size_over_bound"),
    }
    if verbose:
        print(
            f"converted in {convert_seconds:.1f} s: {path} ({info['size_bytes'] / 1024:.1f} KB); .tflite accuracy "
            f"val {tflite['val_accuracy']:.2%} / test {tflite['test_accuracy']:.2%}, top-1 agreement with Keras "
            f"{tflite['top1_agreement']:.2%}",
            flush=True,
        )
    return run_folder.update_metrics(run_dir, tflite=tflite, costs=costs.profile(model), size=size)


def run_recipe(recipe, run_dir: str, *, profile: str = "custom", verbose: int = 1, search_bundle=None) -> dict:
    """The whole job for ``recipe`` into ``run_dir``; returns metrics.json's content."""
    if recipe.task == "face_verification":  # identity training, margin head, pair verification (bnas_tf.face)
        return run_face_recipe(recipe, run_dir, profile=profile, verbose=verbose, search_bundle=search_bundle)

    start = time.perf_counter()
    run_folder.update_metrics(
        run_dir,
        recipe=recipe.name,
        paper=recipe.paper,
        profile=profile,
        settings=recipe.settings(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    found = search.search(recipe, run_dir, bundle=search_bundle, verbose=verbose)
    if verbose:
        print(f"searched in {found.seconds:.0f} s; retraining the winner ({recipe.train_epochs} epochs)", flush=True)
    bundle = train.load_training_data(recipe)
    trained = train.train_and_save(found.genotype, recipe, run_dir, bundle=bundle, verbose=fit_verbosity(verbose))
    convert_and_verify(trained.model, recipe, run_dir, bundle, verbose=verbose)
    metrics = run_folder.update_metrics(run_dir, total_seconds=time.perf_counter() - start)
    report.write_report(run_dir)
    return metrics


# --- bnas-tf run (arguments: bnas_tf.pipeline.commands) ------------------------------
def run(args) -> int:
    if "KERASTUNER_ORACLE_IP" in os.environ:
        raise ValueError(
            "bnas-tf run does not run distributed: run `bnas-tf search -o DIR` on the chief and the "
            "workers, then `bnas-tf train DIR/genotype.json` (docs/scaling_out.md)"
        )
    recipe = run_folder.recipe_from_args(args)
    search_bundle = search.load_search_data(recipe)  # a missing dataset fails before the run folder gets any file
    run_dir = run_folder.prepare_output(args.output, recipe.name)
    verbose = 0 if args.quiet else 1
    print(f"bnas-tf run: recipe {recipe.name} ({args.profile} profile) -> {run_dir}", flush=True)
    metrics = run_recipe(recipe, run_dir, profile=args.profile, verbose=verbose, search_bundle=search_bundle)
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
