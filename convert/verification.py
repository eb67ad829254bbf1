"""Does the .tflite compute what the Keras model computes? Run both on the same inputs and compare.

The flatbuffer runs in LCE's own interpreter
(``larq_compute_engine.tflite.python.interpreter.Interpreter``), the only
Python runtime that has LCE's custom kernels; on x86 those are reference
kernels, numerically the same as the ARM ones.

Outputs that are not finite are an error, never a result (NaN logits agree
with each other on argmax), and so are labels the model cannot predict: a
classifier with K outputs is verified on K-class data only (:func:`check_labels`).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from larq_compute_engine.tflite.python.interpreter import Interpreter

from bnas_tf import arguments
from bnas_tf.convert import flatbuffer

KERAS_BATCH = 64


def collect(data, max_samples: int, example_shape: tuple):
    """``(x, y or None)`` numpy arrays of at most ``max_samples`` examples from ``data``.

    ``data``: a numpy array of images, a tuple ``(x, y)`` of arrays, or a
    ``tf.data.Dataset`` of ``(x, y)`` / ``(x, y, weight)`` / ``x`` elements,
    batched or not.
    """
    arguments.count("max_samples", max_samples)
    if isinstance(data, tf.data.Dataset):
        xs, ys, count = [], [], 0
        for element in data:
            x, y = _split(element)
            x = np.asarray(x)
            if x.ndim == len(example_shape):  # unbatched dataset
                x, y = x[None], (None if y is None else np.asarray(y)[None])
            xs.append(x)
            ys.append(None if y is None else np.asarray(y))
            count += len(x)
            if count >= max_samples:
                break
        if not xs:
            raise ValueError("the dataset is empty: verify needs at least one example")
        x = np.concatenate(xs)
        y = None if any(v is None for v in ys) else np.concatenate(ys)
    elif isinstance(data, tuple) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    elif isinstance(data, np.ndarray):
        x, y = data, None
    else:
        raise TypeError(
            f"data must be a numpy array, an (x, y) tuple of arrays or a tf.data.Dataset, not {type(data).__name__}"
        )
    if x.ndim == len(example_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(example_shape):
        raise ValueError(
            f"data examples have shape {tuple(x.shape[1:])} but the model expects {tuple(example_shape)}; "
            "resize the images (e.g. bnas_tf.data.load(name, image_size=...)) or convert a model built "
            "for this input size"
        )
    if len(x) == 0:
        raise ValueError("data has no examples: verify needs at least one")
    if y is not None and len(y) != len(x):
        raise ValueError(f"data has {len(x)} images but {len(y)} labels; they must match")
    x = x[:max_samples].astype(np.float32)
    if y is not None:
        y = np.asarray(y)[:max_samples]
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot
            y = y.argmax(axis=1)
        y = y.reshape(len(x), -1)[:, 0].astype(np.int64)
    return x, y


def _split(element):
    if isinstance(element, (tuple, list)):
        if len(element) not in (2, 3):
            raise ValueError(f"dataset elements must be x, (x, y) or (x, y, weight); got a tuple of {len(element)}")
        return element[0], element[1]
    if isinstance(element, dict):
        raise ValueError("dataset elements are dicts; map them to (image, label) tuples first")
    return element, None


def keras_outputs(model, x) -> np.ndarray:
    """First output of ``model`` (the logits when there is an auxiliary head), inference mode."""
    outputs = []
    for start in range(0, len(x), KERAS_BATCH):
        result = model(x[start : start + KERAS_BATCH], training=False)
        if isinstance(result, (list, tuple)):
            result = result[0]
        elif isinstance(result, dict):
            result = result[model.output_names[0]]
        outputs.append(np.asarray(result))
    return np.concatenate(outputs)


def _output_index(data: bytes, wanted: str | None, count: int) -> int:
    if count == 1:
        return 0
    names = flatbuffer.output_names(data)
    if wanted in names:
        return names.index(wanted)
    raise ValueError(
        f"the flatbuffer has {count} outputs named {names}, none called {wanted!r} (the model's first "
        "output); convert this model with to_tflite so the names match"
    )


def _quantize(x, dtype, scale, zero_point):
    if np.dtype(dtype) == np.float32:
        return x
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(y, scale, zero_point):
    if y.dtype == np.float32:
        return y
    return (y.astype(np.float32) - zero_point) * scale


def tflite_outputs(data: bytes, x, *, num_threads: int = 1, output_name: str | None = None) -> np.ndarray:
    """One output of the flatbuffer for every example of ``x``, through LCE's interpreter."""
    interpreter = Interpreter(data, num_threads=num_threads)
    if len(interpreter.input_shapes) != 1:
        raise ValueError(f"verify supports single-input models; this flatbuffer has {len(interpreter.input_shapes)}")
    batch = interpreter.input_shapes[0][0]
    if batch != 1:
        raise ValueError(
            f"the flatbuffer has a fixed batch size of {batch}; verify needs batch 1 (build the model "
            "with tf.keras.Input(shape=...) and no batch_size)"
        )
    inputs = _quantize(x, interpreter.input_types[0], interpreter.input_scales[0], interpreter.input_zero_points[0])
    result = interpreter.predict(inputs)
    outputs = result if isinstance(result, list) else [result]
    index = _output_index(data, output_name, len(outputs))
    return _dequantize(outputs[index], interpreter.output_scales[index], interpreter.output_zero_points[index])


