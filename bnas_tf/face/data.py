"""Decoded verification pairs (:class:`~bnas_tf.face.pairs.PairSet`) from pair-list files or held-out images.

Identity-labelled training data needs nothing new: :func:`bnas_tf.data.load` reads an image folder with
one subfolder per identity (CASIA-WebFace's layout), a TFDS name, or the embedded digits (each digit an
identity). Pairs come either from a pair list on disk (LFW ``pairs.txt``, CFP / AgeDB lists; images
decoded and scaled to [-1, 1] like the training images) or, when a recipe names none, are drawn
(seeded, balanced per fold) among held-out images of a bundle's split: the quick profile's
digits-as-identities verification. Nothing here downloads.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from bnas_tf.face.pairs import PairSet, pairs_from_labels, parse_spec, read_pairs

DEFAULT_GENERATED_PAIRS = 600


def arrays_of(dataset, max_examples: int | None = None):
    """``(x, y)`` numpy arrays of a batched ``(image, label)`` dataset (at most ``max_examples``)."""
    xs, ys, count = [], [], 0
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y).reshape(-1))
        count += len(xs[-1])
        if max_examples is not None and count >= max_examples:
            break
    if not xs:
        raise ValueError("the dataset is empty: verification pairs need held-out images")
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x, y) if max_examples is None else (x[:max_examples], y[:max_examples])


def pairs_from_dataset(dataset, *, name: str, num_pairs: int = DEFAULT_GENERATED_PAIRS, seed: int = 0) -> PairSet:
    """Balanced, seeded verification pairs among the images of a labelled dataset (10 folds)."""
    x, y = arrays_of(dataset)
    left, right, same, folds = pairs_from_labels(y, num_pairs, seed=seed)
    used = np.unique(np.concatenate([left, right]))
    remap = np.full(len(x), -1)
    remap[used] = np.arange(len(used))  # keep only the images the pairs use
    return PairSet(name, x[used].astype(np.float32), remap[left], remap[right], same, folds)


def _decode(path, input_shape):
    height, width, channels = input_shape
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image = tf.image.resize(image, (height, width))
    return (image.numpy() / 127.5 - 1.0).astype(np.float32)  # uint8 pixels to [-1, 1], as bnas_tf.data does


def load_pair_list(pair_list, input_shape) -> PairSet:
    """Decode every image a :class:`~bnas_tf.face.pairs.PairList` names, resized to ``input_shape``."""
    paths = sorted(set(pair_list.left) | set(pair_list.right))
    for path in paths:
        if not os.path.isfile(path):
            side = pair_list.left if path in pair_list.left else pair_list.right
            line = pair_list.lines[side.index(path)]
            raise ValueError(
                f"{pair_list.source} line {line}: image {path!r} does not exist; give the folder the "
                "pair list's paths are relative to as image root ('name=pairs_file@image_root')"
            )
    index = {path: i for i, path in enumerate(paths)}
    images = []
    for path in paths:
        try:
            images.append(_decode(path, tuple(input_shape)))
        except tf.errors.InvalidArgumentError:
            raise ValueError(
                f"cannot decode {path!r} (named in {pair_list.source}) as an image; replace it (PNG, JPEG, BMP or GIF)"
            ) from None
    return PairSet(
        pair_list.name,
        np.stack(images),
        np.array([index[p] for p in pair_list.left]),
        np.array([index[p] for p in pair_list.right]),
        pair_list.same,
        pair_list.folds,
    )


def load_pairs(spec: str, input_shape) -> PairSet:
    """A recipe's ``name=pairs_file[@image_root]`` entry, read and decoded."""
    name, path, root = parse_spec(spec)
    return load_pair_list(read_pairs(path, root, name=name), input_shape)
