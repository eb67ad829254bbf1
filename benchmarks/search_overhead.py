"""How much of an OperationPruning search is training, and how much is overhead (tracing, evaluation, I/O).

Runs a P1 search (UCB variant by default: every remaining op sampled each
round) on the embedded digits data and prints wall time, the time spent in
steady-state training steps (every step after the first of each traced
graph; a first step is counted at the median step time and the rest of it
as tracing), their ratio, and the overhead per trial. Target: ratio <= 1.3.

    python benchmarks/search_overhead.py [--cells 3] [--ops 4] [--repetitions 3] [--batch 64]
"""

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bnas_tf import data  # noqa: E402
from bnas_tf.space.supernet import CellSpace  # noqa: E402
from bnas_tf.tuners import OperationPruning  # noqa: E402

OPS = ["conv_3x3", "conv_5x5", "dilated_conv_3x3", "max_pool_3x3", "avg_pool_3x3", "dilated_conv_5x5", "zero"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--ops", type=int, default=4)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--finetune", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--binarization", default="W1/A1")
    parser.add_argument("--warmup", action="store_true", help="P1 W1/A32 style: PC-DARTS warm-up and O_smaller")
    parser.add_argument("--deterministic", action="store_true", help="bnas_tf.enable_determinism (one thread)")
    args = parser.parse_args()
    if args.deterministic:
        from bnas_tf import enable_determinism

        enable_determinism()

    bundle = data.load("digits", batch_size=args.batch, search_split=True)
    space = CellSpace(op_set=OPS[: args.ops], cells=args.cells, channels=args.channels)
    folder = tempfile.mkdtemp(prefix="bnas-overhead-")
    try:
        tuner = OperationPruning(
            space,
            repetitions=args.repetitions,
            ucb=not args.warmup,
            finetune_epochs=args.finetune,
            warmup_epochs=5 if args.warmup else 0,
            seed=1,
            binarization=args.binarization,
            directory=folder,
            project_name="overhead",
        )
        start = time.perf_counter()
        tuner.search(
            bundle.search_weights, bundle.search_validation, architecture_data=bundle.search_architecture, verbose=0
        )
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    times = np.array([t for t, _ in tuner.child.step_times])
    first = np.array([f for _, f in tuner.child.step_times])
    median = float(np.median(times[~first]))
    steady = float(times[~first].sum() + median * first.sum())
    trials = len(tuner.oracle.trials)
    print(
        f"space: {args.cells} cells x {space.num_edges} edges x {args.ops} ops, C={args.channels}, "
        f"{args.binarization}, batch {args.batch}, T={args.repetitions}, V={args.finetune}"
    )
    print(f"trials: {trials}   training steps: {len(times)}   graphs traced: {int(first.sum())}")
    print(f"wall time:                  {wall:8.1f} s")
    print(f"steady-state training time: {steady:8.1f} s   (median step {1000 * median:.0f} ms)")
    print(f"tracing (first steps):      {float(times[first].sum() - median * first.sum()):8.1f} s")
    print(f"ratio wall / training:      {wall / steady:8.2f}   (target <= 1.3)")
    print(f"overhead per trial:         {(wall - steady) / trials:8.2f} s")
    print(f"genotype: {tuner.best_genotype().to_json(indent=None)}")


if __name__ == "__main__":
    main()
