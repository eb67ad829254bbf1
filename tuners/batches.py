"""Feeding a supernet's steps: training batches cut from whole epochs, one chunk a path, and merged evaluation blocks.

Path mode trains P sampled paths in one graph, each on its own chunk of the batch (DESIGN ``supernet``, path mode;
STACK_NOTES "Weight sharing without retracing"), so a step's batch is P consecutive full batches of the data.
Every epoch is read to its end and tf.data's autotuning is off: deleting an iterator dropped in the middle of a
prefetching ``repeat()``, or one read between training steps with autotuning on, waits for tf.data's threads
(STACK_NOTES "Measured by the project").
"""

from __future__ import annotations

import numpy as np

from bnas_tf.data import without_autotune

#: Input pixels (rows x height x width, every path's copy counted) an evaluation call takes at most: consecutive
#: validation batches are merged up to it, since a call has a fixed cost that larger blocks share; a batch larger
#: than it goes alone.
EVAL_PIXELS = 2**19


def batch_size_of(dataset) -> int:
    """The number of rows in ``dataset``'s first batch."""
    for x, _ in dataset.take(1):
        return int(x.shape[0])
    raise ValueError("training data is empty: pass a dataset with at least one batch")


def trainable_batch(size: int) -> int:
    """``size`` if a supernet can train on batches of it: one image is refused (BatchNorm's batch variance
    is 0, and a one-row training step corrupted the heap in TF 2.15's oneDNN kernels: "free(): invalid
    pointer", reproduced with and without row routing)."""
    if size < 2:
        raise ValueError(
            f"training batches hold {size} image: a supernet trains on at least 2 per batch "
            "(BatchNorm); batch the data with batch_size >= 2, e.g. bnas_tf.data.load(..., batch_size=32)"
        )
    return size


def paths_batches(dataset, paths: int, steps: int):
    """``steps`` (images, labels) of ``paths`` consecutive full batches each, so every path gets its own stream
    of data: the dataset's epochs one after another, each cut into full batches (the remainder dropped), of the
    size of its first batch. Every epoch is read to its end: deleting a tf.data iterator dropped in the middle of
    a prefetching pipeline waits for its threads, once per group of a search. Nothing else reads the dataset, so
    the epochs are its passes from the last :func:`~bnas_tf.data.passes.start_passes` on."""
    dataset = without_autotune(dataset)
    size, produced, group = None, 0, []
    while produced < steps:
        images, labels, full = [], [], 0
        for x, y in dataset:
            size = size or trainable_batch(int(x.shape[0]))
            images.append(x.numpy())
            labels.append(y.numpy())
            while sum(len(b) for b in labels) >= size:
                x_all, y_all = np.concatenate(images), np.concatenate(labels)
                group.append((x_all[:size], y_all[:size]))
                images, labels, full = [x_all[size:]], [y_all[size:]], full + 1
                if len(group) == paths:
                    if produced < steps:
                        yield np.concatenate([g[0] for g in group]), np.concatenate([g[1] for g in group])
                        produced += 1
                    group = []
        if size is None:
            raise ValueError("training data is empty: pass a dataset with at least one batch")
        if not full:
            raise ValueError(f"training data has no full batch of {size} examples: pass a dataset with at least one")


def merged_batches(dataset, paths: int, pixels: int | None = None):
    """(images, labels) numpy blocks of consecutive batches of ``dataset``, each within ``pixels`` (None:
    :data:`EVAL_PIXELS`) once tiled for ``paths`` paths (or a single batch)."""
    pixels = EVAL_PIXELS if pixels is None else pixels
    images, labels, rows = [], [], 0
    for x, y in without_autotune(dataset):
        x, y = x.numpy(), y.numpy()
        per_row = paths * int(np.prod(x.shape[1:3]))
        if images and (rows + len(x)) * per_row > pixels:
            yield np.concatenate(images), np.concatenate(labels)
            images, labels, rows = [], [], 0
        images.append(x)
        labels.append(y)
        rows += len(x)
    if images:
        yield np.concatenate(images), np.concatenate(labels)
