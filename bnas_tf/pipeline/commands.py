"""What each ``bnas-tf`` subcommand accepts: its arguments, its one-line help, and the module that runs it.

Everything here is argparse and data, with no TensorFlow: ``bnas-tf --help`` and ``bnas-tf COMMAND --help`` build
every parser from this module, and :mod:`bnas_tf.pipeline.cli` imports a command's module (which loads TensorFlow)
only to run it. Names the arguments list come from TensorFlow-free sources: the recipe registry of
:mod:`bnas_tf.recipes` and the JSON files of :mod:`bnas_tf.space.published`.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources

from bnas_tf import recipes

# bnas-tf lint: the network a genotype is built into when neither the paper nor the options say otherwise
DEFAULT_CELLS = 8
DEFAULT_CHANNELS = 16
DEFAULT_INPUT_SHAPE = (32, 32, 3)
DEFAULT_BINARIZATION = "W1/A1"
# bnas-tf convert
DEFAULT_MIN_AGREEMENT = 0.99
#: the .tflite weight formats of bnas_tf.convert.export.WEIGHT_FORMATS (repeated here to stay TensorFlow-free;
#: a test keeps the two equal)
WEIGHT_FORMATS = ("float", "int8")
# where bnas_tf.space.published reads the published genotypes from
PUBLISHED_PACKAGE = "bnas_tf.space"
PUBLISHED_FOLDER = "published_cells"


def published_names() -> tuple:
    """The names of :func:`bnas_tf.space.published.names`, read from the JSON files without building genotypes."""
    folder = resources.files(PUBLISHED_PACKAGE) / PUBLISHED_FOLDER
    return tuple(
        sorted(json.loads(entry.read_text())["name"] for entry in folder.iterdir() if entry.name.endswith(".json"))
    )


# --- options shared by run, search and train -------------------------------------------
def add_recipe_arguments(parser: argparse.ArgumentParser, *, default_recipe: str | None = None) -> None:
    """``--recipe --profile --dataset --set --output --seed --quiet --deterministic`` (run, search and train take
    these)."""
    default_recipe = default_recipe or recipes.DEFAULT_RECIPE
    parser.add_argument(
        "--recipe",
        default=default_recipe,
        choices=recipes.names(),
        metavar="NAME",
        help=f"experiment to run: {', '.join(recipes.names())} (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        default=recipes.DEFAULT_PROFILE,
        choices=recipes.PROFILES,
        help="'quick' is CPU-sized on the embedded digits, 'paper' has the paper's settings (default: %(default)s)",
    )
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="'digits' (built in), a TFDS name already on this machine, or an image folder (default: the recipe's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one recipe setting, e.g. --set train_epochs=3 (repeatable; "
        "`bnas-tf recipes --show NAME` lists the settings)",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (default: the recipe's)")
    parser.add_argument(
        "--output", "-o", metavar="DIR", help="run folder to write (default: runs/<timestamp>-<recipe>)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or per-trial lines")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="bit-for-bit repeatable: deterministic ops on one thread (the same seed gives the same "
        "genotype and weights on this machine; see bnas_tf.determinism)",
    )


# --- bnas-tf run, search, train ----------------------------------------------------------
#: ``--strategy`` choices (bnas_tf.pipeline.distribution.NAMES, repeated here to stay TensorFlow-free)
DISTRIBUTION_STRATEGIES = ("mirrored", "multi_worker")


def add_strategy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy",
        choices=DISTRIBUTION_STRATEGIES,
        help="train the search's supernet (and the retraining) data-parallel with tf.distribute: 'mirrored' on "
        "this host's devices, 'multi_worker' on the hosts TF_CONFIG names (docs/scaling_out.md; default: none)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    add_strategy_argument(parser)


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    add_strategy_argument(parser)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "genotype", metavar="GENOTYPE.json", nargs="?", help="genotype file (cell or width), e.g. a run's genotype.json"
    )
    parser.add_argument(
        "--genotype",
        dest="genotype_option",
        metavar="NAME_OR_FILE",
        help="a published genotype of bnas_tf.space.published (e.g. p2_bnas_cifar10) or a genotype file",
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="training epochs (default: the recipe's train_epochs)")
    add_recipe_arguments(parser)


# --- bnas-tf convert ---------------------------------------------------------------------
def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="saved Keras model (.keras file or SavedModel folder) or a run folder containing model.keras",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the .tflite file")
    parser.add_argument(
        "--verify-on",
        metavar="DATASET",
        help="compare the .tflite with Keras on this dataset's test split: 'digits' (built in), "
        "a TFDS name already on this machine, or an image folder",
    )
    parser.add_argument(
        "--max-samples", type=int, default=256, metavar="N", help="examples to verify on (default: %(default)s)"
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        metavar="FRACTION",
        help="exit with status 1 when top-1 agreement is below this (default: %(default)s)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="TFDS data folder for --verify-on")
    parser.add_argument(
        "--embedding",
        action="store_true",
        help="the model outputs embeddings (a bnas_face run): --verify-on compares them by cosine "
        "similarity instead of top-1",
    )
    parser.add_argument(
        "--min-cosine",
        type=float,
        default=0.999,
        metavar="COSINE",
        help="with --embedding: exit 1 when an embedding's cosine with Keras is lower (default: %(default)s)",
    )
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="time the .tflite and a float .tflite of the same model on this host "
        "(reference only unless this host is ARM)",
    )
    parser.add_argument(
        "--runs", type=int, default=50, metavar="N", help="timed runs for --benchmark (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, metavar="N", help="interpreter threads (default: %(default)s)"
    )
    parser.add_argument("--target", choices=("arm", "xcore"), default="arm", help="LCE target (default: %(default)s)")
    parser.add_argument(
        "--weights",
        choices=WEIGHT_FORMATS,
        default="float",
        help="'int8' stores W1/A32 and float nets' weights as int8 (4x smaller; default: %(default)s)",
    )


# --- bnas-tf lint ------------------------------------------------------------------------
def input_shape(text: str) -> tuple:
    """``--input-shape``: ``H,W,C`` (or ``HxWxC``) as a tuple of three positive ints."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH,CHANNELS such as 32,32,3 (got {text!r})")
    return shape


