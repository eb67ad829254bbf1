"""The layer graph of a Keras model as LCE's converter sees it (for :mod:`bnas_tf.deploy.lce_profile`).

Every layer call the model's outputs depend on, in topological order, with
nested functional models flattened, and with identical weightless ops on the
same tensor merged as the converter's common-subexpression elimination
merges them: two ReLUs (or max pools) reading one tensor are one op, so
convs reading "both" read one tensor.
"""

from __future__ import annotations

import collections

import tensorflow as tf

from bnas_tf.deploy.layer_walk import is_graph_network
from bnas_tf.space.ops import Zero

__all__ = ["LayerGraph", "MERGEABLE", "layer_calls"]

# Weightless layers the converter merges when two of them read the same tensor with the same settings.
MERGEABLE = (
    tf.keras.layers.ReLU,
    tf.keras.layers.Activation,
    tf.keras.layers.MaxPool2D,
    tf.keras.layers.AveragePooling2D,
    tf.keras.layers.ZeroPadding2D,
    tf.keras.layers.Cropping2D,
    tf.keras.layers.GlobalAveragePooling2D,
    Zero,
)


def layer_calls(model) -> list:
    """``(name, layer, input ids, output ids)`` of every layer call the model's outputs depend on, inputs first.

    Nested functional models are flattened: their input and output tensors
    are aliased to the tensors they are called on and return. A layer called
    again gets `` (call N)`` after its name.
    """
    producer, alias = {}, {}

    def scan(container, prefix):
        for layer in container.layers:
            name = prefix + layer.name
            nodes = layer.inbound_nodes
            for index, node in enumerate(nodes):
                for tensor in tf.nest.flatten(node.outputs):
                    producer[id(tensor)] = (name if index == 0 else f"{name} (call {index + 1})", layer, node)
            if is_graph_network(layer):
                if len(nodes) != 1:
                    raise ValueError(
                        f"nested model {name!r} is called {len(nodes)} times; lce_profile flattens "
                        "nested models called once"
                    )
                for inner, outer in zip(layer.inputs, nodes[0].keras_inputs):
                    alias[id(inner)] = id(outer)
                for inner, outer in zip(layer.outputs, tf.nest.flatten(nodes[0].outputs)):
                    alias[id(outer)] = id(inner)
                scan(layer, name + "/")

    def resolve(tensor_id):
        while tensor_id in alias:
            tensor_id = alias[tensor_id]
        return tensor_id

    scan(model, "")
    calls, done, stack = [], set(), [(resolve(id(t)), False) for t in reversed(model.outputs)]
    while stack:  # iterative depth-first search: deep cell networks exceed Python's recursion limit
        tensor_id, expanded = stack.pop()
        if tensor_id not in producer or (expanded is False and producer[tensor_id][0] in done):
            continue
        name, layer, node = producer[tensor_id]
        inputs = [resolve(id(t)) for t in node.keras_inputs]
        if not expanded:
            stack.append((tensor_id, True))
            stack.extend((t, False) for t in reversed(inputs) if t in producer and producer[t][0] not in done)
        elif name not in done:
            done.add(name)
            calls.append((name, layer, inputs, [id(t) for t in tf.nest.flatten(node.outputs)]))
    return calls


class LayerGraph:
    """Producers and readers of every tensor, after merging identical weightless ops as the converter does."""

    def __init__(self, model):
        self.layers = collections.OrderedDict()  # call name -> layer, inputs first
        self.inputs, self.output = {}, {}  # call name -> canonical input ids / output id
        self.producer = {}  # canonical tensor id -> call name
        self.readers = collections.defaultdict(list)  # canonical tensor id -> call names (merged calls excluded)
        self.merged_into = {}  # call name -> the identical call it is merged with
        canonical, merge_keys = {}, {}
        for name, layer, inputs, outputs in layer_calls(model):
            ins = [canonical.get(t, t) for t in inputs]
            self.layers[name], self.inputs[name] = layer, ins
            key = self._merge_key(layer, ins)
            if key in merge_keys:
                self.merged_into[name] = merge_keys[key]
                self.output[name] = self.output[merge_keys[key]]
                canonical.update((t, self.output[name]) for t in outputs)
                continue
            if key is not None:
                merge_keys[key] = name
            self.producer.update((t, name) for t in outputs)
            self.output[name] = outputs[0] if outputs else None
            for tensor in dict.fromkeys(ins):
                self.readers[tensor].append(name)
        self.shared_dilated = {}  # call name -> its group of dilated convs sharing a SPACE_TO_BATCH_ND (lce_rules)

    @staticmethod
    def _merge_key(layer, inputs):
        if not isinstance(layer, MERGEABLE) or layer.weights:
            return None
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable")}
        return type(layer), repr(sorted(config.items())), tuple(inputs)

    def input_of(self, name):
        return self.inputs[name][0]

    def sole_reader(self, name):
        """The one call reading ``name``'s output, or None when several (or none) do."""
        readers = self.readers.get(self.output[name], [])
        return readers[0] if len(readers) == 1 else None

    def producer_of(self, name):
        """The call producing ``name``'s (first) input, or None for a model input."""
        return self.producer.get(self.input_of(name)) if self.inputs[name] else None
