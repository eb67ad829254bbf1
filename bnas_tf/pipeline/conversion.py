"""A run's LCE export: model.tflite written and inspected, the part every run records the same way.

:func:`convert` writes the flatbuffer (converter logs hidden unless ``--verbose``), inspects it and returns what
metrics.json keeps about it; each run then verifies the file its own way (logits on the validation and test splits,
or face embeddings on pairs) and adds what it checked to :attr:`Conversion.tflite`.
"""

from __future__ import annotations

import dataclasses
import os
import time

from bnas_tf.convert import inspect, to_tflite
from bnas_tf.deploy import costs
from bnas_tf.native_logs import converter_output_hidden
from bnas_tf.pipeline import run_folder


@dataclasses.dataclass
class Conversion:
    """A written model.tflite: its path, what metrics.json records under ``tflite`` and ``size``, its costs."""

    path: str
    seconds: float
    size_bytes: int
    tflite: dict
    size: dict


def convert(model, recipe, run_dir: str) -> Conversion:
    """Write ``run_dir``/model.tflite from ``model`` with the recipe's weight format and inspect it."""
    path = os.path.join(run_dir, run_folder.TFLITE)
    start = time.perf_counter()
    with converter_output_hidden():
        to_tflite(model, path, weights=recipe.tflite_weights)
    seconds = time.perf_counter() - start
    info = inspect(path, model=model)
    tflite = {
        "path": run_folder.TFLITE,
        "weights": recipe.tflite_weights,
        "convert_seconds": seconds,
        "ops": info["ops"],
        "binary_kernel_ops": info["binary_kernel_ops"],
        "float_kernel_ops": info["float_kernel_ops"],
    }
    size = {
        "tflite_bytes": info["size_bytes"],
        "keras_bytes": os.path.getsize(os.path.join(run_dir, run_folder.MODEL)),
        "weight_bound_bytes": info.get("bound_bytes"),
        "size_over_bound": info.get("size_over_bound"),
    }
    return Conversion(path, seconds, info["size_bytes"], tflite, size)


def record(run_dir: str, model, conversion: Conversion, **checked) -> dict:
    """metrics.json with the conversion, what the run ``checked`` of it (into ``tflite``) and the model's costs."""
    tflite = {**conversion.tflite, **checked}
    return run_folder.update_metrics(run_dir, tflite=tflite, costs=costs.profile(model), size=conversion.size)