def check_labels(num_outputs: int, y, num_classes: int | None = None) -> None:
    """Refuse a label space the classifier does not have: ``num_classes`` (the dataset's classes, when known)
    other than its ``num_outputs`` logits, or a label of ``y`` outside 0..num_outputs-1."""
    fix = "verify on the dataset the model was trained on (its classes are the model's outputs)"
    if num_classes is not None and num_classes != num_outputs:
        raise ValueError(f"the data has {num_classes} classes but the model has {num_outputs} outputs; {fix}")
    if y is not None and len(y) and (y.min() < 0 or y.max() >= num_outputs):
        bad = int(y.max() if y.max() >= num_outputs else y.min())
        raise ValueError(
            f"the data has label {bad} but the model has {num_outputs} outputs (classes 0..{num_outputs - 1}); {fix}"
        )


def check_finite(outputs, what: str, fix: str) -> None:
    """Refuse outputs with NaN or inf values: they agree on argmax and prove nothing."""
    bad = ~np.isfinite(outputs)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {bad.size} {what} outputs are not finite (NaN/inf); {fix}")


def embedding_agreement(expected, got) -> dict:
    """Cosine similarity of each Keras embedding with its .tflite embedding: ``min_cosine``, ``mean_cosine``
    (a zero-length pair of embeddings counts as 1 when both are zero, else 0)."""
    expected = np.asarray(expected, np.float64).reshape(len(expected), -1)
    got = np.asarray(got, np.float64).reshape(len(got), -1)
    norm_expected, norm_got = np.linalg.norm(expected, axis=1), np.linalg.norm(got, axis=1)
    norms = norm_expected * norm_got
    both_zero = (norm_expected == 0) & (norm_got == 0)
    cosine = np.where(norms > 0, np.sum(expected * got, axis=1) / np.where(norms > 0, norms, 1.0), both_zero * 1.0)
    return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}


MODES = ("logits", "embedding")


