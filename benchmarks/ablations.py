"""The papers' ablations, run with the library's own ops, networks and searches on the embedded digits.

Each row trains (and, for searches, first searches) on the embedded digits at the quick profiles'
sizes, for several seeds, and reports the **test** accuracy (held-out split, inference mode) of the
retrained network as mean ± sd:

- ``p2_table1``: 3-layer nets of binary conv 3x3 vs binary separable conv 3x3 (W1/A1) behind a
  full-precision stem (P2 Table 1: separable far worse).
- ``p2_block``: the binary block order, sign -> conv -> BN (ours) vs BN -> sign -> conv (P2's code),
  on P2's published CIFAR-10 cell at 3 cells x 16 channels, W1/A1.
- ``p2_table8``: binary_darts with Zeroise kept vs dropped from the op set, and with vs without the
  diversity regulariser (P2 Table 8).
- ``p1_ucb``: bnas_1bit_ucb with the UCB bonus on vs off, same path-epoch budget (P1 Eq. 10).
- ``p4``: cpnas with β = 2 vs β = 0 (P4 Eq. 1-2), and with the kernel-level CP loss on vs off in the
  search and retraining (P4 Eq. 3-4).
- ``p3_table1``: VGG-small (W1/A1, 1/8 widths) uniformly widened 0.5x/1x/2x/4x, and the Evolution
  winner beside the uniform network nearest in FLOPs (P3 Table 1).

    python benchmarks/ablations.py [--seeds 3] [--only p2_table1,p1_ucb] [--json results.json]

Where a paper's direction does not reproduce at this size, the table shows it; nothing is tuned to agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnas_tf import recipes  # noqa: E402
from bnas_tf.deploy import costs  # noqa: E402
from bnas_tf.pipeline.search import search  # noqa: E402
from bnas_tf.pipeline.train import _targets, accuracy, compile_model, load_training_data, train  # noqa: E402
from bnas_tf.space import ops, published  # noqa: E402
from bnas_tf.space.backbones import BACKBONES  # noqa: E402
from bnas_tf.space.genotype import WidthGenotype  # noqa: E402


def searched(recipe_name: str, seed: int, **settings) -> float:
    """Search with the quick profile of ``recipe_name`` (plus ``settings``), retrain the winner, test accuracy."""
    recipe = recipes.get(recipe_name, "quick", {"seed": seed, **settings})
    return retrained(winner(recipe, seed), recipe)


def winner(recipe, seed: int):
    """The genotype ``recipe``'s search finds (in a folder removed afterwards)."""
    folder = tempfile.mkdtemp(prefix="bnas-ablation-")
    try:
        tf.keras.utils.set_random_seed(seed)
        return search(recipe, folder, verbose=0).genotype
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def retrained(genotype, recipe) -> float:
    bundle = load_training_data(recipe)
    return accuracy(train(genotype, recipe, bundle, verbose=0).model, bundle.test)


def three_layer_net(op_name: str, recipe, bundle, channels: int = 32) -> tf.keras.Model:
    """Full-precision 3x3 stem, then three binary ``op_name`` layers, pool and a dense classifier."""
    binarization = recipe.binarization_config()
    inputs = tf.keras.Input(bundle.input_shape)
    x = tf.keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    for i in range(3):
        x = ops.build_op(op_name, channels, 1, binarization, name_prefix=f"layer{i}")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(bundle.num_classes)(x), name=f"three_{op_name}")


def p2_table1(seed: int) -> dict:
    recipe = recipes.get("binary_darts", "quick", {"seed": seed, "auxiliary": False})
    bundle = load_training_data(recipe)
    results = {}
    for op_name in ("conv_3x3", "sep_conv_3x3"):
        tf.keras.utils.set_random_seed(seed)
        model = three_layer_net(op_name, recipe, bundle)
        steps = int(bundle.train.cardinality())
        compile_model(model, recipe, steps, recipe.train_epochs)
        model.fit(_targets(bundle.train, bundle.num_classes, model.output_names), epochs=recipe.train_epochs, verbose=0)
        results[f"3 x binary {op_name}"] = accuracy(model, bundle.test)
    return results


