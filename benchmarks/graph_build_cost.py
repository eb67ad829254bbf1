"""What a traced training graph costs to build, by how its repeated blocks enter it.

A supernet's training graph repeats the same binary block (Larq sign, padded binary conv, fused
BatchNorm, PReLU) once per op of every edge, each with its own weights. This builds a chain of N such
blocks four ways and prints, for each, the Python trace, the first call on 2 rows (instantiating the
function; almost no compute), the first call on 64 rows (first execution at the real size) and a
steady step:

* ``ops``: every block's ops written into the graph (how the supernet runs the ops it does not share);
* ``shared``: one tf.function of the block's math called N times with each block's weights as
  arguments (traced once; the runtime inlines it at instantiation);
* ``noinline``: the same function marked ``_noinline`` (one function body, N call sites; what
  bnas_tf.space.shared_ops does in the supernet's graphs);
* ``remat``: a custom gradient pairing a ``_noinline`` forward with a ``_noinline`` backward that
  recomputes the forward (no inlined gradient code; the price is the recomputation).

Each mode runs in its own process, so every first call is really a first call.

    python benchmarks/graph_build_cost.py [--blocks 120] [--forward-only] [--grappler]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODES = ("ops", "shared", "noinline", "remat")
CHANNELS = 16


def _run(mode: str, blocks: int, forward_only: bool, grappler: bool) -> dict:
    import larq as lq
    import tensorflow as tf

    if not grappler:  # as the supernet's steps run (tuners/graph_options.py: without_graph_optimisation)
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    sign, kernel_sign = lq.quantizers.SteSign(), lq.quantizers.MagnitudeAwareSign()

    def block(x, kernel, gamma, beta, mean, variance, alpha):
        padded = tf.pad(sign(x), [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0)
        y = tf.nn.conv2d(padded, kernel_sign(kernel), 1, "VALID")
        y, new_mean, new_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=y,
            scale=gamma,
            offset=beta,
            mean=mean,
            variance=variance,
            exponential_avg_factor=0.1,
            is_training=True,
            epsilon=1e-3,
        )
        return tf.nn.relu(y) - alpha * tf.nn.relu(-y), new_mean, new_variance

    noinline = {"_noinline": True}
    if mode == "ops":
        apply = block
    elif mode in ("shared", "noinline"):
        apply = tf.function(block, autograph=False, experimental_attributes=noinline if mode == "noinline" else None)
    else:
        forward = tf.function(block, autograph=False, experimental_attributes=noinline)

        def backward_math(dy, x, kernel, gamma, beta, mean, variance, alpha):
            watched = [x, kernel, gamma, beta, alpha]
            with tf.GradientTape() as tape:
                tape.watch(watched)
                y, _, _ = block(x, kernel, gamma, beta, mean, variance, alpha)
            return tape.gradient(y, watched, output_gradients=dy)

        backward = tf.function(backward_math, autograph=False, experimental_attributes=noinline)

        @tf.custom_gradient
        def apply(x, kernel, gamma, beta, mean, variance, alpha):
            outputs = forward(x, kernel, gamma, beta, mean, variance, alpha)

            def grad(dy, _mean_grad, _variance_grad):
                dx, dkernel, dgamma, dbeta, dalpha = backward(dy, x, kernel, gamma, beta, mean, variance, alpha)
                return dx, dkernel, dgamma, dbeta, None, None, dalpha

            return outputs, grad

    weights = [
        [
            tf.Variable(tf.random.normal((3, 3, CHANNELS, CHANNELS)) * 0.1),
            tf.Variable(tf.ones(CHANNELS)),
            tf.Variable(tf.zeros(CHANNELS)),
            tf.Variable(tf.zeros(CHANNELS), trainable=False),
            tf.Variable(tf.ones(CHANNELS), trainable=False),
            tf.Variable(tf.fill((1, 1, CHANNELS), 0.25)),
        ]
        for _ in range(blocks)
    ]
    trainable = [w for block_weights in weights for w in block_weights if w.trainable]

    @tf.function(autograph=False, input_signature=[tf.TensorSpec((None, 16, 16, CHANNELS))])
    def step(x):
        with tf.GradientTape() as tape:
            h = x
            for index, (kernel, gamma, beta, mean, variance, alpha) in enumerate(weights):
                values = (
                    [v.read_value() for v in (kernel, gamma, beta, mean, variance, alpha)]
                    if mode == "remat"
                    else [kernel, gamma, beta, mean, variance, alpha]
                )
                y, new_mean, new_variance = apply(h, *values)
                mean.assign(new_mean)
                variance.assign(new_variance)
                h = h + y if index % 4 else y  # a residual now and then, as cells sum their edges
            loss = tf.reduce_mean(h * h)
        if not forward_only:
            for w, g in zip(trainable, tape.gradient(loss, trainable)):
                w.assign_sub(0.01 * g)
        return loss

    start = time.perf_counter()
    graph_ops = len(step.get_concrete_function().graph.get_operations())
    trace = time.perf_counter() - start
    timings = []
    for rows in (2, 64, 64, 64, 64):
        x = tf.random.normal((rows, 16, 16, CHANNELS))
        start = time.perf_counter()
        step(x).numpy()
        timings.append(time.perf_counter() - start)
    return {
        "mode": mode,
        "graph_ops": graph_ops,
        "trace": trace,
        "instantiate": timings[0],
        "first_64": timings[1],
        "step": sorted(timings[2:])[1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=120)
    parser.add_argument("--forward-only", action="store_true", help="no gradient, no update")
    parser.add_argument(
        "--grappler", action="store_true", help="keep TensorFlow's graph optimizer on (the supernet runs without)"
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in a child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(_run(args.mode, args.blocks, args.forward_only, args.grappler)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    print(
        f"{args.blocks} binary conv blocks (C = {CHANNELS}, 16x16), "
        f"{'forward only' if args.forward_only else 'training step'}, "
        f"Grappler {'on' if args.grappler else 'off'}"
    )
    print("| mode | graph ops | trace | first call, 2 rows | first call, 64 rows | step |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        command = [sys.executable, __file__, "--mode", mode, "--blocks", str(args.blocks)]
        command += ["--forward-only"] * args.forward_only + ["--grappler"] * args.grappler
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {mode} | {r['graph_ops']} | {r['trace']:.2f} s | {r['instantiate']:.2f} s | {r['first_64']:.2f} s | "
            f"{1000 * r['step']:.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
