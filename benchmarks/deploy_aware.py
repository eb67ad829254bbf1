"""ChildParent with and without an LCE-aware deployment penalty: what the phone will run.

For each seed, the quick ``cpnas`` recipe (P4 Child-Parent, W1/A1, digits)
searches a space where one conv LCE accelerates (``conv_3x3`` ->
``LceBconv2d``) competes with one it cannot (``sep_conv_3x3``: its depthwise
part stays a float ``DEPTHWISE_CONV_2D``) and a pooling op, once plainly and
once with ``deploy_cost=float_macs, deploy_penalty=LAMBDA`` (each path's
score becomes ``max(z - LAMBDA * float_macs / base, 0)``, base: the costliest
one-op-everywhere network). Both winners are retrained with the same
schedule and converted with LCE; the table gives the retrained validation
accuracy, accelerated binary MACs and float MACs (``lce_profile``), and the
size of the converted .tflite.

    python benchmarks/deploy_aware.py [--seeds 3] [--penalty 0.5] [--train-epochs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnas_tf import recipes  # noqa: E402
from bnas_tf.convert import to_tflite  # noqa: E402
from bnas_tf.deploy.lce_profile import lce_profile  # noqa: E402
from bnas_tf.pipeline.search import search  # noqa: E402
from bnas_tf.pipeline.train import load_training_data, train  # noqa: E402

OP_SET = ("conv_3x3", "sep_conv_3x3", "max_pool_3x3")


def run_one(seed: int, overrides: dict, retrain) -> dict:
    recipe = recipes.get("cpnas", "quick", {"seed": seed, "op_set": OP_SET, **overrides})
    folder = tempfile.mkdtemp(prefix="bnas-deploy-")
    try:
        tf.keras.utils.set_random_seed(seed)
        result = search(recipe, folder, verbose=0)
        trained = train(result.genotype, retrain, load_training_data(retrain), verbose=0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    profile = lce_profile(trained.model)
    rejected = sum(1 for t in result.log["trials"] if "over_budget" in t["metrics"])
    return {
        "accuracy": max(trained.history["val_accuracy"]),
        "binary_macs": profile["binary_macs"],
        "float_macs": profile["float_macs"],
        "size": len(to_tflite(trained.model)),
        "seconds": result.seconds,
        "ops": " ".join(op for op, _ in result.genotype.normal + result.genotype.reduce),
        "rejected": rejected,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--penalty", type=float, default=0.5, help="lambda of the float-MAC penalty")
    parser.add_argument("--train-epochs", type=int, default=15)
    args = parser.parse_args()
    variants = {
        "ChildParent": {},
        f"ChildParent + float-MAC penalty {args.penalty:g}": {
            "deploy_cost": "float_macs",
            "deploy_penalty": args.penalty,
        },
    }
    rows = {name: [] for name in variants}
    for seed in range(args.seeds):
        retrain = recipes.get("cpnas", "quick", {"seed": seed, "op_set": OP_SET, "train_epochs": args.train_epochs})
        for name, overrides in variants.items():
            row = run_one(seed, overrides, retrain)
            rows[name].append(row)
            print(
                f"seed {seed} {name}: val {row['accuracy']:.4f}, binary MACs {row['binary_macs']:,}, float MACs "
                f"{row['float_macs']:,}, .tflite {row['size']:,} B, search {row['seconds']:.0f} s; ops {row['ops']}",
                flush=True,
            )

    print(
        f"\n{'search':36s} {'retrained val acc':>18s} {'binary MACs':>14s} {'float MACs':>12s} {'.tflite bytes':>14s}"
    )
    for name, runs in rows.items():

        def stat(key, runs=runs):
            values = np.array([r[key] for r in runs], dtype=float)
            return values.mean(), values.std()

        acc, binary, floating, size = (stat(k) for k in ("accuracy", "binary_macs", "float_macs", "size"))
        print(
            f"{name:36s} {acc[0]:>10.4f} ± {acc[1]:.4f} {binary[0]:>14,.0f} {floating[0]:>12,.0f} "
            f"{size[0]:>14,.0f}   (sd: {binary[1]:,.0f} / {floating[1]:,.0f} / {size[1]:,.0f})"
        )


if __name__ == "__main__":
    main()
