"""Read a .tflite flatbuffer: its operators and the names of its outputs.

Parsed with the TFLite schema bindings that ship with Larq Compute Engine
(``larq_compute_engine.mlir.python.tflite_schema``, the module LCE's own
converter utilities use), so LCE's custom ops (``LceBconv2d``,
``LceQuantize``, ...) are read as the custom codes they are, without an
interpreter and without registering kernels.
"""

from __future__ import annotations

import collections
import os

from larq_compute_engine.mlir.python import tflite_schema

# Bytes 4..8 of every TFLite flatbuffer.
FILE_IDENTIFIER = b"TFL3"
_BUILTIN_NAMES = {code: name for name, code in vars(tflite_schema.BuiltinOperator).items() if not name.startswith("_")}


def read(tflite) -> bytes:
    """The flatbuffer bytes of ``tflite``: bytes as returned by ``to_tflite``, or a path to a .tflite file."""
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        data = bytes(tflite)
    elif isinstance(tflite, (str, os.PathLike)):
        try:
            with open(tflite, "rb") as f:
                data = f.read()
        except OSError as error:
            raise OSError(f"cannot read {os.fspath(tflite)}: {error.strerror}") from None
    else:
        raise TypeError(f"expected .tflite bytes or a path to a .tflite file, got {type(tflite).__name__}")
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ValueError(
            "not a TFLite flatbuffer (no 'TFL3' identifier); pass the bytes returned by to_tflite or "
            "the path of a .tflite file"
        )
    return data


def _model(data: bytes):
    return tflite_schema.Model.GetRootAsModel(data, 0)


def _op_names(model) -> list:
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        # Codes above 127 only fit the newer int32 field (TFLite schema v3a).
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        names.append(custom.decode() if custom else _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    return names


def op_histogram(data: bytes) -> dict:
    """How many operators of each kind the flatbuffer runs, over all subgraphs, most frequent first."""
    model = _model(data)
    names = _op_names(model)
    counts = collections.Counter()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            counts[names[subgraph.Operators(o).OpcodeIndex()]] += 1
    return dict(counts.most_common())


def output_names(data: bytes) -> list:
    """Signature name of each output of the main subgraph, in interpreter order (None where unnamed).

    The converter orders outputs by its own rules (a model returning
    ``[logits, aux_logits]`` may come out either way); the signature keeps the
    Keras output names, which is how ``verify`` finds the one to compare.
    """
    model = _model(data)
    subgraph = model.Subgraphs(0)
    by_tensor = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        if signature.SubgraphIndex() != 0:
            continue
        for j in range(signature.OutputsLength()):
            output = signature.Outputs(j)
            by_tensor[output.TensorIndex()] = output.Name().decode()
    return [by_tensor.get(subgraph.Outputs(k)) for k in range(subgraph.OutputsLength())]
