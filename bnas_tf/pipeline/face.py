"""``bnas-tf run --recipe bnas_face``: search -> margin retraining -> verification -> LCE export -> report.

The face counterpart of :func:`bnas_tf.pipeline.run.run_recipe` (which hands face recipes here): the search is
the recipe's (paths scored by verification accuracy, :mod:`bnas_tf.face.tuners`); the winner is
retrained with the ArcFace margin (:mod:`bnas_tf.pipeline.face_train`); the embedding model is saved as
``model.keras``, verified on every pair set with the 10-fold protocol, converted with LCE, and its
.tflite embeddings are compared with Keras (cosine similarity, ``verify(mode="embedding")``) and
verified on the same pairs. ``verification.json`` keeps every summary (ROC included) for the report's
"Face verification" section (:mod:`bnas_tf.pipeline.face_report`).
"""

from __future__ import annotations

import os
import time

from bnas_tf.convert import verify
from bnas_tf.convert.verification import tflite_outputs
from bnas_tf.face.data import load_pairs, pairs_from_dataset
from bnas_tf.files import atomic_write_json
from bnas_tf.pipeline import conversion, report, run_folder, search, train
from bnas_tf.pipeline.console import fit_verbosity
from bnas_tf.pipeline.face_train import embeddings, train_face

VERIFICATION = "verification.json"


def verification_sets(recipe, bundle) -> list:
    """The recipe's test pair lists, or (none given) pairs drawn among the bundle's test images."""
    if recipe.verification_pairs:
        return [load_pairs(spec, bundle.input_shape) for spec in recipe.verification_pairs]
    return [pairs_from_dataset(bundle.test, name="test", num_pairs=recipe.generated_pairs, seed=recipe.seed)]


def _brief(summary: dict) -> dict:
    """A summary without its per-fold lists and ROC arrays (what metrics.json keeps)."""
    return {key: value for key, value in summary.items() if key not in ("roc", "fold_accuracies", "fold_thresholds")}


def convert_and_verify(model, recipe, run_dir: str, bundle, pair_sets, *, verbose: int = 1) -> dict:
    """model.tflite from the embedding model; cosine check against Keras; .tflite verification accuracy."""
    converted = conversion.convert(model, recipe, run_dir)
    check = verify(model, converted.path, bundle.test, max_samples=recipe.verify_samples, mode="embedding")
    with open(converted.path, "rb") as f:
        flatbuffer = f.read()
    summaries = {pairs.name: pairs.summary(tflite_outputs(flatbuffer, pairs.images)) for pairs in pair_sets}
    checked = {
        "min_cosine": check["min_cosine"],
        "mean_cosine": check["mean_cosine"],
        "max_abs_diff": check["max_abs_diff"],
        "agrees": check["min_cosine"] >= recipe.min_cosine,
        "verified_on": {"test": check["num_samples"]},
        "check": check,
        "verification": {name: _brief(s) for name, s in summaries.items()},
    }
    if verbose:
        accuracy = ", ".join(f"{name} {s['accuracy']:.2%}" for name, s in summaries.items())
        print(
            f"converted in {converted.seconds:.1f} s: {converted.path} ({converted.size_bytes / 1024:.1f} KB); "
            f"embeddings vs Keras: cosine >= {check['min_cosine']:.6f} on {check['num_samples']} images; .tflite "
            f"verification {accuracy}",
            flush=True,
        )
        if not checked["agrees"]:
            print(
                f"warning: a .tflite embedding has cosine {check['min_cosine']:.6f} < min_cosine {recipe.min_cosine} "
                "with Keras (an untrained network's sign ties at 0 do this; train longer)",
                flush=True,
            )
    return summaries, conversion.record(run_dir, model, converted, **checked)


def run_face_recipe(recipe, run_dir: str, *, profile: str = "custom", verbose: int = 1, search_bundle=None) -> dict:
    """The whole face job for ``recipe`` into ``run_dir``; returns metrics.json's content."""
    start = time.perf_counter()
    bundle = train.load_training_data(recipe)
    pair_sets = verification_sets(recipe, bundle)  # a bad pair list fails before the search and before any file
    run_folder.update_metrics(
        run_dir,
        recipe=recipe.name,
        paper=recipe.paper,
        profile=profile,
        task=recipe.task,
        settings=recipe.settings(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    found = search.search(recipe, run_dir, bundle=search_bundle, verbose=verbose)
    if verbose:
        print(
            f"searched in {found.seconds:.0f} s; retraining the winner with the ArcFace margin "
            f"({recipe.train_epochs} epochs)",
            flush=True,
        )
    trained = train_face(
        found.genotype,
        recipe,
        bundle,
        log_dir=os.path.join(run_dir, run_folder.LOGS, "train"),
        verbose=fit_verbosity(verbose),
    )
    trained.model.save(os.path.join(run_dir, run_folder.MODEL))
    atomic_write_json(os.path.join(run_dir, run_folder.HISTORY), trained.history)
    keras = {pairs.name: pairs.summary(embeddings(trained.model, pairs.images)) for pairs in pair_sets}
    run_folder.update_metrics(
        run_dir,
        train={
            "seconds": trained.seconds,
            "epochs": trained.epochs,
            "dataset": bundle.describe(),
            "final": {key: values[-1] for key, values in trained.history.items() if values},
        },
        keras={
            "val_accuracy": trained.history.get("val_accuracy", [None])[-1],
            "verification": {name: _brief(s) for name, s in keras.items()},
        },
    )
    tflite, _ = convert_and_verify(trained.model, recipe, run_dir, bundle, pair_sets, verbose=verbose)
    atomic_write_json(os.path.join(run_dir, VERIFICATION), {"keras": keras, "tflite": tflite})
    metrics = run_folder.update_metrics(run_dir, total_seconds=time.perf_counter() - start)
    report.write_report(run_dir)
    return metrics


def done_line(metrics: dict) -> str:
    """``bnas-tf run``'s last result line for a face run."""
    keras, tflite = metrics["keras"]["verification"], metrics["tflite"]
    parts = [
        f"{name} Keras {s['accuracy']:.2%} / .tflite {tflite['verification'][name]['accuracy']:.2%}"
        for name, s in keras.items()
    ]
    return (
        f"done in {metrics['total_seconds']:.0f} s: verification accuracy (10-fold) {', '.join(parts)}; "
        f".tflite embeddings cosine >= {tflite['min_cosine']:.6f} vs Keras"
    )
