"""Our weight-sharing oracles against KerasTuner's RandomSearch and against no search at all.

For each seed: ChildParent and OperationPruning (+UCB) search the default run's cell space on the
embedded digits (the same space, search data and proxy binarization for both); KerasTuner's
RandomSearch then gets **the same search wall time** (the mean of ours), training each sampled
architecture from scratch for one epoch (as users would do today); and ``--randoms`` uniform random
genotypes of the same space stand for no search at all. Every winner (and every random genotype) is
retrained with the same recipe and scored on the **test** split, which no method saw while searching
or retraining.

    python benchmarks/vs_random_search.py [--seeds 6] [--first-seed 0] [--randoms 2] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnas_tf import recipes  # noqa: E402
from bnas_tf.pipeline.baselines import random_genotypes  # noqa: E402
from bnas_tf.pipeline.search import cell_space, load_search_data, search  # noqa: E402
from bnas_tf.pipeline.train import accuracy, load_training_data, train  # noqa: E402
from bnas_tf.space.networks import build_network  # noqa: E402
from bnas_tf.space.supernet import KINDS  # noqa: E402
from bnas_tf.tuners.sampling import edge_name  # noqa: E402

METHODS = {"ChildParent": "cpnas", "OperationPruning+UCB": "bnas_1bit_ucb"}
#: what every search takes from the default run's recipe: its space, search data and proxy binarization
SHARED = (
    "op_set",
    "nodes",
    "search_cells",
    "search_channels",
    "search_reduction_cells",
    "inter_cell_skip",
    "search_batch_size",
    "search_steps_per_epoch",
    "search_binarization",
)


def random_search(recipe, bundle, seconds: float, folder: str):
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
        build, objective="val_accuracy", max_trials=1, seed=recipe.seed, directory=folder, project_name="random"
    )
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:  # one more trial while the budget lasts
        tuner.search(
            bundle.search_weights.repeat(),
            validation_data=bundle.search_validation,
            epochs=1,
            steps_per_epoch=recipe.search_steps_per_epoch,
            verbose=0,
        )
        tuner.oracle.max_trials += 1
    best = tuner.get_best_hyperparameters()[0]
    choice = {
        kind: [space.op_set.index(best.get(edge_name(kind, e))) for e in range(space.num_edges)] for kind in KINDS
    }
    return space.genotype(choice, name="random_search"), len(tuner.oracle.trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--randoms", type=int, default=2, help="uniform random genotypes a seed")
    parser.add_argument("--set", action="append", default=[], help="override a quick-profile setting (all methods)")
    args = parser.parse_args()
    rows = {name: {"accuracy": [], "seconds": []} for name in list(METHODS) + ["RandomSearch", "random genotypes"]}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        settings = args.set + [f"seed={seed}"]
        # one retraining recipe for every winner, so only the architecture differs
        retrain = recipes.get("cpnas", "quick", settings)
        bundle = load_training_data(retrain)

        def score(genotype, retrain=retrain, bundle=bundle):
            return accuracy(train(genotype, retrain, bundle, verbose=0).model, bundle.test)

        winners = {}
        for name, recipe_name in METHODS.items():
            recipe = recipes.get(recipe_name, "quick", settings)
            recipe = dataclasses.replace(recipe, **{field: getattr(retrain, field) for field in SHARED})
            folder = tempfile.mkdtemp(prefix="bnas-vs-")
            try:
                tf.keras.utils.set_random_seed(seed)
                result = search(recipe, folder, verbose=0)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            winners[name] = result.genotype
            rows[name]["accuracy"].append(score(result.genotype))
            rows[name]["seconds"].append(result.seconds)
            print(
                f"seed {seed} {name}: search {result.seconds:.0f} s, test {rows[name]['accuracy'][-1]:.4f}", flush=True
            )
        budget = float(np.mean([rows[name]["seconds"][-1] for name in METHODS]))
        folder = tempfile.mkdtemp(prefix="bnas-vs-")
        try:
            tf.keras.utils.set_random_seed(seed)
            start = time.perf_counter()
            genotype, trials = random_search(retrain, load_search_data(retrain), budget, folder)
            seconds = time.perf_counter() - start
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows["RandomSearch"]["accuracy"].append(score(genotype))
        rows["RandomSearch"]["seconds"].append(seconds)
        print(
            f"seed {seed} RandomSearch ({trials} trials in {seconds:.0f} s): "
            f"test {rows['RandomSearch']['accuracy'][-1]:.4f}",
            flush=True,
        )
        for genotype in random_genotypes(dataclasses.replace(retrain, baselines=args.randoms), winners["ChildParent"]):
            rows["random genotypes"]["accuracy"].append(score(genotype))
            rows["random genotypes"]["seconds"].append(0.0)
            print(f"seed {seed} {genotype.name}: test {rows['random genotypes']['accuracy'][-1]:.4f}", flush=True)

    print(f"\n| method | test accuracy (mean ± sd, {args.seeds} seeds) | search wall time (s) |")
    print("|---|---|---|")
    for name, row in rows.items():
        acc, sec = np.array(row["accuracy"]), np.array(row["seconds"])
        print(f"| {name} | {100 * acc.mean():.2f} ± {100 * acc.std():.2f}% | {sec.mean():.1f} ± {sec.std():.1f} |")


if __name__ == "__main__":
    main()
