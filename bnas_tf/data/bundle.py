"""Input pipelines for search and training (DESIGN `data`).

`load(name)` turns the embedded default ("digits"), a TFDS image-classification
dataset or an image folder into a `DataBundle` of batched `tf.data` datasets;
`from_arrays` does the same for numpy arrays. Images are float32 NHWC scaled
to [-1, 1], labels int32. With `search_split=True` the train split is also cut
into the two halves of SPEC P1 "Search data" (weights / architecture) plus a
validation subset of up to 5k images for scoring sampled paths (SPEC P1 step b,
P4 Eq. 1). Every split is a seeded permutation, so a seed names the same
examples in every run.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from bnas_tf import arguments
from bnas_tf.data import augment as augment_lib
from bnas_tf.data import passes
from bnas_tf.data.sources import DataNotFoundError, array_source, folder_source, tfds_source

__all__ = [
    "DataBundle",
    "DataNotFoundError",
    "default_flip",
    "digits_arrays",
    "from_arrays",
    "load",
    "split_indices",
    "without_autotune",
]

DEFAULT_DATASET = "digits"
#: Share of the examples held out as test when the source has no test split.
DEFAULT_TEST_FRACTION = 0.2
#: SPEC P1: "5k images of the train set as the validation set for step b".
SEARCH_VALIDATION_SIZE = 5000
#: Exact shuffles up to CIFAR size; larger sets (ImageNet) shuffle in a window.
SHUFFLE_BUFFER_LIMIT = 50_000
#: Datasets where a mirrored image is a different (or no) class.
NO_FLIP_DATASETS = frozenset({"digits", "mnist", "emnist", "kmnist", "svhn_cropped"})
_TRAINING_PARTS = ("train", "search_weights", "search_architecture")


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """Batched (image, label) datasets plus what a model needs to know about them.

    `search_*` are None unless `search_split=True`: `search_weights` and
    `search_architecture` are disjoint halves of `train`, `search_validation`
    a subset of `validation` (SPEC P1 "Search data"). `sizes` counts the
    examples of every part.

    Made by :func:`load` and :func:`from_arrays`; images are float32 NHWC in [-1, 1], labels int32.

    Args:
        name: the dataset's name ("digits", the TFDS name, the folder or "arrays").
        train: training batches (shuffled each epoch, augmented when asked).
        validation: validation batches, cut from the source's train split.
        test: test batches (the source's test split, or a held-out cut).
        num_classes: number of classes.
        input_shape: ``(height, width, channels)`` of one image.
        num_train: examples in ``train``.
        batch_size: examples per batch.
        sizes: part name -> number of examples (default empty).
        search_weights: half of ``train`` for the supernet's weights (None without a search split).
        search_architecture: the other half, for the architecture (None without a search split).
        search_validation: up to 5000 examples of ``validation`` that score sampled paths (SPEC P1
            step b, P4 Eq. 1; None without a search split).
    """

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    num_classes: int
    input_shape: tuple
    num_train: int
    batch_size: int
    sizes: dict = dataclasses.field(default_factory=dict)
    search_weights: tf.data.Dataset = None
    search_architecture: tf.data.Dataset = None
    search_validation: tf.data.Dataset = None

    def describe(self):
        """One line: shape, classes and the size of every part."""
        height, width, channels = self.input_shape
        parts = " / ".join(f"{part} {count}" for part, count in self.sizes.items())
        return (
            f"{self.name}: {height}x{width}x{channels} images, {self.num_classes} classes,"
            f" batch {self.batch_size}; {parts}"
        )


@dataclasses.dataclass(frozen=True)
class _Options:
    batch_size: int
    augment: bool
    flip: bool
    cutout: int
    validation_fraction: float
    test_fraction: float
    search_split: bool
    seed: int
    cache: bool


def digits_arrays(image_size=16):
    """scikit-learn's 8x8 digits (1797 images, 10 classes), bilinearly resized.

    Returns `(x, y)`: x float32 (N, H, W, 1) in [-1, 1], y int32 (N,).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[..., None].astype(np.float32) / 16.0
    images = tf.image.resize(images, _image_size(image_size)).numpy()
    x = np.clip(images, 0.0, 1.0) * 2.0 - 1.0
    return x.astype(np.float32), digits.target.astype(np.int32)


def default_flip(name):
    """What `flip=None` means: no left-right flip for digit datasets (a mirrored 2 is no 2)."""
    return os.path.basename(name.rstrip("/")).split(":")[0].lower() not in NO_FLIP_DATASETS


def load(
    name: str | os.PathLike = DEFAULT_DATASET,
    *,
    batch_size: int = 64,
    image_size: int | tuple | None = None,
    augment: bool = False,
    flip: bool | None = None,
    cutout: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    search_split: bool = False,
    seed: int = 0,
    data_dir: str | None = None,
    cache: bool = True,
    max_examples: int | None = None,
) -> DataBundle:
    """Load "digits", a TFDS dataset or an image folder as a `DataBundle`.

    Train/validation come from a seeded cut of the source's train split
    (`validation_fraction`); test is the source's test split (TFDS "test",
    else "validation"), or a seeded `test_fraction` cut when there is none.
    `augment` (train parts only) = padded random crop, left-right flip
    (`flip=None`: off for digit datasets) and a `cutout`-pixel square.
    `max_examples` keeps a subset of each source split for quick runs.
    Parts are cached in memory as decoded (uint8 where the source is);
    with `cache=False` every part re-reads the source's train split.
    Nothing is downloaded.

    Args:
        name: "digits" (the default: scikit-learn's 1797 digits at 16x16, embedded), a folder with one
            subfolder of images per class (sorted names give labels 0..K-1), or a TFDS image
            classification dataset already prepared on this machine ("cifar10", "imagenet2012", ...).
        batch_size: examples per batch, a positive integer (default 64).
        image_size: resize to this (an int for square, or ``(height, width)``); None (default) keeps the
            source's size. Image folders and TFDS sets of varying size need it.
        augment: augment the training parts (default False).
        flip: left-right flip when augmenting; None (default) flips except for digit datasets
            (:func:`default_flip`).
        cutout: side in pixels of the cutout square when augmenting, >= 0 (default 0: none).
        validation_fraction: share of the train split held out as validation, in (0, 1) (default 0.1).
        test_fraction: share held out as test when the source has no test split, in (0, 1) (default 0.2).
        search_split: also make ``search_weights``, ``search_architecture`` and ``search_validation``
            (SPEC P1 "Search data"; default False).
        seed: seed of every split and shuffle (default 0): a seed names the same examples in every run.
        data_dir: TFDS data directory; None (default) is TFDS's own.
        cache: cache the decoded parts in memory (default True).
        max_examples: keep at most this many examples of each source split (default None: all).

    Returns:
        A :class:`DataBundle` of batched ``(image, label)`` datasets, images float32 in [-1, 1].

    Raises:
        ValueError: a bad option (batch size, fractions outside (0, 1) or summing to 1 or more, negative
            cutout, ``image_size``, ``max_examples``), an unknown dataset name, a TFDS dataset that is
            not image classification, an image folder without ``image_size``, with fewer than 2 class
            subfolders, an empty class or an undecodable image, or too few examples to split.
        DataNotFoundError: a TFDS dataset that is not prepared on this machine (the message says how to
            supply it).
    """
    name = os.fspath(name)
    size = _image_size(image_size)
    options = _options(
        name, batch_size, augment, flip, cutout, validation_fraction, test_fraction, search_split, seed, cache
    )
    _check_max_examples(max_examples)
    if name == DEFAULT_DATASET:
        x, y = digits_arrays(size or 16)
        source = array_source(x, y, 10, max_examples, seed)
    elif os.path.isdir(name):
        source = folder_source(name, size, max_examples, seed)
    else:
        source = tfds_source(name, size, data_dir, max_examples)
    return _bundle(name, source, options)


def from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int | None = None,
    name: str = "arrays",
    batch_size: int = 64,
    image_size: int | tuple | None = None,
    augment: bool = False,
    flip: bool | None = None,
    cutout: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    search_split: bool = False,
    seed: int = 0,
    cache: bool = True,
    max_examples: int | None = None,
) -> DataBundle:
    """`load` for numpy images x (N, H, W[, C]) and integer labels y (N,).

    Pixels may be uint8 [0, 255] or floats in [0, 1], [0, 255] or [-1, 1].
    The arrays have no test split, so test is a seeded `test_fraction` cut.

    Args:
        x: images shaped ``(N, H, W, C)`` or ``(N, H, W)``.
        y: integer class ids shaped ``(N,)`` (or ``(N, 1)``), at least 2 classes.
        num_classes: number of classes; None (default) is ``max(y) + 1``.
        name: the bundle's name (default "arrays"); also decides ``flip=None``.
        batch_size, image_size, augment, flip, cutout, validation_fraction, test_fraction, search_split,
            seed, cache, max_examples: as in :func:`load`.

    Returns:
        A :class:`DataBundle` of batched ``(image, label)`` datasets, images float32 in [-1, 1].

    Raises:
        ValueError: a bad option (as in :func:`load`), ``x`` not 3-D or 4-D, empty, without pixels or
            not numeric, ``y`` not 1-D integers, different lengths, ``num_classes`` below 2, a label outside
            ``[0, num_classes)``, a single class, NaN or inf pixels, pixel values outside the accepted
            ranges, or too few examples to split.
    """
    options = _options(
        name, batch_size, augment, flip, cutout, validation_fraction, test_fraction, search_split, seed, cache
    )
    _check_max_examples(max_examples)
    x, y, num_classes = _check_arrays(x, y, num_classes)
    x = _scale_array(x)
    if image_size is not None:
        x = tf.image.resize(x, _image_size(image_size)).numpy()
    return _bundle(name, array_source(x, y, num_classes, max_examples, seed), options)


