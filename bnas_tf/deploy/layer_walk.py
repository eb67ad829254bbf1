"""The one walk over a Keras model's layers that costing, LCE checks and export share.

A functional or Sequential model nested in another is a graph network: its
layers, called on Keras tensors, are its whole computation, with known
shapes, so the walk looks inside it. Anything else is a leaf, also a
subclassed model or a custom layer holding sublayers: what its ``call``
does with them is Python Keras does not record, so :func:`bnas_tf.deploy.costs.profile`
counts its weights and refuses hidden convolutions by name, and
:func:`bnas_tf.deploy.convertibility.check_convertible` judges it as one layer.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["is_graph_network", "leaf_layers"]


def is_graph_network(layer) -> bool:
    """True for a functional or built Sequential model: its layers are the whole computation."""
    return isinstance(layer, tf.keras.Model) and bool(getattr(layer, "inputs", None))


def leaf_layers(model: tf.keras.Model, prefix: str = ""):
    """Yield ``(path name, layer)`` for every layer of ``model``, depth first, looking inside nested graph networks.

    Example:
        A model holding a nested functional model ``"op"`` with a conv ``"conv"``
        yields ``("op/conv", conv)`` (and the nested model's input layer), never ``"op"`` itself.
    """
    for layer in model.layers:
        name = prefix + layer.name
        if is_graph_network(layer):
            yield from leaf_layers(layer, name + "/")
        else:
            yield name, layer
