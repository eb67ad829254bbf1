"""Bad input across the public API and the CLI: one-line errors naming the problem and the fix, no partial output.

Each case is (id, what it does, error type, substrings: the problem and the
fix). API cases raise; CLI cases run ``bnas-tf`` in-process and must exit 2
with one ``bnas-tf <command>: error: ...`` line. Cases that would write a file
name the paths that must not exist afterwards. docs/errors.md lists every
case id (checked below).
"""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import Genotype, WidthGenotype, build_network, data
from bnas_tf.pipeline import cli
from bnas_tf.space.genotype import load_any
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import DeploymentObjective, Differentiable, Evolution, OperationPruning

SPACE = CellSpace(op_set=["conv_3x3", "identity"], cells=2, channels=4, nodes=1, reduction_cells=[1])
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "errors.md")


class Context:
    """Per-test scratch folder plus the module's shared data and saved models."""

    def __init__(self, tmp, shared):
        self.tmp, self.bundle, self.models = tmp, shared["bundle"], shared["models"]

    def path(self, *parts):
        return os.path.join(str(self.tmp), *parts)

    def unwritable(self):
        """A folder nobody may create files in: a read-only folder, or for root /sys (sysfs refuses even root)."""
        if os.geteuid() != 0:
            folder = self.path("locked")
            os.makedirs(folder, exist_ok=True)
            os.chmod(folder, 0o500)
            return folder
        return "/sys"

    def environ(self, **variables):
        """Set environment variables for this test only."""
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)

    def tuner(self, name="state", **kwargs):
        settings = dict(repetitions=1, ucb=True, seed=1, directory=str(self.tmp), project_name=name)
        settings.update(kwargs)
        return OperationPruning(SPACE, **settings)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    _saved_models(folder)
    return {"bundle": data.load("digits", batch_size=32, search_split=True, max_examples=200), "models": str(folder)}


@pytest.fixture
def ctx(tmp_path, shared, monkeypatch):
    context = Context(tmp_path, shared)
    context.monkeypatch = monkeypatch
    yield context
    locked = os.path.join(str(tmp_path), "locked")
    if os.path.exists(locked):
        os.chmod(locked, 0o700)


# --- helpers the cases share -----------------------------------------------------
GENOTYPE = Genotype.random("DARTS_BINARY_OPS", seed=0, nodes=2).to_dict()


def _genotype(**changes):
    return Genotype.from_dict({**GENOTYPE, **changes})


def _search(ctx, train=None, validation="default", **tuner_kwargs):
    b = ctx.bundle
    tuner = ctx.tuner("search", overwrite=True, **tuner_kwargs)
    tuner.search(
        b.search_weights if train is None else train,
        b.search_validation if validation == "default" else validation,
        steps_per_epoch=1,
        verbose=0,
    )


def _corrupt_after(ctx, prepare, relative_path):
    """Run ``prepare`` (writes a saved search), truncate one of its files, then resume the search."""
    tuner = prepare(ctx)
    path = os.path.join(tuner.project_dir, relative_path)
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])  # what a crash mid-write used to leave
    resumed = ctx.tuner()
    resumed._build(ctx.bundle.search_weights, ctx.bundle.search_validation)


def _reshaped_after(ctx, prepare, relative_path, content):
    """Run ``prepare``, replace one of its files by valid JSON that is not a saved search, then resume."""
    tuner = prepare(ctx)
    with open(os.path.join(tuner.project_dir, relative_path), "w") as f:
        f.write(content)
    ctx.tuner()


def _saved_oracle(ctx):
    tuner = ctx.tuner()
    tuner.oracle.create_trial("tuner0/slot0")  # writes trial_0000/trial.json and oracle.json
    tuner.save()
    return tuner


def _saved_supernet(ctx):
    tuner = _saved_oracle(ctx)
    tuner._build(ctx.bundle.search_weights, ctx.bundle.search_validation)  # the initial checkpoint
    return tuner


def _missing_checkpoint_data(ctx):
    tuner = _saved_supernet(ctx)
    folder = os.path.join(tuner.project_dir, "supernet")
    for name in os.listdir(folder):
        if ".data-" in name:
            os.unlink(os.path.join(folder, name))
    ctx.tuner()._build(ctx.bundle.search_weights, ctx.bundle.search_validation)


def _one_class_folder(ctx):
    os.makedirs(ctx.path("images", "cat"))
    tf.keras.utils.save_img(ctx.path("images", "cat", "a.png"), np.zeros((8, 8, 1)))
    data.load(ctx.path("images"), image_size=8)


