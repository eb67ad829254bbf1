"""What a run folder holds, and the recipe the options of run, search and train select.

A run folder (default ``runs/<timestamp>-<recipe>/``) is the whole record of
one ``bnas-tf run``: the searched genotype, the trained and converted model,
``metrics.json``, the search log and training history the plots are drawn
from, TensorBoard logs, ``report.md`` and its PNGs. ``bnas-tf report`` needs
nothing but this folder.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from bnas_tf import recipes
from bnas_tf.determinism import enable_determinism
from bnas_tf.files import atomic_write_json, read_json

GENOTYPE = "genotype.json"
MODEL = "model.keras"
TFLITE = "model.tflite"
METRICS = "metrics.json"
SEARCH_LOG = "search_log.json"
HISTORY = "history.json"
REPORT = "report.md"
LOGS = "logs"  # TensorBoard: logs/search, logs/train
SEARCH_DIR = "search"  # the tuner's project directory (oracle state, supernet checkpoints)
DEFAULT_ROOT = "runs"


def new_run_dir(recipe_name: str, root: str = DEFAULT_ROOT) -> str:
    """``root/<YYYYmmdd-HHMMSS>-<recipe>``, made unique with a counter if that folder exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(root, f"{stamp}-{recipe_name}")
    candidate, count = path, 1
    while os.path.exists(candidate):
        count += 1
        candidate = f"{path}-{count}"
    os.makedirs(candidate)
    return candidate


def prepare_output(output: str | None, recipe_name: str) -> str:
    """The folder to write into: ``output`` (created) or a new ``runs/<timestamp>-<recipe>``."""
    if output is None:
        return new_run_dir(recipe_name)
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output {output} is a file; give a folder for the run")
    try:
        os.makedirs(output, exist_ok=True)
        probe, probe_path = tempfile.mkstemp(prefix=".tmp-", dir=output)
        os.close(probe)
        os.unlink(probe_path)
    except OSError as error:
        raise OSError(
            f"cannot write the run folder {output}: {error.strerror}; choose a writable --output folder"
        ) from None
    return output


def read_metrics(run_dir: str) -> dict:
    path = os.path.join(run_dir, METRICS)
    return read_json(path, what="metrics file") if os.path.exists(path) else {}


def update_metrics(run_dir: str, **sections) -> dict:
    """Merge ``sections`` into ``run_dir/metrics.json`` (each step adds its own part) and return the whole."""
    metrics = read_metrics(run_dir)
    metrics.update(json.loads(json.dumps(sections, default=_jsonable)))
    atomic_write_json(os.path.join(run_dir, METRICS), metrics)
    return metrics


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- the recipe of run, search and train (their options: bnas_tf.pipeline.commands) --------
def recipe_from_args(args):
    """The recipe ``args`` select, with ``--set``, ``--dataset`` and ``--seed`` applied; ``--deterministic``
    turns determinism on here, before the command runs anything in TensorFlow. ``bnas-tf search`` refuses a
    partial chief/worker setting here (some KERASTUNER_* variables set, not all), before any data or file."""
    if getattr(args, "command", None) == "search":
        from bnas_tf.tuners import keras_tuner_internals  # lazy: loads KerasTuner, which report and train skip

        keras_tuner_internals.check_distributed_environment()
    if getattr(args, "deterministic", False):
        enable_determinism()

    overrides = list(args.overrides)
    if args.dataset:
        overrides.append(f"dataset={args.dataset}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return recipes.get(args.recipe, args.profile, overrides)
