"""What Larq Compute Engine will run as binary, before anyone trains or converts.

:func:`lce_profile` predicts, layer by layer, what LCE 0.16's converter
makes of a Keras (Larq) model: a binary kernel (``LceBconv2d``), a float
TFLite op, or a refusal (``bnas_tf.convert.check_convertible``), each with the
reason. The rules are the ones measured on our stack (STACK_NOTES "Larq
Compute Engine", README "Deploy", tests/convert/test_lce_behaviour.py):

- a ``QuantConv2D`` with a sign-like input quantizer (``LCE_INPUT_QUANTIZERS``)
  and a 1-bit kernel becomes ``LceBconv2d``, with the BatchNorm after it
  folded into its output multiplier and bias; a max pool whose every reader
  is such a conv pools the packed bits (``LceBMaxPool2d``);
- depthwise convs, W1/A32 convs (no input quantizer), DoReFa activations and
  dense layers stay float (``DEPTHWISE_CONV_2D``, ``CONV_2D``,
  ``FULLY_CONNECTED``);
- dilated convs with the same kernel size and dilation reading the same
  tensor share one ``SPACE_TO_BATCH_ND``; binary ones then become float
  ``CONV_2D`` (after ``LceDequantize`` and ``PADV2``), and each keeps a
  ``BATCH_TO_SPACE_ND``;
- the converter merges identical weightless ops on the same tensor (CSE),
  and fuses a ReLU into the conv, dense or add before it when it is that
  op's only reader.

Costs: accelerated binary MACs are counted as LCE's kernels execute them,
input channels padded to 32 and output channels to 8
(:func:`bnas_tf.deploy.costs.lce_conv_macs`); every other MAC of a conv or dense layer
is a float MAC. The flatbuffer size is modelled from the weights
(:func:`flatbuffer_size`).

:mod:`bnas_tf.deploy.lce_graph` walks the layer graph as the converter sees it;
:mod:`bnas_tf.deploy.lce_rules` holds the per-layer rules. ``bnas-tf lint`` prints
the profile as a table (:mod:`bnas_tf.pipeline.lint`).
"""

from __future__ import annotations

import collections

import tensorflow as tf

from bnas_tf.deploy import costs, lce_rules
from bnas_tf.deploy.cost_names import COSTS  # noqa: F401  (the entries a search can weigh)
from bnas_tf.deploy.lce_graph import LayerGraph
from bnas_tf.deploy.lce_rules import (  # noqa: F401  (the kinds and kernel ops are part of the profile's vocabulary)
    BINARY,
    FLOAT,
    FLOAT_BYTES,
    FOLDED,
    KERNEL_OPS,
    REJECTED,
    bconv_weight_bytes,
)

# Size model (flatbuffer_size): bytes per op, per constant tensor and per file on top of the constants' bytes,
# fitted by least squares on relative error over 36 conversions: 18 random networks (both cell op sets in W1/A1
# and W1/A32 with 2-3 cells and 8-16 channels, VGG-small and ResNet-18 width genes; 16x16x1 inputs, seeds 1000+,
# disjoint from the tests'), each untrained and after 3 training steps. Fit error: max 1.75%, mean 0.42%.
# Refit with `python tests/lce/fit_size_model.py`.
SIZE_BYTES_PER_OP = 185
SIZE_BYTES_PER_CONSTANT = 85
SIZE_BASE_BYTES = 1474

# --------------------------------------------------------------------------
# Pure formulas.


def flatbuffer_size(weight_bytes: int, num_ops: int, num_constants: int) -> int:
    """Expected .tflite size: the constants' bytes plus a fitted overhead per op, per constant and per file.

    size = weight_bytes + 185 * ops + 85 * constants + 1474

    The per-op bytes pay for the operator table, its options and its output
    tensor (shape, name); the per-constant bytes for the constant's tensor
    entry, buffer table and 16-byte alignment. The three numbers are a
    least-squares fit on converted networks (``SIZE_*`` in this module);
    names are not modelled, so very long layer names add a little.

    >>> flatbuffer_size(weight_bytes=10_000, num_ops=100, num_constants=40)
    33374
    """
    return int(weight_bytes + SIZE_BYTES_PER_OP * num_ops + SIZE_BYTES_PER_CONSTANT * num_constants + SIZE_BASE_BYTES)


# --------------------------------------------------------------------------
# The profile.