def _folder_with_an_empty_image(ctx):
    for name in ("a", "b"):
        os.makedirs(ctx.path("images", name))
        for index in range(6):
            tf.keras.utils.save_img(ctx.path("images", name, f"{index}.png"), np.zeros((8, 8, 1)))
    open(ctx.path("images", "b", "4.png"), "wb").close()
    data.load(ctx.path("images"), image_size=8)


def _zero_padded_binary_conv(ctx):
    import larq as lq

    from bnas_tf.convert import to_tflite

    inputs = tf.keras.Input((2, 2, 32))
    x = lq.layers.QuantConv2D(
        8,
        3,
        padding="same",
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
    )(inputs)
    to_tflite(tf.keras.Model(inputs, x), ctx.path("bad.tflite"))


def _pairs_file(ctx, text, load=False):
    from bnas_tf.face import data as face_data
    from bnas_tf.face import pairs

    with open(ctx.path("pairs.txt"), "w") as f:
        f.write(text)
    if load:
        return face_data.load_pairs(f"test={ctx.path('pairs.txt')}", (16, 16, 1))
    return pairs.read_pairs(ctx.path("pairs.txt"))


def _face_search_with_array(ctx):
    from bnas_tf.face.tuners import FaceOperationPruning

    FaceOperationPruning(SPACE, verification_pairs=np.zeros((2, 16, 16, 1)), directory=ctx.path("f"))


def _face_margin(ctx):
    from bnas_tf.face.head import AdditiveAngularMargin

    AdditiveAngularMargin(10, margin=2.0)


def _face_spec(ctx):
    from bnas_tf.face.pairs import parse_spec

    parse_spec("data/lfw/pairs.txt")


# (id, call(ctx), error type, substrings, paths that must not exist afterwards)
def _search_within_impossible_budget(c):
    """Every path is over a 1-byte budget: all fail before training, round 0 has no measurement and the search
    stops (its trials stay recorded)."""
    tuner = c.tuner("budget", binarization="W1/A1", deployment=DeploymentObjective("size_bytes", budget=1))
    try:
        tuner.search(c.bundle.search_weights, c.bundle.search_validation, steps_per_epoch=1, verbose=0)
    finally:
        assert tuner.oracle.trials and all(t.status == "FAILED" for t in tuner.oracle.trials.values())
    return tuner.best_genotype()


def _diverging_search(c):
    """A learning rate of 1e30: round 0's every path has a NaN loss."""
    tuner = c.tuner("diverged", overwrite=True, learning_rate=1e30)
    tuner.search(c.bundle.search_weights, c.bundle.search_validation, steps_per_epoch=2, verbose=0)


def _evolution_labels_beyond_classes(c):
    tuner = Evolution(
        "vgg_small", num_classes=3, width_multiplier=0.0625, epochs_per_candidate=1, directory=c.path("e")
    )
    tuner.search(c.bundle.train, validation_data=c.bundle.validation)


def _saved_models(folder):
    """good.keras (10 logits), dynamic.keras (no fixed input size), three.keras (3 logits), nan.keras (NaN
    weights, as a diverged training leaves them) and truncated.keras (half a file)."""

    def model(classes, input_shape=(16, 16, 1)):
        inputs = tf.keras.Input(input_shape)
        x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3, padding="same")(inputs))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(classes)(x))

    model(10).save(folder / "good.keras")
    model(10, (None, None, 1)).save(folder / "dynamic.keras")
    model(3).save(folder / "three.keras")
    diverged = model(10)
    diverged.set_weights([np.full_like(w, np.nan) for w in diverged.get_weights()])
    diverged.save(folder / "nan.keras")
    (folder / "truncated.keras").write_bytes((folder / "good.keras").read_bytes()[:200])


TOY_TRAIN = ["max_examples=300", "train_epochs=1", "train_steps_per_epoch=3", "cells=2", "channels=8"]
TOY_SEARCH = [
    "max_examples=300",
    "search_steps_per_epoch=2",
    "search_cells=2",
    "search_channels=4",
    "op_set=zero,conv_3x3",
    "search_epochs=1",
]


def _settings(*settings):
    return [arg for setting in settings for arg in ("--set", setting)]


