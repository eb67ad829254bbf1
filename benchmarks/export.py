"""Size against the bit-level bound and host latency (binary vs. float .tflite) for a few networks.

    python benchmarks/export.py [--runs 50] [--threads 1] [--quick]

Networks are untrained (size and latency do not depend on the weights'
values). Latency runs through LCE's interpreter on this host: on x86 it uses
reference kernels, so the numbers are for reference only; for ARM speed copy
the .tflite to the device and run ``lce_benchmark_model`` (README, "Deploy to a Raspberry Pi / Android phone").
"""

from __future__ import annotations

import argparse
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import bnas_tf  # noqa: E402
from bnas_tf import convert  # noqa: E402
from bnas_tf.deploy.convertibility import with_one_padding  # noqa: E402


def networks(quick: bool):
    """(label, builder) pairs; builders return a fresh Keras model."""
    vgg = bnas_tf.WidthGenotype.uniform("vgg_small", 1.0)
    resnet = bnas_tf.WidthGenotype.uniform("resnet18", 1.0)
    cells = bnas_tf.Genotype.random("BINARY_OPS", seed=6)
    items = [
        ("vgg_small 1.0x W1/A1 32x32x3", lambda: bnas_tf.build_width_network(vgg, binarization="W1/A1")),
        ("vgg_small 1.0x W1/A32 32x32x3", lambda: bnas_tf.build_width_network(vgg, binarization="W1/A32")),
        ("vgg_small 1.0x W32/A32 32x32x3", lambda: bnas_tf.build_width_network(vgg, binarization="W32/A32")),
    ]
    if not quick:
        items += [
            ("resnet18 1.0x W1/A1 32x32x3", lambda: bnas_tf.build_width_network(resnet, binarization="W1/A1")),
            # One-padding where LCE 0.16's zero padding is wrong (kernel larger than the 8x8 last stage).
            (
                "BINARY_OPS seed 6, 8 cells, C=16, W1/A1 32x32x3",
                lambda: with_one_padding(bnas_tf.build_network(cells, cells=8, channels=16, binarization="W1/A1")),
            ),
        ]
    return items


def kb(size: int) -> str:
    return f"{size / 1024:,.1f} KB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="VGG-small only")
    args = parser.parse_args(argv)
    machine = platform.machine()
    print(
        f"host {machine}, {args.threads} thread(s), {args.runs} runs, batch 1"
        + (
            ""
            if convert.benchmarking.optimised_kernels_here()
            else " -- LCE reference kernels (not ARM): latency for reference only"
        )
    )
    header = (
        f"{'network':<48} {'weights':>7} {'.tflite':>12} {'bit bound':>12} {'ratio':>6} {'Lce/bin':>8} "
        f"{'median ms':>10} {'p90 ms':>8} {'float .tflite':>14} {'float ms':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, build in networks(args.quick):
        tf.keras.backend.clear_session()
        model = build()
        rows = [("float", convert.to_tflite(model))]
        if "W1/A32" in label:
            rows.append(("int8", convert.to_tflite(model, weights="int8")))
        float_twin = convert.float_tflite(model)
        for weights, data in rows:
            info = convert.inspect(data, model=model)
            timing = convert.benchmark(data, num_threads=args.threads, runs=args.runs, float_tflite=float_twin)
            print(
                f"{label:<48} {weights:>7} {kb(info['size_bytes']):>12} {kb(info['bound_bytes']):>12} "
                f"{info['size_over_bound']:>6.2f} {info['binary_kernel_ops']:>3}/{info['binary_conv_layers']:<4} "
                f"{timing['median_ms']:>10.2f} {timing['p90_ms']:>8.2f} {kb(timing['float_size_bytes']):>14} "
                f"{timing['float_median_ms']:>9.2f}"
            )
    print(
        "ratio = .tflite / (1 bit per binary weight + 32 bits per float parameter); Lce/bin = LceBconv2d ops / "
        "Keras binary convs; 'float .tflite' = the same model through tf.lite.TFLiteConverter (no LCE kernels)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
