"""Does the searched binary face network beat random genotypes of the same size? (3 seeds by default)

For each seed, the ``bnas_face`` recipe (quick profile unless ``--profile paper``) searches a cell
architecture scored by verification accuracy. Its baselines are networks of the same size (the recipe's
cells, channels, nodes, stem and embedding), all retrained identically (ArcFace margin, same seed, same
schedule; ``--retrain-seeds K`` averages K retrainings from different initialisations) and verified on the
same held-out pairs with the 10-fold protocol:

* ``--random`` (3) **uniform random genotypes**: every edge's op drawn uniformly from the op set, the
  standard random-architecture baseline; the searched network is compared with their mean and with
  each draw;
* the **searched ops shuffled** over the edges of each cell type: the same ops, so the same parameters
  (except that an identity moved onto or off a stride-2 reduction edge becomes or stops being a
  factorised reduce), which isolates what placement is worth; when every edge has the same op it is
  a uniform random genotype instead, and the table says so.

The table prints every network's parameter count.

    python benchmarks/face_vs_random.py [--seeds 3] [--first-seed 0] [--random 3] [--retrain-seeds 1] [--profile quick]
        [--set train_epochs=10 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bnas_tf import recipes
from bnas_tf.deploy import costs  # noqa: E402
from bnas_tf.pipeline.face import verification_sets  # noqa: E402
from bnas_tf.pipeline.face_train import embeddings, train_face  # noqa: E402
from bnas_tf.pipeline.search import search  # noqa: E402
from bnas_tf.pipeline.train import load_training_data  # noqa: E402
from bnas_tf.space.genotype import Genotype  # noqa: E402


def same_size_random(genotype: Genotype, seed: int) -> tuple[Genotype, bool]:
    """(random genotype, same ops?): the genotype's ops permuted within each cell type (inputs kept)."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        cells = {}
        for kind in ("normal", "reduce"):
            edges = list(getattr(genotype, kind))
            ops = [op for op, _ in edges]
            cells[kind] = [(ops[i], source) for i, (_, source) in zip(rng.permutation(len(ops)), edges)]
        shuffled = Genotype(
            normal=cells["normal"],
            reduce=cells["reduce"],
            op_set=list(genotype.op_set),
            nodes=genotype.nodes,
            name="random_same_ops",
        )
        if shuffled != Genotype(**{**genotype.to_dict(), "name": "random_same_ops"}):
            return shuffled, True
    return Genotype.random(list(genotype.op_set), seed=seed, nodes=genotype.nodes, all_edges=True), False


def cell_ops(genotype: Genotype) -> str:
    """``normal: conv_3x3 identity ... | reduce: ...``: what a cell type kept, edge by edge."""
    return " | ".join(f"{kind}: {' '.join(op for op, _ in getattr(genotype, kind))}" for kind in ("normal", "reduce"))