def split_indices(num_examples, validation_fraction, test_fraction=None, seed=0):
    """Seeded, disjoint index sets for every part of a bundle.

    One permutation of range(num_examples): test first (only if
    `test_fraction`), then validation, the rest is train; train's two halves
    are search_architecture / search_weights, and the first
    `SEARCH_VALIDATION_SIZE` of validation are search_validation.
    """
    order = np.random.default_rng(seed).permutation(num_examples)
    num_test = _fraction_count(test_fraction, num_examples) if test_fraction else 0
    num_validation = _fraction_count(validation_fraction, num_examples)
    parts = {
        "train": order[num_test + num_validation :],
        "validation": order[num_test : num_test + num_validation],
        "test": order[:num_test],
    }
    half = len(parts["train"]) // 2
    parts["search_weights"] = parts["train"][half:]
    parts["search_architecture"] = parts["train"][:half]
    parts["search_validation"] = parts["validation"][:SEARCH_VALIDATION_SIZE]
    return parts


def _bundle(name, source, options):
    carve_test = source.test is None
    parts = split_indices(
        source.size, options.validation_fraction, options.test_fraction if carve_test else None, options.seed
    )
    if len(parts["search_architecture"]) < 1:  # train needs an example for each half
        raise ValueError(
            f"dataset {name!r} has only {source.size} examples: too few to split into train,"
            " validation and test; supply more data or lower validation_fraction/test_fraction."
        )
    wanted = list(parts) if options.search_split else ["train", "validation", "test"]
    datasets, sizes = {}, {}
    for offset, part in enumerate(wanted):
        if part == "test" and not carve_test:
            datasets[part] = _finish(source.test.map(source.prepare, tf.data.AUTOTUNE), source.test_size, options)
            sizes[part] = source.test_size
            continue
        selected = _select(source.examples, source.size, parts[part])
        training_seed = options.seed + offset if part in _TRAINING_PARTS else None
        datasets[part] = _finish(
            selected.map(source.prepare, tf.data.AUTOTUNE), len(parts[part]), options, training_seed
        )
        sizes[part] = len(parts[part])
    return DataBundle(
        name=name,
        num_classes=source.num_classes,
        input_shape=source.input_shape,
        num_train=sizes["train"],
        batch_size=options.batch_size,
        sizes=sizes,
        **datasets,
    )