API_CASES = [
    # genotypes
    (
        "genotype-unknown-field",
        lambda c: _genotype(colour="red"),
        ValueError,
        ["unknown genotype fields ['colour']", "known fields: name"],
        None,
    ),
    (
        "genotype-missing-cell",
        lambda c: Genotype.from_dict({k: v for k, v in GENOTYPE.items() if k != "reduce"}),
        ValueError,
        ["missing 'reduce'", "list of [op, input_node]"],
        None,
    ),
    (
        "genotype-unknown-op",
        lambda c: _genotype(normal=[["conv_9x9", 0]] + GENOTYPE["normal"][1:]),
        ValueError,
        ["unknown op 'conv_9x9'", "known ops: zero"],
        None,
    ),
    (
        "genotype-unknown-op-set",
        lambda c: _genotype(op_set="NOPE"),
        ValueError,
        ["unknown op set 'NOPE'", "known op sets: DARTS_BINARY_OPS"],
        None,
    ),
    (
        "genotype-op-outside-op-set",
        lambda c: _genotype(op_set="BINARY_OPS"),
        ValueError,
        ["which is not in op set 'BINARY_OPS'"],
        None,
    ),
    (
        "genotype-edge-count",
        lambda c: _genotype(normal=GENOTYPE["normal"][:1]),
        ValueError,
        ["normal cell has 1 edges", "needs 5 (every edge) or 4 (two per node)"],
        None,
    ),
    (
        "genotype-input-node",
        lambda c: _genotype(normal=[["max_pool_3x3", 0], ["max_pool_3x3", 2]] + GENOTYPE["normal"][2:]),
        ValueError,
        ["input node 2 out of range 0..1"],
        None,
    ),
    ("genotype-nodes-type", lambda c: _genotype(nodes="2"), ValueError, ["nodes must be a positive integer"], None),
    (
        "genotype-truncated-file",
        lambda c: (open(c.path("g.json"), "w").write(json.dumps(GENOTYPE)[:40]), load_any(c.path("g.json"))),
        ValueError,
        ["is not valid JSON"],
        None,
    ),
    (
        "genotype-missing-file",
        lambda c: load_any(c.path("none.json")),
        ValueError,
        ["cannot read genotype file", "No such file"],
        None,
    ),
    (
        "width-genotype-ratio",
        lambda c: WidthGenotype("vgg_small", (1.0,) * 5 + (7.0,)),
        ValueError,
        ["ratio 5 is 7.0", "one of [0.25, 0.5, 1.0, 2.0, 3.0, 4.0]"],
        None,
    ),
    # networks and spaces
    (
        "network-channels-zero",
        lambda c: build_network(Genotype(**GENOTYPE), cells=2, channels=0),
        ValueError,
        ["channels must be a positive integer (got 0)"],
        None,
    ),
    (
        "space-channels-negative",
        lambda c: CellSpace(op_set=["conv_3x3", "identity"], channels=-8),
        ValueError,
        ["channels must be a positive integer (got -8)"],
        None,
    ),
    (
        "space-channels-odd",
        lambda c: CellSpace(op_set=["conv_3x3", "identity"], channels=7),
        ValueError,
        ["channels must be even (got 7)", "two halves"],
        None,
    ),
    (
        "space-unknown-op",
        lambda c: CellSpace(op_set=["conv_3x3", "conv_9x9"]),
        ValueError,
        ["unknown op 'conv_9x9'", "known ops"],
        None,
    ),
    (
        "space-unknown-op-set",
        lambda c: CellSpace(op_set="ALL_THE_OPS"),
        ValueError,
        ["unknown op set 'ALL_THE_OPS'", "or pass a list of op names"],
        None,
    ),
    (
        "space-reduction-cell",
        lambda c: CellSpace(op_set=["conv_3x3", "identity"], cells=2, reduction_cells=[4]),
        ValueError,
        ["reduction_cells must be distinct indices in 0..1"],
        None,
    ),
    (
        "network-input-too-small",
        lambda c: build_network(
            Genotype(**GENOTYPE), cells=3, channels=8, input_shape=(3, 3, 1), reduction_cells=[1, 2]
        ),
        ValueError,
        ["input 3x3 is too small for 2 halvings", "use fewer reduction cells or larger images"],
        None,
    ),
    (
        "network-binarization",
        lambda c: build_network(Genotype(**GENOTYPE), cells=2, binarization="W2/A2"),
        ValueError,
        ["unknown binarization 'W2/A2'", "use one of"],
        None,
    ),
    # data
    (
        "data-empty",
        lambda c: data.from_arrays(np.zeros((0, 8, 8, 1)), np.zeros(0, int)),
        ValueError,
        ["the dataset is empty", "pass at least a few images"],
        None,
    ),
    (
        "data-single-class",
        lambda c: data.from_arrays(np.zeros((20, 8, 8, 1)), np.zeros(20, int)),
        ValueError,
        ["single class", "at least 2"],
        None,
    ),
    (
        "data-label-out-of-range",
        lambda c: data.from_arrays(np.zeros((20, 8, 8)), np.arange(20) % 3, num_classes=2),
        ValueError,
        ["label 2 is out of range [0, 2)", "class ids 0..num_classes-1"],
        None,
    ),
    (
        "data-float-labels",
        lambda c: data.from_arrays(np.zeros((20, 8, 8)), np.arange(20) % 2 * 1.0),
        ValueError,
        ["integer class ids", "y.argmax(axis=1)"],
        None,
    ),
    (
        "data-not-images",
        lambda c: data.from_arrays(np.zeros((20, 64)), np.arange(20) % 2),
        ValueError,
        ["x must be images shaped (N, H, W, C)", "got shape (20, 64)"],
        None,
    ),
    (
        "data-pixel-range",
        lambda c: data.from_arrays(np.full((20, 8, 8), 1000.0), np.arange(20) % 2),
        ValueError,
        ["pixel values span [1000.0, 1000.0]", "pass uint8 [0, 255]"],
        None,
    ),
    (
        "data-tfds-missing",
        lambda c: data.load("cifar10", data_dir=c.path("no_tfds")),
        data.DataNotFoundError,
        ["'cifar10' is not prepared", "never downloads", "tfds build cifar10"],
        None,
    ),
    (
        "data-unknown-name",
        lambda c: data.load("no_such_dataset_xyz"),
        ValueError,
        ["unknown dataset 'no_such_dataset_xyz'", "Use 'digits'"],
        None,
    ),
    (
        "data-one-class-folder",
        _one_class_folder,
        ValueError,
        ["has 1 class subfolder(s)", "one subfolder of images per class"],
        None,
    ),
    (
        "data-undecodable-image",
        _folder_with_an_empty_image,
        ValueError,
        ["cannot decode", "4.png' (an empty file) as an image", "remove or replace it"],
        None,
    ),
    (
        "data-non-finite-pixels",
        lambda c: data.from_arrays(
            np.where(np.arange(20)[:, None, None] == 3, np.nan, np.zeros((20, 8, 8))), np.arange(20) % 2
        ),
        ValueError,
        ["x holds non-finite pixels (NaN or inf) in 1 image(s), the first at index 3", "replace or drop"],
        None,
    ),
    (
        "data-no-pixels",
        lambda c: data.from_arrays(np.zeros((20, 8, 8, 0)), np.arange(20) % 2),
        ValueError,
        ["x has images without pixels: shape (20, 8, 8, 0)", "height, width and channels"],
        None,
    ),
    (
        "data-num-classes",
        lambda c: data.from_arrays(np.zeros((20, 8, 8)), np.arange(20) % 2, num_classes=1),
        ValueError,
        ["num_classes must be an integer >= 2 or None (got 1)"],
        None,
    ),
    # searches
    (
        "search-repetitions-zero",
        lambda c: c.tuner(repetitions=0),
        ValueError,
        ["repetitions must be a positive integer (got 0)"],
        None,
    ),
    (
        "search-one-op",
        lambda c: OperationPruning(CellSpace(op_set=["conv_3x3"], cells=2, channels=4, nodes=1), directory=c.path("p")),
        ValueError,
        ["at least 2 ops per edge"],
        None,
    ),
    (
        "search-validation-missing",
        lambda c: _search(c, validation=None),
        ValueError,
        ["validation_data is required", "search_split=True"],
        None,
    ),
    (
        "search-numpy-input",
        lambda c: _search(c, train=np.zeros((4, 16, 16, 1))),
        TypeError,
        ["train_data must be a tf.data.Dataset", "bnas_tf.data.load"],
        None,
    ),
    (
        "search-unbatched",
        lambda c: _search(c, train=c.bundle.search_weights.unbatch()),
        ValueError,
        ["rank 4 (batch, H, W, C)"],
        None,
    ),
    (
        "search-string-labels",
        lambda c: _search(c, train=c.bundle.search_weights.map(lambda x, y: (x, tf.strings.as_string(y)))),
        ValueError,
        ["1-D integer class ids", "from_arrays"],
        None,
    ),
    (
        "search-image-size-mismatch",
        lambda c: _search(c, validation=c.bundle.search_validation.map(lambda x, y: (tf.image.resize(x, (8, 8)), y))),
        ValueError,
        ["shape (8, 8, 1)", "same image_size"],
        None,
    ),
    (
        "search-labels-beyond-classes",
        lambda c: _search(c, num_classes=3),
        ValueError,
        ["outside 0..2", "pass num_classes="],
        None,
    ),
    (
        "search-empty-validation",
        lambda c: _search(c, validation=c.bundle.search_validation.take(0)),
        ValueError,
        ["validation_data is empty", "at least one batch"],
        None,
    ),
    (
        "search-input-too-small",
        lambda c: _search(
            c,
            train=c.bundle.search_weights.map(lambda x, y: (tf.image.resize(x, (1, 1)), y)),
            validation=c.bundle.search_validation.map(lambda x, y: (tf.image.resize(x, (1, 1)), y)),
        ),
        ValueError,
        ["too small for 1 halvings"],
        None,
    ),
    (
        "search-steps-per-epoch",
        lambda c: c.tuner("s", overwrite=True).search(
            c.bundle.search_weights, c.bundle.search_validation, steps_per_epoch=-1
        ),
        ValueError,
        ["steps_per_epoch must be a positive integer"],
        None,
    ),
    (
        "evolution-validation-missing",
        lambda c: Evolution("vgg_small", directory=c.path("e")).search(c.bundle.train),
        ValueError,
        ["pass validation_data="],
        None,
    ),
    (
        "evolution-not-data",
        lambda c: Evolution("vgg_small", directory=c.path("e")).search("images/", validation_data=c.bundle.validation),
        TypeError,
        ["tf.data.Dataset or an image array"],
        None,
    ),
    (
        "evolution-unknown-backbone",
        lambda c: Evolution("vgg_huge", directory=c.path("e")),
        ValueError,
        ["unknown backbone 'vgg_huge'", "known backbones"],
        None,
    ),
    (
        "evolution-labels-beyond-classes",
        _evolution_labels_beyond_classes,
        ValueError,
        ["validation_data has label 9 outside 0..2", "pass num_classes= the number of classes"],
        lambda c: [c.path("e", "untitled_project", "trial_0000")],
    ),
    (
        "search-round-diverged",
        _diverging_search,
        ValueError,
        [
            "every sampled path of round 0 failed (1 path): the loss is not finite (the network diverged)",
            "lower the learning rate",
            "searching again there goes on from them",
        ],
        None,
    ),
    # deployment objectives
    (
        "deploy-unknown-cost",
        lambda c: DeploymentObjective("latency"),
        ValueError,
        [
            "deployment cost must be one of size_bytes, binary_macs, float_macs, fallback_macs",
            "or a function of the lce_profile dict",
        ],
        None,
    ),
    (
        "deploy-budget-zero",
        lambda c: DeploymentObjective(budget=0),
        ValueError,
        ["deployment budget must be a finite number > 0 or None, got 0"],
        None,
    ),
    (
        "deploy-penalty-differentiable",
        lambda c: Differentiable(
            SPACE,
            directory=c.path("d"),
            deployment=DeploymentObjective(lambda profile: profile["float_macs"], penalty=1.0),
        ),
        ValueError,
        [
            "Differentiable's deployment penalty is a differentiable sum of per-edge op costs",
            "name one of binary_macs, float_macs, fallback_macs, size_bytes",
            "or use budget=",
        ],
        None,
    ),
    (
        "deploy-nothing-within-budget",
        _search_within_impossible_budget,
        ValueError,
        [
            "no searched architecture is within the deployment budget 1 size_bytes",
            "the cheapest candidate costs",
            "raise the budget",
        ],
        None,
    ),
    # face verification
    (
        "face-pairs-field-count",
        lambda c: _pairs_file(c, "1 1\nAbel_Pacheco 1\nA 1 B 1\n"),
        ValueError,
        ["pairs.txt line 2: 2 fields 'Abel_Pacheco 1'", "each line is 'name n1 n2' (same person)", "'10 300'"],
        None,
    ),
    (
        "face-pairs-image-number",
        lambda c: _pairs_file(c, "1 1\nAbel_Pacheco 1 x\nA 1 B 1\n"),
        ValueError,
        ["pairs.txt line 2: image number 'x' in 'Abel_Pacheco 1 x' is not a positive integer"],
        None,
    ),
    (
        "face-pairs-header-count",
        lambda c: _pairs_file(c, "2 300\nA 1 2\nA 1 2\nA 1 B 1\n"),
        ValueError,
        [
            "header '2 300' (line 1) promises 2 folds x 600 lines = 1200 pairs, the file has 3",
            "fix the header or restore the missing lines",
        ],
        None,
    ),
    (
        "face-pairs-label",
        lambda c: _pairs_file(c, "a.jpg b.jpg yes\n"),
        ValueError,
        ["pairs.txt line 1: label 'yes' must be 1 (same identity) or 0 (different)", "'path1 path2 label'"],
        None,
    ),
    (
        "face-pairs-missing-image",
        lambda c: _pairs_file(c, "a.png b.png 1\n" * 10, load=True),
        ValueError,
        ["pairs.txt line 1: image", "a.png' does not exist", "image root ('name=pairs_file@image_root')"],
        None,
    ),
    (
        "face-pairs-spec",
        _face_spec,
        ValueError,
        ["pair list 'data/lfw/pairs.txt' must be 'name=pairs_file' or 'name=pairs_file@image_root'"],
        None,
    ),
    (
        "face-margin-range",
        _face_margin,
        ValueError,
        ["margin must be in [0, pi/2) radians (got 2.0)", "ArcFace uses m = 0.5"],
        None,
    ),
    (
        "face-search-pairs-type",
        _face_search_with_array,
        TypeError,
        ["verification_pairs must be a bnas_tf.face.pairs.PairSet, got ndarray", "pairs_from_dataset"],
        None,
    ),
    # saved search state
    (
        "state-oracle-truncated",
        lambda c: _corrupt_after(c, _saved_oracle, "oracle.json"),
        ValueError,
        ["oracle.json is corrupt", "restore it from a backup", "overwrite=True"],
        None,
    ),
    (
        "state-oracle-wrong-shape",
        lambda c: _reshaped_after(c, _saved_oracle, "oracle.json", '{"seed": 1}'),
        ValueError,
        [
            "oracle.json is corrupt (valid JSON, but not a saved search state: no 'ongoing_trials' entry)",
            "overwrite=True",
        ],
        None,
    ),
    (
        "state-trial-truncated",
        lambda c: _corrupt_after(c, _saved_oracle, os.path.join("trial_0000", "trial.json")),
        ValueError,
        ["trial_0000/trial.json is corrupt", "overwrite=True"],
        None,
    ),
    (
        "state-pointer-truncated",
        lambda c: _corrupt_after(c, _saved_supernet, os.path.join("supernet", "latest.json")),
        ValueError,
        ["latest.json is corrupt", "overwrite=True", "untrained weights"],
        None,
    ),
    (
        "state-checkpoint-missing",
        _missing_checkpoint_data,
        ValueError,
        ["supernet checkpoint", "cannot be read", "overwrite=True"],
        None,
    ),
    # conversion
    (
        "convert-zero-padded-binary-conv",
        _zero_padded_binary_conv,
        ValueError,
        ["cannot convert layer", "pad_values=1.0"],
        lambda c: [c.path("bad.tflite")],
    ),
]