def add_lint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="MODEL_OR_GENOTYPE",
        help=f"published genotype ({', '.join(published_names())}), genotype JSON file, run folder, "
        "or saved model (.keras file or SavedModel folder)",
    )
    parser.add_argument(
        "--cells",
        type=int,
        metavar="N",
        help=f"cells of a cell genotype's network (default: the paper's for published genotypes, else {DEFAULT_CELLS})",
    )
    parser.add_argument(
        "--channels",
        type=int,
        metavar="C",
        help=f"initial channels of a cell genotype's network (default: the paper's for published "
        f"genotypes, else {DEFAULT_CHANNELS})",
    )
    parser.add_argument(
        "--input-shape",
        type=input_shape,
        metavar="H,W,C",
        help=f"input shape of a genotype's network (default: {','.join(map(str, DEFAULT_INPUT_SHAPE))})",
    )
    parser.add_argument(
        "--binarization",
        metavar="TAG",
        help=f"W1/A1, W1/A32 or W32/A32 for a genotype's network (default: {DEFAULT_BINARIZATION})",
    )
    parser.add_argument("--num-classes", type=int, default=10, metavar="N", help="classes (default: %(default)s)")
    parser.add_argument(
        "--stem", choices=("cifar", "imagenet"), help="stem of a cell genotype's network (default: cifar)"
    )
    parser.add_argument(
        "--auxiliary", action="store_true", default=None, help="add the auxiliary head (cell genotypes)"
    )
    parser.add_argument(
        "--inter-cell-skip", action="store_true", default=None, help="add skips between cells (cell genotypes)"
    )
    parser.add_argument("--lce-friendly", action="store_true", help="build with lce_friendly=True (genotypes)")
    parser.add_argument("--all", action="store_true", help="list every layer, not only conv and dense layers")
    parser.add_argument("--json", action="store_true", help="print the lce_profile dict as JSON instead of a table")


# --- bnas-tf estimate -------------------------------------------------------------------
#: steps timed of each kind after its first, traced one
DEFAULT_ESTIMATE_STEPS = 2


def add_estimate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        default=recipes.DEFAULT_RECIPE,
        choices=recipes.names(),
        metavar="NAME",
        help=f"experiment to estimate: {', '.join(recipes.names())} (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        default="paper",
        choices=recipes.PROFILES,
        help="'paper' has the paper's sizes, 'quick' is CPU-sized (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one recipe setting, e.g. --set search_batch_size=200 (repeatable)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_ESTIMATE_STEPS,
        metavar="N",
        help="steps timed of each kind after its first, traced one (default: %(default)s)",
    )
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="dataset whose sizes to count (default: the recipe's); nothing is loaded or downloaded",
    )
    parser.add_argument(
        "--input-shape",
        type=input_shape,
        metavar="H,W,C",
        help="image shape, for a dataset other than cifar10, cifar100, imagenet2012 and digits",
    )
    parser.add_argument("--classes", type=int, metavar="N", help="number of classes, for such a dataset")
    parser.add_argument("--examples", type=int, metavar="N", help="training examples, for such a dataset")
    parser.add_argument(
        "--strategy",
        choices=("mirrored",),
        help="time the steps under tf.distribute's MirroredStrategy on this host's devices, as `bnas-tf run "
        "--strategy mirrored` trains (default: one device)",
    )


# --- bnas-tf report, recipes ---------------------------------------------------------------
def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `bnas-tf run` (or search/train)")


def add_recipes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--show",
        metavar="NAME",
        choices=recipes.names(),
        help="print every setting of this recipe (what --set can change)",
    )
    parser.add_argument(
        "--profile",
        default=recipes.DEFAULT_PROFILE,
        choices=recipes.PROFILES,
        help="profile for --show (default: %(default)s)",
    )


#: subcommand -> (module whose run(args) -> int runs it, one-line help, function adding its arguments)
SUBCOMMANDS = {
    "run": (
        "bnas_tf.pipeline.run",
        "the whole job: search, retrain the winner, convert with LCE, verify, write a report",
        add_run_arguments,
    ),
    "search": (
        "bnas_tf.pipeline.search",
        "search an architecture with a recipe; writes genotype.json and the search log",
        add_search_arguments,
    ),
    "train": (
        "bnas_tf.pipeline.train",
        "retrain a genotype from scratch with a recipe's schedule; writes model.keras",
        add_train_arguments,
    ),
    "convert": (
        "bnas_tf.convert.cli",
        "convert a saved Keras model or run folder to .tflite with Larq Compute Engine",
        add_convert_arguments,
    ),
    "lint": (
        "bnas_tf.pipeline.lint",
        "show what Larq Compute Engine will run as binary in a model or genotype, before training",
        add_lint_arguments,
    ),
    "report": (
        "bnas_tf.pipeline.report",
        "regenerate report.md and the PNG plots of a run folder",
        add_report_arguments,
    ),
    "estimate": (
        "bnas_tf.pipeline.estimate",
        "time a few steps of a recipe's full-size networks on random data and project its run's steps, hours, "
        "memory and all-reduce volume",
        add_estimate_arguments,
    ),
    "recipes": (
        "bnas_tf.pipeline.recipes_command",
        "list the papers' experiments, or show one recipe's settings",
        add_recipes_arguments,
    ),
}