def _select(examples, num_examples, indices):
    keep = np.zeros(num_examples, dtype=bool)
    keep[indices] = True
    keep = tf.constant(keep)
    selected = examples.enumerate().filter(lambda index, example: keep[index])
    selected = selected.map(lambda index, example: example)
    return selected.apply(tf.data.experimental.assert_cardinality(len(indices)))


def without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off; AUTOTUNE parallelism falls back to the number of cores.

    The autotuning thread's optimisation competes with the training step for the CPU, and deleting an iterator
    waits for it: Keras' ``fit`` deletes one each epoch and the last ones when it returns. On 2 cores that cost a
    30-epoch fit of a 3-cell network on the digits 45 to 60 s of 207 s (148 s with autotuning off), and a search
    a wait at every path's epoch. Examples cached in memory leave nothing worth tuning.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _finish(dataset, size, options, training_seed=None):
    """Cache, then (training parts) shuffle and augment, scale, batch, prefetch. A training part's passes are
    shuffled and augmented by (seed, key, pass) (:mod:`~bnas_tf.data.passes`), so a resumed search reads the
    batches an unbroken one read. Cached parts have tf.data's autotuning off (:func:`without_autotune`)."""
    if options.cache:
        dataset = dataset.cache()
    augmenting = training_seed is not None and options.augment
    if training_seed is not None:
        buffer_size = min(size, SHUFFLE_BUFFER_LIMIT)
        dataset = passes.shuffled_passes(dataset, size, buffer_size, training_seed, seeds=augmenting)
    if augmenting:
        augment = augment_lib.make_augment(options.flip, options.cutout)
        dataset = dataset.map(
            lambda example, seed: (augment(_to_signed_unit(example[0]), seed), example[1]), tf.data.AUTOTUNE
        )
    else:
        dataset = dataset.map(lambda image, label: (_to_signed_unit(image), label), tf.data.AUTOTUNE)
    dataset = dataset.batch(options.batch_size).prefetch(tf.data.AUTOTUNE)
    return without_autotune(dataset) if options.cache else dataset


