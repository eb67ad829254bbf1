"""Our weight-sharing oracles against KerasTuner's RandomSearch on the same cell space, data and epoch budget.

For each seed: ChildParent, OperationPruning (+UCB) and RandomSearch search the
same cell space on the embedded digits; RandomSearch trains every sampled
architecture from scratch (as users would do today) for one epoch, with as
many trials as our searches train path-epochs. Each winner is then retrained
with the same schedule and its best validation accuracy reported.

    python benchmarks/vs_random_search.py [--seeds 3] [--train-epochs 15] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnas_tf import recipes  # noqa: E402
from bnas_tf.pipeline.search import cell_space, load_search_data, search  # noqa: E402
from bnas_tf.pipeline.train import load_training_data, train  # noqa: E402
from bnas_tf.space.networks import build_network  # noqa: E402
from bnas_tf.space.supernet import KINDS  # noqa: E402
from bnas_tf.tuners.sampling import edge_name  # noqa: E402

METHODS = {"ChildParent": "cpnas", "OperationPruning+UCB": "bnas_1bit_ucb"}


def path_epochs(tuner) -> int:
    """Sampled paths trained for an epoch each: the budget RandomSearch gets."""
    return sum(1 for t in tuner.oracle.trials.values() if t.hyperparameters.values.get("phase") == "sample")


def random_search(recipe, bundle, trials: int, steps: int, folder: str):
    space = cell_space(recipe)

    def build(hp):
        choice = {
            kind: [
                space.op_set.index(hp.Choice(edge_name(kind, e), list(space.op_set))) for e in range(space.num_edges)
            ]
            for kind in KINDS
        }
        model = build_network(
            space.genotype(choice),
            cells=space.cells,
            channels=space.channels,
            num_classes=bundle.num_classes,
            input_shape=bundle.input_shape,
            binarization=recipe.binarization,
            reduction_cells=space.reduction_cells,
        )
        model.compile(
            tf.keras.optimizers.SGD(recipe.search_learning_rate, momentum=0.9),
            tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    tuner = kt.RandomSearch(
        build, objective="val_accuracy", max_trials=trials, seed=recipe.seed, directory=folder, project_name="random"
    )
    tuner.search(
        bundle.search_weights.repeat(),
        validation_data=bundle.search_validation,
        epochs=1,
        steps_per_epoch=steps,
        verbose=0,
    )
    best = tuner.get_best_hyperparameters()[0]
    choice = {
        kind: [space.op_set.index(best.get(edge_name(kind, e))) for e in range(space.num_edges)] for kind in KINDS
    }
    return space.genotype(choice, name="random_search")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=40, help="steps per sampled epoch (all methods)")
    args = parser.parse_args()
    rows = {name: {"accuracy": [], "seconds": []} for name in list(METHODS) + ["RandomSearch"]}
    for seed in range(args.seeds):
        budget = None
        # one retraining recipe for every winner, so only the architecture differs
        retrain = recipes.get("bnas_1bit_ucb", "quick", {"seed": seed, "train_epochs": args.train_epochs})
        for name, recipe_name in METHODS.items():
            recipe = recipes.get(
                recipe_name,
                "quick",
                {"seed": seed, "search_steps_per_epoch": args.steps, "train_epochs": args.train_epochs},
            )
            folder = tempfile.mkdtemp(prefix="bnas-vs-")
            try:
                tf.keras.utils.set_random_seed(seed)
                result = search(recipe, folder, verbose=0)
                budget = budget or path_epochs(result.tuner)
                trained = train(result.genotype, retrain, load_training_data(retrain), verbose=0)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            rows[name]["accuracy"].append(max(trained.history["val_accuracy"]))
            rows[name]["seconds"].append(result.seconds)
            print(
                f"seed {seed} {name}: search {result.seconds:.0f} s, retrained best val "
                f"{rows[name]['accuracy'][-1]:.4f}",
                flush=True,
            )
        recipe = retrain
        folder = tempfile.mkdtemp(prefix="bnas-vs-")
        try:
            tf.keras.utils.set_random_seed(seed)
            start = time.perf_counter()
            genotype = random_search(recipe, load_search_data(recipe), budget, args.steps, folder)
            seconds = time.perf_counter() - start
            trained = train(genotype, recipe, load_training_data(recipe), verbose=0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows["RandomSearch"]["accuracy"].append(max(trained.history["val_accuracy"]))
        rows["RandomSearch"]["seconds"].append(seconds)
        print(
            f"seed {seed} RandomSearch ({budget} trials): search {seconds:.0f} s, retrained best val "
            f"{rows['RandomSearch']['accuracy'][-1]:.4f}",
            flush=True,
        )

    print(f"\n{'method':24s} {'retrained val acc (mean ± sd)':>30s} {'search wall time (s)':>22s}")
    for name, row in rows.items():
        acc, sec = np.array(row["accuracy"]), np.array(row["seconds"])
        print(f"{name:24s} {acc.mean():>18.4f} ± {acc.std():.4f} {sec.mean():>16.1f} ± {sec.std():.1f}")


if __name__ == "__main__":
    main()