def verify(genotype, recipe, bundle, pair_sets, retrain_seeds=1, spread=None):
    """(mean verification accuracy per pair set, parameters): the genotype retrained ``retrain_seeds`` times
    (initialisation seeds ``recipe.seed + 100 k``; same data, same pairs). ``spread`` collects each pair
    set's standard deviation over the retrainings."""
    runs = []
    for k in range(retrain_seeds):
        result = train_face(genotype, dataclasses.replace(recipe, seed=recipe.seed + 100 * k), bundle, verbose=0)
        runs.append({p.name: p.summary(embeddings(result.model, p.images))["accuracy"] for p in pair_sets})
    if spread is not None and retrain_seeds > 1:
        spread += [float(np.std([run[name] for run in runs])) for name in runs[0]]
    params = costs.profile(result.model)
    return {name: float(np.mean([run[name] for run in runs])) for name in runs[0]}, params["binary_params"] + params[
        "float_params"
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument(
        "--random", type=int, default=3, help="uniform random genotypes a seed (their mean is compared)"
    )
    parser.add_argument("--profile", default="quick", choices=recipes.PROFILES)
    parser.add_argument(
        "--retrain-seeds",
        type=int,
        default=1,
        help="retrainings of every genotype (initialisation seeds seed + 100 k); their mean is compared",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    rows, cells, spread, start = [], [], [], time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        recipe = recipes.get("bnas_face", args.profile, args.set + [f"seed={seed}"])
        folder = tempfile.mkdtemp(prefix="face-vs-random-")
        try:
            found = search(recipe, folder, verbose=0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        searched = found.genotype
        shuffled, same_ops = same_size_random(searched, 1000 + seed)
        # uniform random genotypes of the same space (every edge kept), at the same network size
        uniform = [
            Genotype.random(list(searched.op_set), seed=1000 * (draw + 1) + seed, nodes=searched.nodes, all_edges=True)
            for draw in range(args.random)
        ]
        cells.append(
            f"seed {seed}: searched ({found.seconds:.0f} s) {cell_ops(searched)}; same ops shuffled "
            f"{cell_ops(shuffled)}; " + "; ".join(f"uniform {i} {cell_ops(g)}" for i, g in enumerate(uniform))
        )
        bundle = load_training_data(recipe)
        pair_sets = verification_sets(recipe, bundle)
        ours = verify(searched, recipe, bundle, pair_sets, args.retrain_seeds, spread)
        theirs = [verify(g, recipe, bundle, pair_sets, args.retrain_seeds, spread) for g in uniform]
        placement = verify(shuffled, recipe, bundle, pair_sets, args.retrain_seeds, spread)
        for name in ours[0]:
            rows.append(
                dict(
                    seed=seed,
                    pairs=name,
                    searched=ours[0][name],
                    params=ours[1],
                    uniform=[a[name] for a, _ in theirs],
                    uniform_params=[p for _, p in theirs],
                    shuffled=placement[0][name],
                    shuffled_params=placement[1],
                    same_ops=same_ops,
                )
            )
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    report(rows, args, time.perf_counter() - start)
    if spread:
        print(
            f"retraining noise: standard deviation of one genotype's accuracy over {args.retrain_seeds} retrainings, "
            f"mean {np.mean(spread):.2%}, largest {np.max(spread):.2%} ({len(spread)} genotypes)"
        )
    print("\n".join(["", "cells (op per edge):"] + cells))


def _wins(differences) -> str:
    """``"2"`` or ``"2 (1 tie)"``: accuracies are pair counts over the same pairs, so equal means a tie."""
    wins = sum(d > 1e-9 for d in differences)
    ties = sum(abs(d) <= 1e-9 for d in differences)
    return f"{wins} ({ties} tie{'s' * (ties > 1)})" if ties else f"{wins}"


def report(rows, args, seconds):
    settings = f" ({', '.join(args.set)})" if args.set else ""
    print(
        f"\nbnas_face {args.profile} profile{settings}: 10-fold verification accuracy of the searched network, "
        f"of {args.random} uniform random genotypes and of the searched ops shuffled, all at the same network "
        f"size and retrained identically ({args.retrain_seeds} retraining{'s' * (args.retrain_seeds > 1)} each, mean)"
    )
    print(
        "| seed | pairs | searched | uniform random: each (mean) | searched - mean | same ops shuffled | "
        "searched - shuffled | params searched / uniform / shuffled |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        mean = float(np.mean(r["uniform"]))
        note = "" if r["same_ops"] else " (every edge kept one op: a uniform genotype)"
        each = ", ".join(f"{a:.2%}" for a in r["uniform"])
        params = "/".join(f"{p // 1000}k" for p in r["uniform_params"])
        print(
            f"| {r['seed']} | {r['pairs']} | {r['searched']:.2%} | {each} ({mean:.2%}) | {r['searched'] - mean:+.2%} | "
            f"{r['shuffled']:.2%}{note} | {r['searched'] - r['shuffled']:+.2%} | "
            f"{r['params'] // 1000}k / {params} / {r['shuffled_params'] // 1000}k |"
        )
    against_mean = [r["searched"] - np.mean(r["uniform"]) for r in rows]
    draws = [r["searched"] - a for r in rows for a in r["uniform"]]
    against_shuffled = [r["searched"] - r["shuffled"] for r in rows]
    print(
        f"searched better than the mean of the uniform random genotypes in {_wins(against_mean)} of {len(rows)} "
        f"(mean {np.mean(against_mean):+.2%}); better than {_wins(draws)} of {len(draws)} single draws"
    )
    print(
        f"searched better than the same ops shuffled in {_wins(against_shuffled)} of {len(rows)} "
        f"(mean {np.mean(against_shuffled):+.2%})"
    )
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
