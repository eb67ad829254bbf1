"""Host latency of a .tflite through LCE's interpreter, next to the same network as a float .tflite.

LCE's optimised binary kernels exist for ARM only (aarch64 and ARMv7:
Raspberry Pi, Android phones). On x86 the interpreter runs reference
kernels, so host numbers say whether the file runs and roughly how its ops
compare, never how fast it is on a device (larq/larq#607): measure that on
the device with LCE's ``lce_benchmark_model``.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
from larq_compute_engine.tflite.python.interpreter import Interpreter

from bnas_tf import arguments
from bnas_tf.convert import flatbuffer
from bnas_tf.convert.export import float_tflite as convert_float

ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv8l")
WARMUP_RUNS = 3


def optimised_kernels_here() -> bool:
    """True on the machines LCE has optimised kernels for (aarch64 / ARMv7)."""
    return platform.machine().lower() in ARM_MACHINES


def latency(data: bytes, *, num_threads: int = 1, runs: int = 50, seed: int = 0) -> dict:
    """Median and 90th-percentile milliseconds of one batch-1 inference (after warm-up runs)."""
    interpreter = Interpreter(data, num_threads=num_threads)
    rng = np.random.default_rng(seed)
    inputs = []
    for shape, dtype in zip(interpreter.input_shapes, interpreter.input_types):
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            inputs.append(rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype))
        else:
            inputs.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
    x = inputs[0] if len(inputs) == 1 else inputs
    times = []
    for run in range(WARMUP_RUNS + runs):
        start = time.perf_counter()
        interpreter.predict(x)
        if run >= WARMUP_RUNS:
            times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def benchmark(
    tflite: bytes | str | os.PathLike,
    *,
    num_threads: int = 1,
    runs: int = 50,
    float_tflite: bytes | str | os.PathLike | None = None,
    model=None,
) -> dict:
    """Host latency of ``tflite`` (median, p90 in ms over ``runs`` batch-1 inferences) via LCE's interpreter.

    For comparison, the same network as a float TFLite file is timed in the
    same interpreter: ``float_tflite`` if given, else converted from the
    Keras ``model`` with the plain ``tf.lite.TFLiteConverter`` (binary layers
    then run as sign + float convolution).

    **x86 numbers are for reference only**: LCE's optimised kernels are for
    ARM (aarch64 / ARMv7); elsewhere it runs reference kernels, and the
    binary file can be *slower* than the float one. Benchmark on the device
    with ``lce_benchmark_model`` (see README.md, "Deploy to a Raspberry Pi / Android phone").

    Args:
        tflite: the flatbuffer to time, bytes (as returned by ``to_tflite``) or a .tflite path.
        num_threads: interpreter threads, a positive integer (default 1).
        runs: timed batch-1 inferences after a few warm-up runs, a positive integer (default 50).
        float_tflite: the float baseline, bytes or a path; default (None) converted from ``model``.
        model: the Keras model, converted with the plain TFLite converter when ``float_tflite`` is
            None; with neither there is no float baseline.

    Returns:
        dict with ``machine``, ``optimised_kernels`` (True on ARM),
        ``num_threads``, ``runs``, ``median_ms``, ``p90_ms``, ``size_bytes``
        and, with a float baseline, ``float_median_ms``, ``float_p90_ms``,
        ``float_size_bytes`` and ``float_over_binary`` (float median / binary
        median).

    Raises:
        ValueError: ``num_threads`` or ``runs`` not a positive integer, a file that is not a TFLite
            flatbuffer, or a ``model`` the plain TFLite converter cannot convert.
        TypeError: ``tflite`` or ``float_tflite`` is neither bytes nor a path, or ``model`` is not a
            ``tf.keras.Model``.
        OSError: a .tflite file cannot be read.
    """
    arguments.count("num_threads", num_threads)
    arguments.count("runs", runs)
    data = flatbuffer.read(tflite)
    report = {
        "machine": platform.machine(),
        "optimised_kernels": optimised_kernels_here(),
        "num_threads": int(num_threads),
        "runs": int(runs),
        "size_bytes": len(data),
        **latency(data, num_threads=num_threads, runs=runs),
    }
    if float_tflite is None and model is not None:
        float_tflite = convert_float(model)
    if float_tflite is not None:
        float_data = flatbuffer.read(float_tflite)
        timing = latency(float_data, num_threads=num_threads, runs=runs)
        report.update(
            float_median_ms=timing["median_ms"],
            float_p90_ms=timing["p90_ms"],
            float_size_bytes=len(float_data),
            float_over_binary=timing["median_ms"] / report["median_ms"],
        )
    return report
