"""Bit-for-bit repeatable runs: TensorFlow's op determinism, with one thread per op and between ops.

A seed fixes every decision an oracle takes (its draws derive from the seed, the round and the repetition), the
supernet's initial weights and the order of the training data (:mod:`bnas_tf.data.passes`: each pass is shuffled by
the seed and a key saved with the search state, so a resumed search reads the same batches), but not how the kernels
round: the same seeded search ended with three different sets of weights with 1, 2 and 3 intra-op threads (measured,
2 cores), and on CI two identical seeded searches in one process with the default threads once ended with different
genotypes, although ``tf.config.experimental.enable_op_determinism`` was on. A search's scores are accuracies on a
few hundred images, so one flipped prediction can change which op an edge abandons. With a single thread an op's
floating-point sums have one order, whatever else the machine runs. It costs speed (see ``benchmarks/README.md``),
so it is an option: ``bnas-tf search --deterministic`` or, at the top of a script, :func:`enable_determinism`.
"""

from __future__ import annotations

import tensorflow as tf


def enable_determinism(seed: int | None = None, threads: int = 1) -> None:
    """Make TensorFlow repeatable: deterministic ops on a fixed number of threads, optionally seeded.

    Deterministic ops (``tf.config.experimental.enable_op_determinism``) on ``threads`` intra-op and
    inter-op threads, and, with ``seed``, the Python, NumPy and TensorFlow seeds
    (``tf.keras.utils.set_random_seed``). Call it before TensorFlow runs anything: thread counts are fixed then.

    >>> enable_determinism(seed=0)   # first thing in the script
    >>> tuner.search(...)            # the same genotype every time on this machine

    Args:
        seed: seed of Python's, NumPy's and TensorFlow's generators; None (default) leaves them as they are.
        threads: intra-op and inter-op threads, a positive integer (default 1: one summation order per op).

    Raises:
        ValueError: ``threads`` is not a positive integer.
        RuntimeError: TensorFlow already started, so its thread counts can no longer change.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}; 1 gives one summation order per op")
    tf.config.experimental.enable_op_determinism()
    for what in ("intra_op", "inter_op"):
        get = getattr(tf.config.threading, f"get_{what}_parallelism_threads")
        if get() == threads:
            continue
        try:
            getattr(tf.config.threading, f"set_{what}_parallelism_threads")(threads)
        except RuntimeError as error:
            raise RuntimeError(
                f"enable_determinism() came after TensorFlow started ({error}); its {what} threads are fixed now. "
                "Call it first thing in the script, before building a model or loading data, or pass "
                "--deterministic to bnas-tf"
            ) from None
    if seed is not None:
        tf.keras.utils.set_random_seed(int(seed))