def _to_signed_unit(image):
    if image.dtype.is_integer:
        return tf.cast(image, tf.float32) / (image.dtype.max / 2.0) - 1.0
    return tf.cast(image, tf.float32)


def _options(name, batch_size, augment, flip, cutout, validation_fraction, test_fraction, search_split, seed, cache):
    arguments.count("batch_size", batch_size)
    for label, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{label} must be in (0, 1), got {fraction!r}; e.g. 0.1 holds out 10% of the examples.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction = "
            f"{validation_fraction + test_fraction} leaves no training data;"
            " keep their sum below 1."
        )
    if not isinstance(cutout, (int, np.integer)) or cutout < 0:
        raise ValueError(f"cutout must be a non-negative pixel count, got {cutout!r}.")
    if flip is None:
        flip = default_flip(name)
    return _Options(
        int(batch_size),
        bool(augment),
        bool(flip),
        int(cutout),
        float(validation_fraction),
        float(test_fraction),
        bool(search_split),
        int(seed),
        bool(cache),
    )


def _check_max_examples(max_examples):
    if max_examples is not None and (not isinstance(max_examples, (int, np.integer)) or max_examples <= 0):
        raise ValueError(f"max_examples must be None or a positive integer, got {max_examples!r}.")


def _image_size(image_size):
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}.")
    return tuple(int(s) for s in size)


def _fraction_count(fraction, total):
    return max(1, int(round(fraction * total)))


def _check_arrays(x, y, num_classes):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"x must be images shaped (N, H, W, C) or (N, H, W), got shape {x.shape}.")
    if len(x) == 0:
        raise ValueError("the dataset is empty (0 examples); pass at least a few images per class.")
    if 0 in x.shape[1:]:
        raise ValueError(f"x has images without pixels: shape {x.shape}; each image needs height, width and channels.")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"x must hold numeric pixels, got dtype {x.dtype}; pass uint8 or float images.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y must be 1-D integer class ids, got shape {y.shape} dtype {y.dtype};"
            " for one-hot labels pass y.argmax(axis=1)."
        )
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels; they must match.")
    arguments.count("num_classes", num_classes, minimum=2, allow_none=True)
    num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.max() > np.iinfo(np.int32).max:
        raise ValueError(f"label {y.max()} is too large for a class id; labels must be class ids 0..num_classes-1.")
    if y.min() < 0 or y.max() >= num_classes:
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ValueError(f"label {bad} is out of range [0, {num_classes}); labels must be class ids 0..num_classes-1.")
    if len(np.unique(y)) < 2:
        raise ValueError(f"y holds a single class ({y[0]}); classification needs at least 2.")
    return x, y.astype(np.int32), num_classes


def _scale_array(x):
    """uint8 / [0, 255] / [0, 1] pixels to [-1, 1]; [-1, 1] floats pass through."""
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"x holds non-finite pixels (NaN or inf) in {int((~finite).sum())} image(s), the first at index "
            f"{int(np.argmin(finite))}; replace or drop those images."
        )
    low, high = float(x.min()), float(x.max())
    if x.dtype == np.uint8 or (low >= 0.0 and 1.0 < high <= 255.0):
        return (x.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    if 0.0 <= low and high <= 1.0:
        return (x.astype(np.float32) * 2.0 - 1.0).astype(np.float32)
    if -1.0 <= low and high <= 1.0:
        return x.astype(np.float32)
    raise ValueError(
        f"pixel values span [{low}, {high}]; pass uint8 [0, 255] or floats in [0, 1], [0, 255] or [-1, 1]."
    )
