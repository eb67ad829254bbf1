"""Where a bundle's examples come from: arrays, an image folder or TFDS (DESIGN `data`).

Each loader returns a `Source`: the examples of the source's train split in
a fixed order, plus the test split when the source has one. `bnas_tf.data`
cuts, caches, augments and batches them; here we only find, check and decode.
Nothing here downloads: a TFDS dataset that is not on disk raises
`DataNotFoundError` saying how to supply it.
"""

import dataclasses
import difflib
import os

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
VALID_NAMES = (
    "'digits' (built in, no download), a TFDS name such as 'cifar10', 'cifar100',"
    " 'mnist' or 'imagenet2012', or a folder with one subfolder of images per class"
)


class DataNotFoundError(ValueError):
    """A known dataset whose data is not on this machine (bnas-tf never downloads)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Examples in a fixed order; `prepare` maps a selected element to (image, int32 label).

    Images leave `prepare` either as integers over their dtype's full range
    (cached compactly, scaled later) or as float32 already in [-1, 1].
    """

    examples: tf.data.Dataset
    size: int
    num_classes: int
    input_shape: tuple
    prepare: object = None
    test: tf.data.Dataset = None
    test_size: int = 0


def _resize(image, size):
    resized = tf.image.resize(image, size)
    if image.dtype.is_integer:
        return tf.saturate_cast(tf.round(resized), image.dtype)
    return resized


def array_source(x, y, num_classes, max_examples, seed):
    """Checked, scaled arrays; `max_examples` keeps a seeded subset."""
    if max_examples is not None and max_examples < len(x):
        keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:max_examples])
        x, y = x[keep], y[keep]
    return Source(
        examples=tf.data.Dataset.from_tensor_slices((x, y)),
        size=len(x),
        num_classes=num_classes,
        input_shape=tuple(x.shape[1:]),
        prepare=lambda image, label: (image, label),
    )


def folder_source(folder, size, max_examples, seed):
    """One subfolder per class (sorted names give labels 0..K-1), decoded lazily; every image is decoded once
    here first, so a corrupt or empty file fails the load, named."""
    if size is None:
        raise ValueError(
            f"image folder {folder!r} needs image_size=(height, width) to resize"
            " its images to one shape, e.g. image_size=32."
        )
    class_names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if len(class_names) < 2:
        raise ValueError(
            f"image folder {folder!r} has {len(class_names)} class subfolder(s);"
            " classification needs at least 2 (one subfolder of images per class)."
        )
    paths, labels, channels = [], [], 1
    for label, class_name in enumerate(class_names):
        files = _image_files(os.path.join(folder, class_name))
        if not files:
            raise ValueError(
                f"class folder {os.path.join(folder, class_name)!r} has no images"
                f" ({', '.join(IMAGE_EXTENSIONS)}); add some or remove it."
            )
        channels = max(channels, _probe_channels(files[0]))  # any colour class: RGB
        paths += files
        labels += [label] * len(files)
    paths, labels = np.array(paths), np.array(labels, dtype=np.int32)
    if max_examples is not None and max_examples < len(paths):
        keep = np.sort(np.random.default_rng(seed).permutation(len(paths))[:max_examples])
        paths, labels = paths[keep], labels[keep]

    def decode(path):
        return tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)

    _check_decodable(folder, paths, decode)

    def prepare(path, label):
        return _resize(decode(path), size), label

    return Source(
        examples=tf.data.Dataset.from_tensor_slices((paths, labels)),
        size=len(paths),
        num_classes=len(class_names),
        input_shape=(*size, channels),
        prepare=prepare,
    )


def _image_files(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _check_decodable(folder, paths, decode):
    """Decode every image the bundle will read, as its pipeline decodes them, so a corrupt or empty file
    fails at load time, named, instead of as a TensorFlow error mid-training.

    Decoding runs in parallel through ``tf.data``; files that fail are dropped by ``ignore_errors`` and
    found by their missing index.
    """
    indexed = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths))
    decoded = indexed.map(
        lambda index, path: (index, tf.shape(decode(path))), tf.data.AUTOTUNE, deterministic=False
    ).ignore_errors()
    readable = np.zeros(len(paths), dtype=bool)
    for indices, _ in decoded.batch(1024):
        readable[indices.numpy()] = True
    bad = [str(path) for path in paths[~readable]]
    if not bad:
        return
    path = bad[0]
    empty = " (an empty file)" if os.path.exists(path) and os.path.getsize(path) == 0 else ""
    others = f" and {len(bad) - 1} other file(s)" if len(bad) > 1 else ""
    raise ValueError(
        f"image folder {folder!r}: cannot decode {path!r}{empty} as an image{others}; remove or replace it "
        "(folders must hold PNG, JPEG, BMP or GIF files)."
    )


