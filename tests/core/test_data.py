"""Tests for bnas_tf.data, data_sources and augment (DESIGN `data`, SPEC P1 "Search data")."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import tensorflow_datasets.testing as tfds_testing

from bnas_tf import data
from bnas_tf.data import augment

PARTS = ("train", "validation", "test", "search_weights", "search_architecture", "search_validation")


def collect(dataset):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(images), np.concatenate(labels)


def numbered_arrays(count=200, num_classes=3):
    """Images whose every pixel encodes the example's index, to track examples."""
    x = np.repeat(np.arange(count, dtype=np.float32) / count, 4 * 4).reshape(count, 4, 4, 1)
    return x, np.arange(count) % num_classes


def example_ids(dataset, count=200):
    images, _ = collect(dataset)
    return np.rint((images[:, 0, 0, 0] + 1.0) / 2.0 * count).astype(int)


def write_folder(root, classes=("cat", "dog", "owl"), per_class=4, channels=3):
    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(root / name)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(10, 12, channels), dtype=np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(pixels))
    return root


# --- digits, the embedded default -----------------------------------------------------------


def test_digits_arrays_are_scaled_16x16_images():
    x, y = data.digits_arrays()
    assert x.shape == (1797, 16, 16, 1) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert y.dtype == np.int32 and set(y) == set(range(10))