def p2_block(seed: int) -> dict:
    genotype = published.get("p2_bnas_cifar10")
    results = {}
    for block in ("sign_conv_bn", "bn_sign_conv"):
        recipe = recipes.get(
            "binary_darts",
            "quick",
            {"seed": seed, "cells": 3, "channels": 16, "inter_cell_skip": True, "binary_block": block},
        )
        results[f"P2 cell, block {block}"] = retrained(genotype, recipe)
    return results


def p2_table8(seed: int) -> dict:
    quick = recipes.get("binary_darts", "quick")
    without_zero = tuple(op for op in quick.op_set if op != "zero")
    return {
        "binary_darts (Zeroise, diversity)": searched("binary_darts", seed),
        "without Zeroise": searched("binary_darts", seed, op_set=without_zero),
        "without diversity (λ = 0)": searched("binary_darts", seed, diversity_lambda=0.0),
    }


def p1_ucb(seed: int) -> dict:
    return {
        "bnas_1bit_ucb, UCB on": searched("bnas_1bit_ucb", seed, ucb=True),
        "UCB off": searched("bnas_1bit_ucb", seed, ucb=False),
    }


def p4(seed: int) -> dict:
    return {
        "cpnas, β = 2": searched("cpnas", seed, beta=2.0),
        "β = 0 (child accuracy only)": searched("cpnas", seed, beta=0.0),
        "β = 2, CP loss on": searched("cpnas", seed, beta=2.0, kernel_loss=True),
    }


def p3_table1(seed: int) -> dict:
    recipe = recipes.get("evolution_vgg_small", "quick", {"seed": seed})
    layers = len(BACKBONES["vgg_small"])
    results, flops = {}, {}
    for ratio in (0.5, 1, 2, 4):
        genotype = WidthGenotype("vgg_small", (ratio,) * layers)
        results[f"uniform {ratio}x"] = retrained(genotype, recipe)
        flops[f"uniform {ratio}x"] = width_flops(genotype, recipe)
    found = winner(recipe, seed)
    results["Evolution winner"] = retrained(found, recipe)
    flops["Evolution winner"] = width_flops(found, recipe)
    return {"accuracy": results, "flops": flops}


def width_flops(genotype, recipe) -> float:
    from bnas_tf.pipeline.train import build_model

    return float(costs.profile(build_model(genotype, recipe, num_classes=10, input_shape=(16, 16, 1)))["flops"])


ABLATIONS = {
    "p2_table1": p2_table1,
    "p2_block": p2_block,
    "p2_table8": p2_table8,
    "p1_ucb": p1_ucb,
    "p4": p4,
    "p3_table1": p3_table1,
}


def summarise(runs: list) -> dict:
    """``{row: (mean, sd, n)}`` over seeds of ``[{row: accuracy}, ...]``."""
    rows = {}
    for run in runs:
        for row, value in run.items():
            rows.setdefault(row, []).append(value)
    return {row: (float(np.mean(v)), float(np.std(v)), len(v)) for row, v in rows.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=",".join(ABLATIONS), help="comma-separated ablations to run")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ABLATIONS))
    if unknown:
        parser.error(f"unknown ablations {unknown}; choose from {', '.join(ABLATIONS)}")
    everything = {}
    for name in chosen:
        runs, extra, start = [], [], time.perf_counter()
        for seed in range(args.seeds):
            result = ABLATIONS[name](seed)
            if "accuracy" in result:
                extra.append(result["flops"])
                result = result["accuracy"]
            runs.append(result)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)
        summary = summarise(runs)
        everything[name] = {"runs": runs, "flops": extra, "seconds": time.perf_counter() - start}
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(everything, handle, indent=1)
        print(f"\n{name} ({args.seeds} seeds, {everything[name]['seconds']:.0f} s)")
        print("| row | test accuracy (mean ± sd) |" + (" MFLOPs |" if extra else ""))
        print("|---|---|" + ("---|" if extra else ""))
        for row, (mean, sd, _) in summary.items():
            cost = f" {np.mean([f[row] for f in extra]) / 1e6:.2f} |" if extra else ""
            print(f"| {row} | {100 * mean:.2f} ± {100 * sd:.2f}% |{cost}", flush=True)


if __name__ == "__main__":
    main()