def _row(name, layer, entry, cost, stored):
    """One layer's row; ``stored`` holds the keys of constants already counted (equal constants are stored once)."""
    macs = int(cost.get("macs", 0))
    binary = entry["ops"].count("LceBconv2d") > 0
    weight_bytes = constants = 0
    for nbytes, key in entry["constants"]:
        if key not in stored:
            stored.add(key)
            weight_bytes, constants = weight_bytes + nbytes, constants + 1
    return {
        "name": name,
        "type": type(layer).__name__,
        "kind": entry["kind"],
        "reason": entry["reason"],
        "ops": entry["ops"],
        "macs": macs,
        "binary_macs": int(cost.get("lce_macs", 0)) if binary else 0,
        "unpadded_binary_macs": macs if binary else 0,
        "float_macs": 0 if binary else macs,
        "fallback_macs": macs if not binary and lce_rules.binary_in_keras(layer) else 0,
        "weight_bytes": weight_bytes,
        "constants": constants,
    }


def lce_profile(model: tf.keras.Model) -> dict:
    """What LCE 0.16 makes of ``model``, per layer and in total, without converting it.

    The same numbers ``bnas-tf lint`` prints, and the costs a
    :class:`~bnas_tf.tuners.DeploymentObjective` reads.

    Args:
        model: a built Keras (Larq) model.

    Returns:
        A dict with

        - ``layers``: one dict per layer call (model inputs excluded): ``name``,
          ``type``, ``kind`` (``"binary"``: an LCE binary kernel; ``"float"``: float
          TFLite ops; ``"rejected"``: ``bnas_tf.convert.to_tflite`` refuses it;
          ``"folded"``: no op of its own, e.g. a BatchNorm folded into its conv),
          ``reason``, ``ops`` (the TFLite ops it becomes), ``macs``,
          ``binary_macs`` (accelerated, with LCE's channel padding),
          ``unpadded_binary_macs``, ``float_macs``, ``fallback_macs``,
          ``weight_bytes`` and ``constants`` (constant tensors it adds);
        - ``binary_macs``: accelerated binary MACs, input channels padded to 32
          and output channels to 8 (:func:`bnas_tf.deploy.costs.lce_conv_macs`);
          ``unpadded_binary_macs``: the same layers' plain MACs;
        - ``float_macs``: MACs of every conv and dense layer LCE runs in float,
          and ``fallback_macs``: the part of them from layers with a 1-bit kernel
          or input in Keras (W1/A32 convs, depthwise, DoReFa, shared dilated);
        - ``ops``: predicted counts of ``LceBconv2d``, ``CONV_2D``,
          ``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED`` (matched exactly on
          bnas-tf's networks, tests/lce); ``all_ops``: every predicted op (an
          estimate) and their total ``num_ops``;
        - ``weight_bytes``, ``num_constants`` and ``size_bytes``: the constants'
          bytes (equal constants stored once, as the converter does), their
          number, and the expected .tflite size (:func:`flatbuffer_size`);
        - ``rejected``: names of the layers ``to_tflite`` refuses (the model does
          not convert unless it is empty), ``binary_params``, ``float_params``.

    Example:
        ```python
        report = lce_profile(bnas_tf.build_network(genotype, binarization="W1/A1"))
        print(report["ops"], report["binary_macs"], report["size_bytes"])
        ```

    Raises:
        TypeError: ``model`` is not a Keras model.
        ValueError: the model is not built, or has a layer whose MACs cannot
            be counted (see :func:`bnas_tf.deploy.costs.profile`).
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"lce_profile expects a tf.keras.Model, got {type(model).__name__}")
    cost = costs.profile(model)  # validates the model and counts MACs
    cost_of = {row["name"]: row for row in cost["layers"]}
    graph = LayerGraph(model)
    entries = lce_rules.classify(graph)
    stored = set()
    rows = [
        _row(name, layer, entries[name], cost_of.get(name, {}), stored)
        for name, layer in graph.layers.items()
        if not isinstance(layer, tf.keras.layers.InputLayer)
    ]
    all_ops = collections.Counter(op for row in rows for op in row["ops"])
    totals = {
        key: sum(row[key] for row in rows)
        for key in ("binary_macs", "unpadded_binary_macs", "float_macs", "fallback_macs", "weight_bytes", "constants")
    }
    num_ops = sum(all_ops.values())
    return {
        "layers": rows,
        "binary_macs": totals["binary_macs"],
        "unpadded_binary_macs": totals["unpadded_binary_macs"],
        "float_macs": totals["float_macs"],
        "fallback_macs": totals["fallback_macs"],
        "ops": {op: all_ops.get(op, 0) for op in KERNEL_OPS},
        "all_ops": dict(all_ops.most_common()),
        "num_ops": num_ops,
        "weight_bytes": totals["weight_bytes"],
        "num_constants": totals["constants"],
        "size_bytes": flatbuffer_size(totals["weight_bytes"], num_ops, totals["constants"]),
        "rejected": [row["name"] for row in rows if row["kind"] == REJECTED],
        "binary_params": cost["binary_params"],
        "float_params": cost["float_params"],
    }
