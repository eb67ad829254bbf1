"""Image classification data for searches and training: TFDS, image folders and the embedded digits.

- :mod:`~bnas_tf.data.bundle`: :func:`load` / :func:`from_arrays` return a :class:`DataBundle` with the
  search split (weights half, architecture half, validation subset), train/validation/test pipelines.
- :mod:`~bnas_tf.data.sources`: where examples come from (arrays, image folders, TFDS builders).
- :mod:`~bnas_tf.data.augment`: crop, flip and cutout on [-1, 1] images.
- :mod:`~bnas_tf.data.passes`: training passes shuffled by (seed, key, pass), so a resumed search reads the
  batches an unbroken one read (:func:`~bnas_tf.data.passes.start_passes`).
"""

from bnas_tf.stack import check_stack

check_stack()

from bnas_tf.data.bundle import (  # noqa: E402
    DEFAULT_DATASET,
    DataBundle,
    default_flip,
    digits_arrays,
    from_arrays,
    load,
    split_indices,
    without_autotune,
)
from bnas_tf.data.sources import DataNotFoundError  # noqa: E402

__all__ = [
    "DEFAULT_DATASET",
    "DataBundle",
    "DataNotFoundError",
    "default_flip",
    "digits_arrays",
    "from_arrays",
    "load",
    "split_indices",
    "without_autotune",
]
