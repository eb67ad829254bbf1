"""Each op signature traced once: a supernet's ops as shared ``_noinline`` functions.

A supernet's graph repeats the same op (same layers and configs, same input shape) on every edge of a
cell kind, each copy with its own weights. Written inline, every copy is traced op by op and
instantiated again. Called as one ``tf.function`` with the op's variables as arguments, a signature is
traced once and, marked ``_noinline``, instantiated once: for a chain of 120 binary conv blocks with
Grappler off (as the supernet runs) that cut the training graph's trace and first calls by 60%
(``benchmarks/graph_build_cost.py``). With Grappler on, every call site would re-optimise its function.

The function runs a *template* op (the first op of the signature) with its layers' variable
attributes bound to the arguments while it is traced, so it computes exactly what the op's own Keras
and Larq layers compute. Ops stay inline when sharing cannot be exact: ops without weights (pools,
identity, zero: nothing to share), ops whose layers add losses (PCNN's amplitude loss would be a
tensor of the inner function), and ops whose weights are not all plain attributes of their layers.

Two more kinds of shared function:

* In an α step an op's function differentiates only its input (:func:`input_gradient_only`): the
  backward of a ``_noinline`` function computes every argument's gradient, and the kernels' are what
  the α tape pruned when the α step had inline ops.
* A supernet edge's routing (the rows each candidate op reads) and mixture (the weighted outputs put
  back in their rows) are functions per signature too (:meth:`SharedOps.edge_function`), called beside
  the ops' functions. Around them, nesting the op calls inside an edge function, every α step took 40-50%
  longer, as measured on the overhead benchmark's space.
"""

from __future__ import annotations

import json

import tensorflow as tf
from larq.quantized_variable import QuantizedVariable

NOINLINE = {"_noinline": True}


def latent(weight):
    """What a weight is passed to a shared function as: Larq's QuantizedVariable traces as itself (one trace per
    variable), so its latent variable goes in (an op's function wraps it again with the same quantizer, see
    ``_bound``; an update reads and writes the float weights either way)."""
    return weight.latent_variable if isinstance(weight, QuantizedVariable) else weight


def _bound(original, argument):
    """``argument`` in the role of the template's ``original`` weight."""
    if isinstance(original, QuantizedVariable):
        return QuantizedVariable.from_variable(argument, original.quantizer, original.precision)
    return argument


def _without_names(config):
    """A layer config without its (and its nested quantizers') names: two edges' identical ops differ only there."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def config_key(obj) -> str:
    """A layer's (or constraint's) config as a key of the shared functions, names left out."""
    config = obj.get_config() if hasattr(obj, "get_config") else {}
    return json.dumps(_without_names(config), sort_keys=True, default=str)


def signature(op, x, training):
    """What a shared function depends on: the op, its layers' configs, its weights' shapes, the input."""
    return (
        op.op_name,
        tuple((type(layer).__name__, config_key(layer)) for layer in op.layers),
        tuple(tuple(w.shape) for w in op.weights),
        tuple(x.shape[1:]),
        x.dtype.name,
        training,
    )


def bindings(op):
    """``(object, attribute, weight index)`` for every attribute of the op's layers (and their sublayers, such
    as Larq quantizers) that holds one of its weights; None if some weight is not held that way."""
    index = {id(w): i for i, w in enumerate(op.weights)}
    out, found = [], set()
    for layer in op.layers:
        for owner in layer._flatten_layers(include_self=True):
            for name, value in vars(owner).items():
                if id(value) in index:
                    out.append((owner, name, index[id(value)]))
                    found.add(index[id(value)])
    return out if len(found) == len(index) else None


def input_gradient_only(template, x, training):
    """``template(x, training)`` whose gradient is its input's alone: the backward of a ``_noinline`` function
    computes every argument's gradient (nothing prunes it), and an α step needs none of the weights'."""

    @tf.custom_gradient
    def forward(inputs):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            outputs = template(inputs, training)

        def backward(upstream, variables=()):
            return tape.gradient(outputs, inputs, output_gradients=upstream), [None] * len(variables)

        return outputs, backward

    return forward(x)


class SharedOps:
    """Calls ops, and the routing and mixture of supernet edges, through one ``_noinline`` tf.function per
    signature while a graph is traced. With ``alpha_gradients`` (an α step, :meth:`Supernet.alpha_gradient_ops`)
    an op's backward computes only the gradient of its input and an edge's mixture passes α theirs (functions of
    their own); otherwise the mixture weights get no gradient (a weight step does not differentiate α)."""

    def __init__(self):
        self._functions = {}
        self.inline = set()  # ids of ops that must stay inline (their layers add losses)
        self.alpha_gradients = False

    def __call__(self, op, x, training):
        if not op.weights or id(op) in self.inline or not tf.inside_function():
            return op(x, training)
        key = signature(op, x, training) + (self.alpha_gradients,)
        if key not in self._functions:
            self._functions[key] = self._op_function(op, training, self.alpha_gradients)
        function = self._functions[key]
        return op(x, training) if function is None else function(x, *[latent(w) for w in op.weights])

    def edge_function(self, key, body):
        """The shared function ``body`` of an edge part with signature ``key`` (it holds whatever ``body``
        depends on: the routing is the same in every step, the mixture differs in α steps)."""
        key = ("edge",) + tuple(key)
        if key not in self._functions:
            self._functions[key] = tf.function(body, autograph=False, experimental_attributes=NOINLINE)
        return self._functions[key]

    @staticmethod
    def _op_function(template, training, input_gradients=False):
        bound = bindings(template)
        if bound is None:
            return None

        def shared_op(x, *weights):
            saved = [(owner, name, getattr(owner, name)) for owner, name, _ in bound]
            try:
                for (owner, name, i), (_, _, original) in zip(bound, saved):
                    object.__setattr__(owner, name, _bound(original, weights[i]))
                return input_gradient_only(template, x, training) if input_gradients else template(x, training)
            finally:
                for owner, name, value in saved:
                    object.__setattr__(owner, name, value)

        return tf.function(shared_op, autograph=False, experimental_attributes=NOINLINE)
