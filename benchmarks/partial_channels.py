"""What PC-DARTS' partial channels would save in mixed mode, measured: the decision behind full-width ops.

Mixed mode (the warm-up and fine-tuning of P1, all of P2's search) on P1's 8-op DARTS space, timed as
median weight-step time of ``SupernetTrainer.train_mixed`` on random data:

- ``q = 1``: DARTS, every op on all C channels;
- ``q = 2`` as built: every op still computes all C channels, 1/q of its output joins the mixture
  and the rest bypass it (the supernet's ops are the ones path mode trains, so they share weights);
- ``C / q`` channels throughout: a supernet whose every op reads and writes C/q channels, the
  compute that ops reading only the sampled 1/q of the channels would cost (a lower bound: the
  preprocessing convs shrink too).

    python benchmarks/partial_channels.py [--cells 6] [--channels 16] [--batch 64] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnas_tf.space.supernet import KINDS, CellSpace, Supernet  # noqa: E402
from bnas_tf.tuners.training import SupernetTrainer  # noqa: E402


def mixed_step_seconds(space, partial, batch, steps, image=32, binarization="W1/A32") -> float:
    supernet = Supernet(
        space, num_classes=10, input_shape=(image, image, 3), binarization=binarization, partial_channels=partial
    )
    every = {kind: [tuple(range(space.num_ops))] * space.num_edges for kind in KINDS}
    supernet.set_mixed(every)
    trainer = SupernetTrainer(supernet)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, image, image, 3)).astype("float32")
    y = rng.integers(0, 10, size=(batch * steps,))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    trainer.train_mixed(data, 1)  # trace
    trainer.step_times.clear()
    start = time.perf_counter()
    trainer.train_mixed(data, steps)
    wall = time.perf_counter() - start
    times = [seconds for seconds, traced in trainer.step_times if not traced] or [wall / steps]
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--q", type=int, default=2, help="PC-DARTS' 1/q of the channels (P1: 2)")
    args = parser.parse_args()
    reductions = (args.cells // 3, 2 * args.cells // 3)
    full = CellSpace(op_set="DARTS_BINARY_OPS", cells=args.cells, channels=args.channels, reduction_cells=reductions)
    thin = CellSpace(
        op_set="DARTS_BINARY_OPS", cells=args.cells, channels=args.channels // args.q, reduction_cells=reductions
    )
    rows = [
        ("q = 1 (DARTS)", mixed_step_seconds(full, 1, args.batch, args.steps)),
        (f"q = {args.q}, full-width ops (built)", mixed_step_seconds(full, args.q, args.batch, args.steps)),
        (f"C / {args.q} channels (sliced ops' bound)", mixed_step_seconds(thin, 1, args.batch, args.steps)),
    ]
    print(f"{args.cells} cells, {args.channels} channels, 8 DARTS ops, batch {args.batch}, W1/A32, 32x32x3")
    print("| mixed mode | median step (s) | vs q = 1 |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / rows[0][1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