# (id, argv(ctx), substrings, paths that must not exist afterwards)
CLI_CASES = [
    (
        "cli-convert-missing-model",
        lambda c: ["convert", c.path("none.keras"), "-o", c.path("m.tflite")],
        ["no saved model at"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-convert-truncated-model",
        lambda c: ["convert", os.path.join(c.models, "truncated.keras"), "-o", c.path("m.tflite")],
        ["cannot load model", "save the model again"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-convert-unwritable-output",
        lambda c: [
            "convert",
            os.path.join(c.models, "good.keras"),
            "-o",
            os.path.join(c.unwritable(), "bnas-tf-test", "m.tflite"),
        ],
        ["is not writable", "choose a writable output folder"],
        lambda c: [os.path.join(c.unwritable(), "bnas-tf-test")],
    ),
    (
        "cli-convert-output-is-folder",
        lambda c: ["convert", os.path.join(c.models, "good.keras"), "-o", c.path()],
        ["is a directory", "give a file name"],
        None,
    ),
    (
        "cli-convert-cannot-convert",
        lambda c: ["convert", os.path.join(c.models, "dynamic.keras"), "-o", c.path("m.tflite")],
        ["LCE needs every dimension but the batch fixed", "fixed input_shape"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-convert-verify-missing-tfds",
        lambda c: [
            "convert",
            os.path.join(c.models, "good.keras"),
            "-o",
            c.path("m.tflite"),
            "--verify-on",
            "cifar10",
            "--data-dir",
            c.path("no_tfds"),
        ],
        ["'cifar10' is not prepared", "never downloads"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-convert-threads-zero",
        lambda c: [
            "convert",
            os.path.join(c.models, "good.keras"),
            "-o",
            c.path("m.tflite"),
            "--benchmark",
            "--threads",
            "0",
        ],
        ["num_threads must be a positive integer (got 0)"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-convert-max-samples-zero",
        lambda c: [
            "convert",
            os.path.join(c.models, "good.keras"),
            "-o",
            c.path("m.tflite"),
            "--verify-on",
            "digits",
            "--max-samples",
            "0",
        ],
        ["--max-samples must be a positive integer (got 0)"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-train-truncated-genotype",
        lambda c: (
            open(c.path("g.json"), "w").write('{"normal": [["conv_3x3", 0]'),
            ["train", c.path("g.json"), "-o", c.path("run")],
        )[1],
        ["is not valid JSON"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-train-face-recipe",
        lambda c: (
            open(c.path("g.json"), "w").write(json.dumps(GENOTYPE)),
            ["train", c.path("g.json"), "--recipe", "bnas_face", "-o", c.path("run")],
        )[1],
        ["recipe 'bnas_face' is a face_verification recipe", "bnas-tf run --recipe bnas_face"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-search-unknown-setting",
        lambda c: ["search", "--set", "no_such=1", "-o", c.path("run")],
        ["unknown setting 'no_such'", "bnas-tf recipes --show"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-search-repetitions-zero",
        lambda c: ["search", "--set", "repetitions=0", "-o", c.path("run")],
        ["repetitions must be positive (got 0)"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-search-missing-tfds",
        lambda c: ["search", "--dataset", "cifar10", "-o", c.path("run")],
        ["'cifar10' is not prepared", "never downloads"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-search-unwritable-output",
        lambda c: ["search", "-o", os.path.join(c.unwritable(), "bnas-tf-test")],
        ["cannot write the run folder", "choose a writable --output folder"],
        lambda c: [os.path.join(c.unwritable(), "bnas-tf-test")],
    ),
    ("cli-report-not-a-run", lambda c: ["report", c.path()], ["not a run folder"], None),
    (
        "cli-estimate-unknown-dataset",
        lambda c: ["estimate", "--dataset", "my_faces"],
        ["does not know the sizes of dataset 'my_faces'", "--input-shape H,W,C --classes N --examples N"],
        None,
    ),
    ("cli-estimate-steps-zero", lambda c: ["estimate", "--steps", "0"], ["--steps must be an integer >= 1"], None),
    *(
        (
            case,
            lambda c, settings=settings: ["run", *settings, "-o", c.path("run")],
            expected,
            lambda c: [c.path("run")],
        )
        for case, settings, expected in [
            (
                "cli-run-reduction-cells",
                ["--set", "reduction_cells=5"],
                ["reduction_cells must be distinct cell indices in 0..2 (cells=3), got [5]"],
            ),
            ("cli-run-empty-op-set", ["--set", "op_set=[]"], ["op_set: unknown op set '[]'", "op_set=op1,op2,..."]),
            (
                "cli-run-repeated-ops",
                ["--set", "op_set=conv_3x3,conv_3x3"],
                ["op set has repeated ops: ['conv_3x3', 'conv_3x3']"],
            ),
            (
                "cli-run-one-op",
                ["--set", "op_set=conv_3x3"],
                ["op_set must have at least 2 ops to search among (got ['conv_3x3'])"],
            ),
            (
                "cli-run-odd-search-channels",
                ["--set", "search_channels=7"],
                ["search_channels must be even (got 7)", "two halves"],
            ),
            (
                "cli-run-seed-too-large",
                ["--seed", str(2**32)],
                ["seed must be an integer in 0..4294967295 (got 4294967296)"],
            ),
            (
                "cli-run-image-size-too-small",
                ["--set", "image_size=1"],
                [
                    "1x1 images are too small for the search network's 1 halvings of resolution (needs at least 2x2)",
                    "a larger image_size",
                ],
            ),
            (
                "cli-run-data-too-small",
                ["--set", "search_cells=5", "--set", "search_reduction_cells=0,1,2,3,4"],
                ["16x16 images are too small for the search network's 5 halvings of resolution (needs at least 32x32)"],
            ),
            ("cli-run-gamma", ["--recipe", "binary_darts", "--set", "gamma=0.5"], ["gamma must be >= 1 (got 0.5)"]),
            (
                "cli-run-unknown-backbone",
                ["--recipe", "evolution_vgg_small", "--set", "backbone=vgg_huge"],
                ["unknown backbone 'vgg_huge'; known backbones: vgg_small"],
            ),
        ]
    ),
    (
        "cli-search-partial-distributed",
        lambda c: (c.environ(KERASTUNER_TUNER_ID="worker0"), ["search", "-o", c.path("run")])[1],
        ["KERASTUNER_TUNER_ID is set but KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT are not", "unset"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-run-distributed",
        lambda c: (c.environ(KERASTUNER_TUNER_ID="worker0"), ["run", "-o", c.path("run")])[1],
        ["bnas-tf run does not run distributed (KERASTUNER_TUNER_ID set)", "bnas-tf search -o DIR"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-search-multi-worker-without-cluster",
        lambda c: (c.environ(TF_CONFIG=""), ["search", "--strategy", "multi_worker", "-o", c.path("run")])[1],
        ["--strategy multi_worker reads the cluster from TF_CONFIG: TF_CONFIG is not set", "in every process"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-run-multi-worker-task-outside-cluster",
        lambda c: (
            c.environ(TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}'),
            ["run", "--strategy", "multi_worker", "-o", c.path("run")],
        )[1],
        ["TF_CONFIG's task index 1 is not one of the cluster's worker processes"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-run-strategy-face",
        lambda c: ["run", "--recipe", "bnas_face", "--strategy", "mirrored", "-o", c.path("run")],
        ["--strategy trains classification recipes; 'bnas_face' is a face_verification recipe"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-train-diverged",
        lambda c: (
            open(c.path("g.json"), "w").write(json.dumps(GENOTYPE)),
            ["train", c.path("g.json"), *_settings(*TOY_TRAIN, "train_learning_rate=1e30"), "-o", c.path("run")],
        )[1],
        ["training diverged: the loss at epoch 1, batch", "became nan", "lower train_learning_rate (now 1e+30)"],
        lambda c: [c.path("run", name) for name in ("model.keras", "genotype.json", "metrics.json", "history.json")],
    ),
    (
        "cli-search-diverged",
        lambda c: [
            "search",
            "--recipe",
            "binary_darts",
            *_settings(*TOY_SEARCH, "search_learning_rate=1e30"),
            "-o",
            c.path("run"),
        ],
        [
            "search epoch 0 failed: the loss is not finite",
            "lower search_learning_rate (now 1e+30)",
            "a rerun with --output",
        ],
        lambda c: [c.path("run", name) for name in ("genotype.json", "search_log.json")],
    ),
    (
        "cli-convert-verify-non-finite",
        lambda c: ["convert", os.path.join(c.models, "nan.keras"), "-o", c.path("m.tflite"), "--verify-on", "digits"],
        ["Keras outputs are not finite (NaN/inf)", "retrain it with a lower learning rate"],
        None,
    ),
    (
        "cli-convert-verify-label-space",
        lambda c: ["convert", os.path.join(c.models, "three.keras"), "-o", c.path("m.tflite"), "--verify-on", "digits"],
        ["the data has 10 classes but the model has 3 outputs", "the dataset the model was trained on"],
        lambda c: [c.path("m.tflite")],
    ),
    (
        "cli-search-deploy-cost",
        lambda c: ["search", "--set", "deploy_cost=latency", "-o", c.path("run")],
        ["deploy_cost must be one of size_bytes, binary_macs, float_macs, fallback_macs (got 'latency')"],
        lambda c: [c.path("run")],
    ),
    (
        "cli-train-unknown-published-genotype",
        lambda c: ["train", "--genotype", "p2_nope", "-o", c.path("run")],
        ["--genotype 'p2_nope' is neither a published genotype (p2_bnas_cifar10", "nor an existing genotype file"],
        lambda c: [c.path("run")],
    ),
]


def _one_line(message):
    assert "\n" not in message.strip(), f"not one line:\n{message}"
    return message


@pytest.mark.parametrize("case", API_CASES, ids=[case[0] for case in API_CASES])
def test_api_bad_input(case, ctx):
    _, call, error, expected, forbidden = case
    with pytest.raises(error) as info:
        call(ctx)
    message = _one_line(str(info.value))
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    for path in forbidden(ctx) if forbidden else []:
        assert not os.path.exists(path), f"{path} left behind"


@pytest.mark.parametrize("case", CLI_CASES, ids=[case[0] for case in CLI_CASES])
def test_cli_bad_input(case, ctx, capsys):
    _, argv, expected, forbidden = case
    argv = argv(ctx)
    assert cli.main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"bnas-tf {argv[0]}: error: "), err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    for path in forbidden(ctx) if forbidden else []:
        assert not os.path.exists(path), f"{path} left behind"


def test_at_least_25_cases_and_the_docs_table_lists_them():
    ids = [case[0] for case in API_CASES + CLI_CASES]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    with open(DOCS) as f:
        documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", f.read(), flags=re.M))
    assert documented == set(ids), (sorted(set(ids) - documented), sorted(documented - set(ids)))