def verify(
    model: tf.keras.Model,
    tflite: bytes | str | os.PathLike,
    data: np.ndarray | tuple | tf.data.Dataset,
    *,
    num_threads: int = 1,
    max_samples: int = 256,
    mode: str = "logits",
    num_classes: int | None = None,
) -> dict:
    """Run ``model`` (Keras, ``training=False``) and ``tflite`` (LCE interpreter) on the same inputs and compare.

    With several outputs (an auxiliary head) the first Keras output is
    compared with the flatbuffer output of the same name. In ``mode="logits"``
    agreement is top-1: ``mean(argmax(keras) == argmax(tflite))``; in
    ``mode="embedding"`` (a face embedding model, bnas_tf.face) it is the
    cosine similarity of each example's two embeddings (``min_cosine``,
    ``mean_cosine``), and labels are not used.

    A large disagreement on an *untrained* binary network is usually sign ties
    at exactly 0 after default BatchNorm, not a converter bug (STACK_NOTES):
    train a few steps first.

    Args:
        model: the Keras model that was converted (one input).
        tflite: flatbuffer bytes or a .tflite path.
        data: numpy images, an ``(x, y)`` tuple, or a ``tf.data.Dataset`` of
            ``(x, y)`` or ``x`` (batched or not).
        num_threads: interpreter threads (default 1).
        max_samples: compare at most this many examples, a positive integer (default 256).
        mode: "logits" (classifiers, default) or "embedding".
        num_classes: the dataset's number of classes, when known; in ``mode="logits"`` it must equal the
            model's outputs (default None: only the labels are checked against the outputs).

    Returns:
        dict with ``max_abs_diff``, ``mean_abs_diff``, ``num_samples``,
        ``output`` (name of the compared output), ``mode``, and ``top1_agreement``
        (plus ``keras_accuracy`` and ``tflite_accuracy`` when labels are given)
        for logits, ``min_cosine`` and ``mean_cosine`` for embeddings.

    Raises:
        TypeError: ``model`` is not a ``tf.keras.Model``, ``tflite`` is neither bytes nor a path, or
            ``data`` is none of the accepted kinds.
        ValueError: an unknown ``mode``; ``tflite`` is not a TFLite flatbuffer; a model or flatbuffer
            with more than one input, or a flatbuffer with a fixed batch size other than 1; empty data,
            examples of another shape than the model's input, or a different number of labels and
            images; or Keras and flatbuffer outputs that do not match (another model's .tflite); in
            ``mode="logits"``, a label or ``num_classes`` outside the model's outputs (checked before running
            the .tflite); Keras or .tflite outputs that are not finite.
        OSError: the .tflite file cannot be read.
    """
    if mode not in MODES:
        raise ValueError(
            f"mode must be one of {', '.join(MODES)} (got {mode!r}); 'embedding' compares face "
            "embeddings by cosine similarity"
        )
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"model must be a tf.keras.Model, got {type(model).__name__}")
    buffer = flatbuffer.read(tflite)
    if len(model.inputs or []) != 1:
        raise ValueError("verify supports models with exactly one input")
    x, y = collect(data, max_samples, tuple(model.inputs[0].shape[1:]))
    output_name = model.output_names[0] if model.output_names else None
    if mode == "logits":
        check_labels(int(model.outputs[0].shape[-1]), y, num_classes)
    expected = keras_outputs(model, x)
    check_finite(
        expected,
        "Keras",
        "the model diverged in training: retrain it with a lower learning rate (bnas-tf train: "
        "--set train_learning_rate=...) before converting",
    )
    got = tflite_outputs(buffer, x, num_threads=num_threads, output_name=output_name)
    if expected.shape != got.shape:
        raise ValueError(
            f"Keras output shape {expected.shape} differs from the flatbuffer's {got.shape}: "
            "the .tflite was not converted from this model"
        )
    check_finite(
        got,
        ".tflite",
        "Keras's are finite, so the conversion is broken: do not deploy this .tflite; check the model with "
        "`bnas-tf lint` and convert it again",
    )
    diff = np.abs(expected.astype(np.float64) - got.astype(np.float64))
    report = {
        "num_samples": int(len(x)),
        "output": output_name,
        "mode": mode,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }
    if mode == "embedding":
        return {**report, **embedding_agreement(expected, got)}
    report["top1_agreement"] = float(np.mean(expected.argmax(axis=-1) == got.argmax(axis=-1)))
    if y is not None:
        report["keras_accuracy"] = float(np.mean(expected.argmax(axis=-1) == y))
        report["tflite_accuracy"] = float(np.mean(got.argmax(axis=-1) == y))
    return report