def test_digits_bundle_shapes_ranges_and_sizes():
    bundle = data.load("digits", batch_size=32)
    assert bundle.num_classes == 10 and bundle.input_shape == (16, 16, 1)
    assert bundle.search_weights is None
    total = 0
    for part in ("train", "validation", "test"):
        images, labels = collect(getattr(bundle, part))
        assert images.shape[1:] == (16, 16, 1) and images.dtype == np.float32
        assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 10
        assert -1.0 <= images.min() < 0.0 < images.max() <= 1.0
        assert len(labels) == bundle.sizes[part]
        total += len(labels)
    assert total == 1797 and bundle.num_train == bundle.sizes["train"]
    assert int(bundle.train.cardinality()) == -(-bundle.num_train // 32)
    first_images, _ = next(iter(bundle.train))
    assert first_images.shape == (32, 16, 16, 1)


def test_digits_image_size_and_describe():
    bundle = data.load("digits", image_size=8, search_split=True, max_examples=300)
    assert bundle.input_shape == (8, 8, 1)
    assert sum(bundle.sizes[part] for part in ("train", "validation", "test")) == 300
    description = bundle.describe()
    assert description.startswith("digits: 8x8x1 images, 10 classes")
    assert "search_weights" in description


# --- the seeded split ------------------------------------------------------------------------


def test_split_indices_sizes_by_hand():
    parts = data.split_indices(100, validation_fraction=0.1, test_fraction=0.2, seed=3)
    assert {part: len(index) for part, index in parts.items()} == {
        "train": 70,
        "validation": 10,
        "test": 20,
        "search_weights": 35,
        "search_architecture": 35,
        "search_validation": 10,
    }
    disjoint = np.concatenate([parts["train"], parts["validation"], parts["test"]])
    assert sorted(disjoint) == list(range(100))


def test_search_split_validation_is_capped_at_spec_5k():
    parts = data.split_indices(50_000, validation_fraction=0.2, seed=0)
    assert len(parts["validation"]) == 10_000 and len(parts["search_validation"]) == 5000
    assert set(parts["search_validation"]) <= set(parts["validation"])


def test_search_split_is_seeded_disjoint_and_complete():
    x, y = numbered_arrays()
    first = data.from_arrays(x, y, search_split=True, seed=1, batch_size=16)
    again = data.from_arrays(x, y, search_split=True, seed=1, batch_size=16)
    other = data.from_arrays(x, y, search_split=True, seed=2, batch_size=16)
    ids = {part: set(example_ids(getattr(first, part))) for part in PARTS}
    assert len(ids["search_weights"]) == len(ids["search_architecture"]) == 70
    assert not ids["search_weights"] & ids["search_architecture"]
    assert ids["search_weights"] | ids["search_architecture"] == ids["train"]
    assert ids["search_validation"] <= ids["validation"]
    assert not ids["train"] & ids["validation"]
    assert not ids["test"] & (ids["train"] | ids["validation"])
    assert ids["train"] | ids["validation"] | ids["test"] == set(range(200))
    for part in PARTS:
        assert set(example_ids(getattr(again, part))) == ids[part]
    assert set(example_ids(other.search_weights)) != ids["search_weights"]
    assert set(example_ids(other.test)) != ids["test"]


def test_train_reshuffles_each_epoch_but_validation_keeps_its_order():
    x, y = numbered_arrays()
    bundle = data.from_arrays(x, y, seed=0, batch_size=200)
    epoch_1, epoch_2 = example_ids(bundle.train), example_ids(bundle.train)
    assert sorted(epoch_1) == sorted(epoch_2) and list(epoch_1) != list(epoch_2)
    assert list(example_ids(bundle.validation)) == list(example_ids(bundle.validation))


# --- TFDS (mocked) and image folders ---------------------------------------------------------


def test_tfds_cifar10_through_mock_data(tmp_path):
    with tfds_testing.mock_data(num_examples=30):
        bundle = data.load("cifar10", data_dir=tmp_path, batch_size=8)
        assert bundle.num_classes == 10 and bundle.input_shape == (32, 32, 3)
        assert bundle.sizes["train"] + bundle.sizes["validation"] == 30
        assert bundle.sizes["test"] == 30
        images, labels = collect(bundle.train)
        test_images, _ = collect(bundle.test)
    assert images.shape == (bundle.num_train, 32, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < 10
    assert -1.0 <= images.min() < -0.9 and 0.9 < images.max() <= 1.0
    assert test_images.shape == (30, 32, 32, 3)


def test_tfds_image_size_resizes(tmp_path):
    with tfds_testing.mock_data(num_examples=12):
        bundle = data.load("cifar10", data_dir=tmp_path, image_size=16, max_examples=10)
        images, _ = collect(bundle.train)
    assert bundle.input_shape == (16, 16, 3) and images.shape[1:] == (16, 16, 3)
    assert bundle.sizes["train"] + bundle.sizes["validation"] == 10


def test_image_folder_gives_one_class_per_subfolder(tmp_path):
    folder = write_folder(tmp_path / "pets")
    bundle = data.load(folder, image_size=8, batch_size=4)
    assert bundle.num_classes == 3 and bundle.input_shape == (8, 8, 3)
    assert sum(bundle.sizes[part] for part in ("train", "validation", "test")) == 12
    images, labels = collect(bundle.train)
    assert images.shape[1:] == (8, 8, 3) and set(labels) <= {0, 1, 2}
    assert -1.0 <= images.min() < 0.0 < images.max() <= 1.0


def test_grayscale_folder_keeps_one_channel(tmp_path):
    folder = write_folder(tmp_path / "gray", classes=("a", "b"), channels=1)
    assert data.load(folder, image_size=6).input_shape == (6, 6, 1)


# --- augmentation ----------------------------------------------------------------------------


def test_augment_keeps_shapes_and_changes_pixels():
    x = np.random.default_rng(0).uniform(size=(64, 16, 16, 3)).astype(np.float32)
    y = np.arange(64) % 4
    plain = data.from_arrays(x, y, batch_size=64, seed=5)
    augmented = data.from_arrays(x, y, batch_size=64, seed=5, augment=True)
    plain_images, plain_labels = collect(plain.train)
    augmented_images, augmented_labels = collect(augmented.train)
    assert augmented_images.shape == plain_images.shape
    np.testing.assert_array_equal(augmented_labels, plain_labels)  # same seeded order
    changed = np.any(augmented_images != plain_images, axis=(1, 2, 3))
    assert changed.mean() > 0.5
    assert augmented_images.min() >= -1.0 and augmented_images.max() <= 1.0
    np.testing.assert_array_equal(collect(augmented.validation)[0], collect(plain.validation)[0])


def test_augmentation_is_seeded_and_redrawn_each_epoch():
    x = np.random.default_rng(1).uniform(size=(32, 8, 8, 3)).astype(np.float32)

    def make(seed):
        return data.from_arrays(
            x, np.arange(32) % 2, seed=seed, augment=True, cutout=2, batch_size=32, validation_fraction=0.2
        )

    first, again = make(7), make(7)
    epoch_1 = next(iter(first.train))[0].numpy()
    np.testing.assert_array_equal(epoch_1, next(iter(again.train))[0].numpy())
    assert not np.array_equal(epoch_1, next(iter(first.train))[0].numpy())
    assert not np.array_equal(epoch_1, next(iter(make(8).train))[0].numpy())


def test_cutout_zeroes_a_square_at_most_cutout_wide():
    x = np.ones((40, 16, 16, 1), np.float32)  # [0, 1] ones scale to 1.0: no natural zeros
    bundle = data.from_arrays(x, np.arange(40) % 2, augment=True, cutout=4, seed=0)
    images, _ = collect(bundle.train)
    full_squares = 0
    for image in images[..., 0]:
        rows, cols = np.nonzero(image == 0.0)
        assert len(rows) > 0
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert bottom - top <= 4 and right - left <= 4
        assert np.all(image[top:bottom, left:right] == 0.0)  # one solid block
        full_squares += (bottom - top, right - left) == (4, 4)
    assert full_squares > len(images) // 2


def test_random_crop_pads_with_black_and_flip_mirrors():
    image = tf.reshape(tf.range(64, dtype=tf.float32) / 64.0, (8, 8, 1))
    assert augment.crop_padding(32) == 4 and augment.crop_padding(8) == 1
    crops = [augment.random_crop(image, tf.constant([s, 0])) for s in range(20)]
    assert any(np.any(crop.numpy() == augment.BLACK) for crop in crops)
    flips = [augment.random_flip(image, tf.constant([s, 1])).numpy() for s in range(20)]
    mirrored = [np.array_equal(f, image.numpy()[:, ::-1]) for f in flips]
    assert 0 < sum(mirrored) < 20


def test_flip_defaults_off_for_digit_datasets():
    assert not data.default_flip("digits") and not data.default_flip("mnist:3.0.1")
    assert data.default_flip("cifar10") and data.default_flip("/data/pets")


# --- errors at the boundary ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(validation_fraction=0.0), "validation_fraction must be in (0, 1)"),
        (dict(validation_fraction=1.5), "validation_fraction must be in (0, 1)"),
        (dict(cutout=-2), "cutout must be a non-negative"),
        (dict(image_size=(4, 0)), "image_size must be a positive int"),
        (dict(max_examples=0), "max_examples must be None or a positive"),
        (dict(max_examples=3), "too few to split"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load("digits", **kwargs)


def test_unknown_name_suggests_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'no_such_set'.*'digits'"):
        data.load("no_such_set")
    with pytest.raises(ValueError, match="Did you mean 'cifar10'"):
        data.load("cifar-10")


def test_missing_tfds_data_names_dataset_and_fix(tmp_path):
    with pytest.raises(data.DataNotFoundError) as caught:
        data.load("cifar10", data_dir=tmp_path)
    message = str(caught.value)
    assert "'cifar10' is not prepared" in message and "data_dir=" in message
    assert "\n" not in message and caught.value.__suppress_context__


def test_missing_manual_dataset_points_at_manual_dir(tmp_path):
    with pytest.raises(ValueError, match="varying size"):
        data.load("imagenet2012", data_dir=tmp_path)
    with pytest.raises(data.DataNotFoundError, match="downloads/manual"):
        data.load("imagenet2012", data_dir=tmp_path, image_size=32)


def test_tfds_without_images_is_rejected():
    with pytest.raises(ValueError, match="'imdb_reviews' is not image data"):
        data.load("imdb_reviews")


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="needs image_size"):
        data.load(write_folder(tmp_path / "ok"))
    single = write_folder(tmp_path / "single", classes=("only",))
    with pytest.raises(ValueError, match="1 class subfolder.*at least 2"):
        data.load(single, image_size=8)
    notes = tmp_path / "notes"
    for name in ("a", "b"):
        os.makedirs(notes / name)
        (notes / name / "readme.txt").write_text("no pixels here")
    with pytest.raises(ValueError, match="has no images"):
        data.load(notes, image_size=8)
    broken = write_folder(tmp_path / "broken", classes=("a", "b"))
    (broken / "a" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode .*0.png"):
        data.load(broken, image_size=8)


def test_every_image_of_a_folder_is_decoded_at_load(tmp_path):
    """A corrupt or empty file anywhere in the folder (not only the first of a class) fails the load, named."""
    folder = write_folder(tmp_path / "images", classes=("a", "b"), per_class=6)
    (folder / "b" / "4.png").write_bytes(b"")
    good = (folder / "a" / "0.png").read_bytes()
    (folder / "a" / "3.png").write_bytes(good[: len(good) // 2])  # truncated: the header is fine
    with pytest.raises(ValueError) as caught:
        data.load(folder, image_size=8)
    message = str(caught.value)
    assert "cannot decode" in message and "remove or replace it" in message and "\n" not in message
    assert os.path.join("a", "3.png") in message and "and 1 other file(s)" in message
    (folder / "a" / "3.png").write_bytes(good)
    with pytest.raises(ValueError, match=r"cannot decode .*4\.png' \(an empty file\)"):
        data.load(folder, image_size=8)
    (folder / "b" / "4.png").write_bytes(good)
    assert data.load(folder, image_size=8).sizes["train"] > 0


@pytest.mark.parametrize(
    "x, y, kwargs, message",
    [
        (np.zeros((0, 4, 4, 1)), np.zeros(0, int), {}, "empty"),
        (np.zeros((10, 16)), np.arange(10) % 2, {}, "must be images shaped"),
        (np.zeros((10, 4, 4)), np.arange(9) % 2, {}, "10 images but y has 9"),
        (np.zeros((10, 4, 4)), np.eye(10)[:, :2], {}, "1-D integer class ids"),
        (np.zeros((10, 4, 4)), np.zeros(10, int), {}, "single class"),
        (np.zeros((10, 4, 4)), np.arange(10), dict(num_classes=5), "label 5 is out of range"),
        (np.full((10, 4, 4), 300.0), np.arange(10) % 2, {}, "pixel values span"),
        (
            np.where(np.arange(10)[:, None, None] == 3, np.nan, np.zeros((10, 4, 4))),
            np.arange(10) % 2,
            {},
            r"non-finite pixels \(NaN or inf\) in 1 image\(s\), the first at index 3",
        ),
        (np.full((10, 4, 4), np.inf), np.arange(10) % 2, {}, "non-finite pixels"),
        (np.zeros((10, 4, 4, 0)), np.arange(10) % 2, {}, r"images without pixels: shape \(10, 4, 4, 0\)"),
        (np.full((10, 4, 4), "a", dtype=object), np.arange(10) % 2, {}, "numeric pixels, got dtype object"),
        (np.zeros((10, 4, 4)), np.arange(10) % 2, dict(num_classes=1), r"num_classes must be an integer >= 2"),
        (np.zeros((10, 4, 4)), np.arange(10) % 2, dict(num_classes=2.5), r"num_classes must be an integer >= 2"),
        (np.zeros((10, 4, 4)), np.arange(10) % 2 + 2**32, {}, "label 4294967297 is too large for a class id"),
    ],
)
def test_bad_arrays_raise(x, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.from_arrays(x, y, **kwargs)


def test_from_arrays_scales_uint8_and_adds_channel():
    x = np.zeros((20, 4, 4), np.uint8)
    x[::2] = 255
    bundle = data.from_arrays(x, np.arange(20) % 2, batch_size=20)
    images, _ = collect(bundle.validation.concatenate(bundle.train).concatenate(bundle.test))
    assert bundle.input_shape == (4, 4, 1) and set(np.unique(images)) == {-1.0, 1.0}


# --- a manual-download TFDS dataset, prepared from files the user placed ---------------------


class BnasTestManualImages(tfds.core.GeneratorBasedBuilder):
    """A tiny manual dataset: `images.npz` in the manual dir, as imagenet2012 takes tars."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place images.npz in the manual dir."

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(num_classes=2),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        arrays = np.load(os.path.join(dl_manager.manual_dir, "images.npz"))
        return {
            "train": self._generate_examples(arrays["x"][:20], arrays["y"][:20]),
            "test": self._generate_examples(arrays["x"][20:], arrays["y"][20:]),
        }

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}


def test_manual_dataset_is_prepared_from_manual_dir(tmp_path):
    with pytest.raises(data.DataNotFoundError, match=str(tmp_path / "downloads" / "manual")):
        data.load("bnas_test_manual_images", data_dir=tmp_path)
    os.makedirs(tmp_path / "downloads" / "manual")
    x = np.random.default_rng(0).integers(0, 256, size=(30, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "downloads" / "manual" / "images.npz", x=x, y=np.arange(30) % 2)
    bundle = data.load("bnas_test_manual_images", data_dir=tmp_path, search_split=True)
    assert bundle.num_classes == 2 and bundle.input_shape == (8, 8, 3)
    assert bundle.sizes["train"] + bundle.sizes["validation"] == 20 and bundle.sizes["test"] == 10
    images, _ = collect(bundle.test)
    as_pixels = np.rint((images + 1.0) * 127.5).astype(np.uint8)  # TFDS reorders by key
    assert {image.tobytes() for image in as_pixels} == {image.tobytes() for image in x[20:]}


def test_cached_parts_train_without_tf_data_autotuning():
    """Deleting an iterator waits for the autotuning thread (Keras' fit deletes one per epoch): parts cached in
    memory turn it off, and the setting reaches every dataset made from them; streamed parts keep it."""
    x, y = np.zeros((40, 8, 8, 1), np.uint8), np.arange(40) % 2
    cached = data.from_arrays(x, y, batch_size=8, search_split=True)
    for part in ("train", "validation", "test", "search_weights", "search_architecture", "search_validation"):
        assert getattr(cached, part).options().autotune.enabled is False, part
    assert cached.train.map(lambda image, label: (image, label)).options().autotune.enabled is False
    streamed = data.from_arrays(x, y, batch_size=8, cache=False)
    assert streamed.train.options().autotune.enabled is not False
