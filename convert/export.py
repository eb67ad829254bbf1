"""Keras (Larq) model to .tflite flatbuffer through Larq Compute Engine's converter."""

from __future__ import annotations

import os
import tempfile

import larq_compute_engine as lce
import tensorflow as tf

from bnas_tf.deploy.convertibility import check_convertible, has_binary_input
from bnas_tf.deploy.layer_walk import leaf_layers
from bnas_tf.files import atomic_write_bytes

WEIGHT_FORMATS = ("float", "int8")


def check_output_path(path) -> str:
    """Fail before a long conversion when ``path`` cannot be written; returns it as a string."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"output path {path} is a directory; give a file name such as {os.path.join(path, 'model.tflite')}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OSError(f"cannot write {path}: {existing} is a file, not a folder; choose another output path")
    try:  # os.access says yes to root even on a read-only mount: try it
        probe, probe_path = tempfile.mkstemp(prefix=".tmp-", dir=existing)
        os.close(probe)
        os.unlink(probe_path)
    except OSError as error:
        raise OSError(
            f"cannot write {path}: folder {existing} is not writable ({error.strerror}); "
            "choose a writable output folder"
        ) from None
    return path


def to_tflite(
    model: tf.keras.Model,
    path: str | os.PathLike | None = None,
    *,
    inference_input_type: tf.DType = tf.float32,
    inference_output_type: tf.DType = tf.float32,
    target: str = "arm",
    experimental_default_int8_range: tuple[float, float] | None = None,
    weights: str = "float",
) -> bytes:
    """Convert ``model`` to a TFLite flatbuffer with Larq Compute Engine; write it to ``path`` if given.

    Binary convolutions (sign input quantizer + binary kernel, the W1/A1
    blocks of bnas_tf) become ``LceBconv2d`` kernels with 1-bit packed
    weights and BatchNorm folded in; everything else stays a TFLite float op.
    W1/A32 networks have no binary activations, so LCE emits float ``CONV_2D``
    ops and a float-sized file (STACK_NOTES). ``weights="int8"`` stores
    their weights as int8 instead, through TFLite's dynamic-range (weight-only)
    quantization. That is 4x smaller, and per output channel the ±scale
    binary kernels are represented exactly. Activations are quantized on the
    fly, so logits move a little: on a digits W1/A32 net, top-1 agreement
    was 99.6% and max |diff| 0.05. It is refused for networks with binary
    activations, whose binary weights LCE already packs to 1 bit.

    The model is checked first (:func:`bnas_tf.convert.check_convertible`):
    a layer LCE cannot convert faithfully raises a ValueError naming it.
    The file is written atomically (temporary file, then rename), so a failed
    conversion never leaves half a .tflite behind.

    Args:
        model: built functional/Sequential Keras model with fixed input size.
        path: optional output file (default None: nothing is written).
        inference_input_type, inference_output_type: ``tf.float32`` (default) or
            ``tf.int8`` (int8 only applies to models quantized with
            ``experimental_default_int8_range``).
        target: ``"arm"`` (Raspberry Pi, Android; aarch64/ARMv7; default) or ``"xcore"``.
        experimental_default_int8_range: ``(min, max)`` fallback range for
            "dummy" int8 quantization of every float tensor; latency
            experiments only (accuracy is not preserved). Default None.
        weights: ``"float"`` (default) or ``"int8"`` (W1/A32 and float nets).

    Returns:
        The flatbuffer bytes.

    Raises:
        TypeError: ``model`` is not a ``tf.keras.Model``.
        ValueError: an unknown ``weights``; a layer LCE cannot convert faithfully (named); ``path`` is a
            directory; ``weights="int8"`` on a network with binary activations, with int8 inputs or
            outputs, a default int8 range or a target other than ``"arm"``; or the converter failed.
        OSError: ``path``'s folder cannot be written.

    Example:
        ```python
        model = bnas_tf.build_network(genotype, binarization="W1/A1")
        ...  # train
        flatbuffer = to_tflite(model, "model.tflite")
        ```
    """
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHT_FORMATS))} (got {weights!r})")
    if path is not None:
        path = check_output_path(path)
    check_convertible(model)
    if weights == "int8":
        data = _int8_weights(
            model, inference_input_type, inference_output_type, target, experimental_default_int8_range
        )
    else:
        try:
            data = lce.convert_keras_model(
                model,
                inference_input_type=inference_input_type,
                inference_output_type=inference_output_type,
                target=target,
                experimental_default_int8_range=experimental_default_int8_range,
            )
        except ValueError:
            raise  # LCE's own option checks, already readable
        except Exception as error:  # the MLIR converter raises bare RuntimeErrors / ConverterErrors
            raise ValueError(f"Larq Compute Engine could not convert model {model.name!r}: {error}") from error
    if path is not None:
        atomic_write_bytes(path, data)
    return data


def _int8_weights(model, inference_input_type, inference_output_type, target, default_range) -> bytes:
    binary_layers = [name for name, layer in leaf_layers(model) if has_binary_input(layer)]
    if binary_layers:
        raise ValueError(
            f"weights='int8' is for networks without binary activations (W1/A32 or float); layer "
            f"{binary_layers[0]!r} binarizes its input, and LCE already stores such layers' weights in 1 bit: "
            "use weights='float'"
        )
    if inference_input_type != tf.float32 or inference_output_type != tf.float32 or default_range is not None:
        raise ValueError(
            "weights='int8' keeps float inputs and outputs; drop inference_input_type, "
            "inference_output_type and experimental_default_int8_range"
        )
    if target != "arm":
        raise ValueError(f"weights='int8' produces plain TFLite ops for target 'arm' (got target={target!r})")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative dataset: weight-only int8
    try:
        return converter.convert()
    except Exception as error:
        raise ValueError(f"TFLite could not convert model {model.name!r} with int8 weights: {error}") from error


def float_tflite(model) -> bytes:
    """The same Keras model through the plain TFLite converter (no LCE kernels): the comparison baseline.

    Binary layers compute sign() and a float convolution on ±1 values, so the
    numbers are the same as LCE's, the kernels are not.
    """
    check_convertible(model)
    try:
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()
    except Exception as error:
        raise ValueError(f"TFLite could not convert model {model.name!r}: {error}") from error
