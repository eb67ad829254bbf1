"""Load a saved bnas_tf model for conversion without running code stored in the file.

Keras 2.15 honours ``safe_mode=True`` only for ``.keras`` files: loading a
SavedModel or HDF5 file rebuilds Lambda layers from their stored Python
bytecode and *calls* it, whatever ``safe_mode`` says. We therefore load
every format inside Keras' safe-mode scope, where a SavedModel's Lambda
layers are revived as graph-only stand-ins (no Python runs) and HDF5 ones
are refused; :func:`~bnas_tf.convert.check_convertible` then rejects the
stand-ins by name.
"""

from __future__ import annotations

import contextlib
import os

import tensorflow as tf

import bnas_tf  # noqa: F401  registers Larq's and bnas_tf's custom objects (ops.Zero, LearnableAmplitudeSign)

try:  # no public equivalent in Keras 2.15 (Keras 3 has keras.config.enable_unsafe_deserialization)
    from keras.src.saving.serialization_lib import SafeModeScope
except ImportError:  # pragma: no cover - other Keras 2 layouts
    SafeModeScope = None

RUN_FOLDER_MODEL = "model.keras"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def resolve_model_path(path) -> str:
    """The model file or SavedModel folder ``path`` names: a .keras/.h5 file, a SavedModel, or a run folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            return path
        candidate = os.path.join(path, RUN_FOLDER_MODEL)
        if os.path.isfile(candidate):
            return candidate
        raise FileNotFoundError(
            f"{path} is a folder with neither {RUN_FOLDER_MODEL} (a run folder) nor saved_model.pb "
            "(a SavedModel); pass the saved model itself"
        )
    if os.path.isfile(path):
        if not path.endswith(MODEL_SUFFIXES):
            raise ValueError(
                f"{path} is not a saved Keras model; expected a .keras file, a SavedModel folder or a run "
                f"folder containing {RUN_FOLDER_MODEL}"
            )
        return path
    raise FileNotFoundError(f"no saved model at {path}; pass a .keras file, a SavedModel folder or a run folder")


def _safe_scope():
    if SafeModeScope is None:
        return contextlib.nullcontext()
    return SafeModeScope(True)


def load_model(path: str | os.PathLike, custom_objects: dict | None = None) -> tf.keras.Model:
    """Load a model saved by bnas_tf (or any Keras/Larq model) in Keras safe mode, without compiling it.

    ``path``: a ``.keras`` file, a SavedModel folder, or a run folder with
    ``model.keras``. Larq's and bnas_tf's layers and quantizers are
    registered on import; pass ``custom_objects`` for others. Lambda layers
    are never deserialised from bytecode.

    Every format loads inside Keras' safe-mode scope: a SavedModel's Lambda layers come back as
    graph-only stand-ins that :func:`~bnas_tf.convert.check_convertible` refuses, and HDF5 ones are
    refused.

    Args:
        path: a ``.keras`` (or ``.h5`` / ``.hdf5``) file, a SavedModel folder, or a run folder with
            ``model.keras``.
        custom_objects: name -> class of custom layers beyond Larq's and bnas_tf's (default None).

    Returns:
        The uncompiled ``tf.keras.Model``.

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder that is neither a SavedModel nor a run folder.
        ValueError: a file that is not a saved Keras model, a format this Keras cannot load safely, a
            model Keras cannot load (a Lambda layer, an incomplete file, ...), or a file holding
            something other than a Keras model.
    """
    resolved = resolve_model_path(path)
    if not resolved.endswith(".keras") and SafeModeScope is None:
        raise ValueError(f"cannot load {resolved} safely with this Keras version; save the model as .keras")
    try:
        with _safe_scope():
            model = tf.keras.models.load_model(resolved, custom_objects=custom_objects, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError) as error:
        hint = "; is the file complete? save the model again with model.save(...)"
        if "Lambda" in str(error):
            hint = " (bnas_tf.convert never runs Lambda code from a file: rebuild the model without Lambda layers)"
        raise ValueError(f"cannot load model {resolved}: {error}{hint}") from error
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"{resolved} holds a {type(model).__name__}, not a Keras model")
    return model
