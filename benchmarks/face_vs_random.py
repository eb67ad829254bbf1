"""Issue 9's claim: the searched binary face network beats a random genotype of the same size (3 seeds).

For each seed, the ``bnas_face`` recipe (quick profile unless ``--profile paper``) searches a cell
architecture scored by verification accuracy; a *random genotype of the same size* shuffles the searched
ops over the edges of each cell type (the same ops per cell, so the same parameters, except that an
identity moved onto or off a stride-2 reduction edge becomes or stops being a factorised reduce; the
table prints both parameter counts; when every edge has the same op it is a uniform random genotype
of the op set instead, and the table says so).
Both are retrained identically (ArcFace margin, same seed, same schedule) and verified on the same
held-out pairs with the 10-fold protocol.

    python benchmarks/face_vs_random.py [--seeds 3] [--profile quick] [--set train_epochs=10 ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bnas_tf import costs, recipes  # noqa: E402
from bnas_tf.face.pipeline import verification_sets  # noqa: E402
from bnas_tf.face.train import embeddings, train_face  # noqa: E402
from bnas_tf.genotype import Genotype  # noqa: E402
from bnas_tf.search import search  # noqa: E402
from bnas_tf.train import load_training_data  # noqa: E402


def same_size_random(genotype: Genotype, seed: int) -> tuple[Genotype, bool]:
    """(random genotype, same ops?): the genotype's ops permuted within each cell type (inputs kept)."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        cells = {}
        for kind in ("normal", "reduce"):
            edges = list(getattr(genotype, kind))
            ops = [op for op, _ in edges]
            cells[kind] = [(ops[i], source) for i, (_, source) in zip(rng.permutation(len(ops)), edges)]
        shuffled = Genotype(normal=cells["normal"], reduce=cells["reduce"], op_set=list(genotype.op_set),
                            nodes=genotype.nodes, name="random_same_ops")
        if shuffled != Genotype(**{**genotype.to_dict(), "name": "random_same_ops"}):
            return shuffled, True
    return Genotype.random(list(genotype.op_set), seed=seed, nodes=genotype.nodes, all_edges=True), False


def cell_ops(genotype: Genotype) -> str:
    """``normal: conv_3x3 identity ... | reduce: ...``: what a cell type kept, edge by edge."""
    return " | ".join(f"{kind}: {' '.join(op for op, _ in getattr(genotype, kind))}" for kind in ("normal", "reduce"))


def verify(genotype, recipe, bundle, pair_sets):
    result = train_face(genotype, recipe, bundle, verbose=0)
    accuracy = {p.name: p.summary(embeddings(result.model, p.images))["accuracy"] for p in pair_sets}
    params = costs.profile(result.model)
    return accuracy, params["binary_params"] + params["float_params"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--profile", default="quick", choices=recipes.PROFILES)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    rows, cells, start = [], [], time.perf_counter()
    for seed in range(args.seeds):
        recipe = recipes.get("bnas_face", args.profile, args.set + [f"seed={seed}"])
        folder = tempfile.mkdtemp(prefix="face-vs-random-")
        try:
            found = search(recipe, folder, verbose=0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        searched = found.genotype
        random, same_ops = same_size_random(searched, 1000 + seed)
        cells.append(f"seed {seed}: searched ({found.seconds:.0f} s) {cell_ops(searched)}; random {cell_ops(random)}")
        bundle = load_training_data(recipe)
        pair_sets = verification_sets(recipe, bundle)
        searched_accuracy, searched_params = verify(searched, recipe, bundle, pair_sets)
        random_accuracy, random_params = verify(random, recipe, bundle, pair_sets)
        for name in searched_accuracy:
            rows.append((seed, name, searched_accuracy[name], random_accuracy[name], searched_params, random_params,
                         same_ops))
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    settings = f" ({', '.join(args.set)})" if args.set else ""
    print(f"\nbnas_face {args.profile} profile{settings}: 10-fold verification accuracy, searched vs random "
          "genotype of the same size, retrained identically")
    print("| seed | pairs | searched | random (same ops) | difference | params searched / random |")
    print("|---|---|---|---|---|---|")
    for seed, name, ours, theirs, p_ours, p_theirs, same_ops in rows:
        note = "" if same_ops else " (uniform genotype: random of the op set)"
        print(f"| {seed} | {name} | {ours:.2%} | {theirs:.2%}{note} | {ours - theirs:+.2%} | "
              f"{p_ours:,} / {p_theirs:,} |")
    wins = sum(ours > theirs for _, _, ours, theirs, *_ in rows)
    mean = np.mean([ours - theirs for _, _, ours, theirs, *_ in rows])
    print(f"searched better in {wins} of {len(rows)}; mean difference {mean:+.2%}; {time.perf_counter() - start:.0f} s")
    print("\n".join(["", "cells (op per edge):"] + cells))


if __name__ == "__main__":
    main()