def _probe_channels(path):
    """Decode one file so a broken folder fails here, not mid-epoch; 1 or 3 channels."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        raise ValueError(
            f"cannot decode {path!r} as an image; remove or replace it (folders must hold PNG, JPEG, BMP or GIF files)."
        ) from None
    return 1 if image.shape[-1] in (1, 2) else 3


def tfds_source(name, size, data_dir, max_examples):
    """A supervised TFDS image dataset read in file order, never downloaded."""
    builder = _tfds_builder(name, data_dir)
    image_key, label_key = _check_image_classification(builder, name)
    shape = builder.info.features[image_key].shape
    if size is None and None in shape[:2]:
        raise ValueError(
            f"TFDS dataset {name!r} has images of varying size {shape};"
            " pass image_size=(height, width), e.g. image_size=224."
        )
    channels = shape[2] or 3
    _prepare_manual(builder, name)
    train, info = _tfds_split(builder, name, "train", data_dir, with_info=True)
    splits = info.splits
    test_split = "test" if not splits or "test" in splits else ("validation" if "validation" in splits else None)
    train_size = _tfds_size(train, splits, "train", max_examples)
    is_float = not np.issubdtype(builder.info.features[image_key].np_dtype, np.integer)

    def prepare(image, label):
        if size is not None:
            image = _resize(image, size)
        if is_float:
            image = tf.cast(image, tf.float32) * 2.0 - 1.0
        return image, tf.cast(label, tf.int32)

    source = dict(
        examples=train.take(train_size),
        size=train_size,
        prepare=prepare,
        num_classes=builder.info.features[label_key].num_classes,
        input_shape=(*(size or shape[:2]), channels),
    )
    if test_split is not None:
        test = _tfds_split(builder, name, test_split, data_dir)
        test_size = _tfds_size(test, splits, test_split, max_examples)
        source.update(test=test.take(test_size), test_size=test_size)
    return Source(**source)


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except ValueError:  # includes tfds' DatasetNotFoundError and unparsable names
        close = difflib.get_close_matches(name.lower(), ["digits", *tfds.list_builders()])
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown dataset {name!r}: not a folder and not a registered TFDS dataset.{hint} Use {VALID_NAMES}."
        ) from None
    except AssertionError as error:  # e.g. a version this TFDS does not have
        first_line = str(error).splitlines()[0]
        raise ValueError(f"cannot use TFDS dataset {name!r}: {first_line}") from None


def _check_image_classification(builder, name):
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(key, str) for key in keys):
        raise ValueError(
            f"TFDS dataset {name!r} has no (image, label) supervised keys: it is"
            f" not an image-classification dataset. Use {VALID_NAMES}."
        )
    image_key, label_key = keys
    feature = builder.info.features[image_key]
    if len(getattr(feature, "shape", ())) != 3:
        raise ValueError(
            f"TFDS dataset {name!r} is not image data: its input {image_key!r} is"
            f" {type(feature).__name__} of shape {getattr(feature, 'shape', None)},"
            f" not (height, width, channels). Use {VALID_NAMES}."
        )
    if not hasattr(builder.info.features[label_key], "num_classes"):
        raise ValueError(
            f"TFDS dataset {name!r} labels {label_key!r} are not class ids"
            " (ClassLabel); bnas-tf needs an image-classification dataset."
        )
    return image_key, label_key


def _prepare_manual(builder, name):
    """Build a manual-download dataset (ImageNet) from archives the user placed.

    TFDS's manual_dir is `<data_dir>/downloads/manual`; nothing is downloaded.
    """
    import tensorflow_datasets as tfds

    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS is None or builder.is_prepared():
        return
    manual_dir = os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")
    if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
        return  # loading then raises DataNotFoundError with the instructions
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as error:  # report preparation failures in one line, without the trace
        raise DataNotFoundError(
            f"preparing TFDS dataset {name!r} from {manual_dir} failed: {str(error).splitlines()[0]}"
        ) from None


def _tfds_split(builder, name, split, data_dir, with_info=False):
    import tensorflow_datasets as tfds

    try:
        return tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=False,
            as_supervised=True,
            shuffle_files=False,
            with_info=with_info,
        )
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError):
        root = os.fspath(builder.data_dir_root)
        manual = os.path.join(root, "downloads", "manual")
        if builder.MANUAL_DOWNLOAD_INSTRUCTIONS is not None:
            how = f"place its archives in {manual} (the TFDS manual_dir)"
        else:
            how = f"prepare it with `tfds build {name}` on a machine with internet and copy it"
        raise DataNotFoundError(
            f"TFDS dataset {name!r} is not prepared in {root} and bnas-tf never downloads:"
            f" {how}, or pass data_dir= pointing to prepared TFDS data (manual datasets like"
            " imagenet2012 take their archives in <data_dir>/downloads/manual), or pass an"
            " image folder path, or use 'digits'."
        ) from None


def _tfds_size(dataset, splits, split, max_examples):
    if splits and split in splits:
        size = splits[split].num_examples
    else:
        size = int(dataset.cardinality())
        if size < 0:
            size = int(dataset.reduce(0, lambda count, _: count + 1))
    if size == 0:
        raise ValueError(f"TFDS split {split!r} is empty (0 examples); check data_dir.")
    return size if max_examples is None else min(size, max_examples)
