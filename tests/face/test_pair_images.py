"""Pairs on disk end to end: an identity image folder (CASIA-WebFace layout) and an LFW-layout pairs.txt
naming its files decode to the same [-1, 1] pixels bnas_tf.data gives the training images."""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import data
from bnas_tf.face.data import load_pair_list, load_pairs
from bnas_tf.face.pairs import read_pairs

NAMES = ("Ada_Lovelace", "Alan_Turing", "Grace_Hopper")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 identities x 4 digit images each, as root/<name>/<name>_000k.png."""
    root = tmp_path_factory.mktemp("faces")
    x, y = data.digits_arrays(16)
    for label, name in enumerate(NAMES):
        (root / name).mkdir()
        for k, image in enumerate(x[y == label][:4], start=1):
            tf.keras.utils.save_img(
                root / name / f"{name}_{k:04d}.png", ((image + 1) * 127.5).round().astype(np.uint8), scale=False
            )
    lines = ["10 1"]
    for fold in range(10):
        name = NAMES[fold % 3]
        lines += [f"{name} {1 + fold % 2} {3 + fold % 2}", f"{name} 1 {NAMES[(fold + 1) % 3]} {1 + fold % 4}"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_identity_folder_loads_as_one_class_per_identity(folder):
    bundle = data.load(str(folder), image_size=16, batch_size=4, validation_fraction=0.25, test_fraction=0.25)
    assert bundle.num_classes == 3 and bundle.input_shape == (16, 16, 1)


def test_lfw_pairs_decode_the_named_images_at_the_training_scale(folder):
    pairs = load_pair_list(read_pairs(folder / "pairs.txt", extension=".png"), (16, 16, 1))
    assert len(pairs) == 20 and pairs.same.tolist() == [True, False] * 10
    assert pairs.folds.tolist() == [k for k in range(10) for _ in (0, 1)]
    assert pairs.images.shape[1:] == (16, 16, 1) and pairs.images.min() >= -1.0 and pairs.images.max() <= 1.0
    x, y = data.digits_arrays(16)
    first = x[y == 0][0]  # Ada_Lovelace_0001.png
    index = pairs.left[1]  # fold 0's different pair starts with Ada_Lovelace 1
    np.testing.assert_allclose(pairs.images[index], first, atol=1 / 127.5)
    assert pairs.summary(pairs.images.reshape(len(pairs.images), -1))["num_pairs"] == 20


def test_missing_images_name_the_line_and_the_image_root(folder):
    with pytest.raises(
        ValueError,
        match=r"pairs.txt line 2: image .*Ada_Lovelace_0001.jpg' does not exist; give the "
        r"folder the pair list's paths are relative to as image root",
    ):
        load_pairs(f"lfw={folder / 'pairs.txt'}", (16, 16, 1))  # the default .jpg extension: not these files
