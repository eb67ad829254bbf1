"""Masked SGD: the supernet's weight update that moves only the sampled paths (DESIGN ``supernet``: "update only
the path").

Zero gradients on unused branches still move weights under momentum and weight decay, so every op has a mask
(1: a sampled path uses it, 0: it only fills the layout or is inactive) that scales its gradient, learning rate,
weight decay and momentum: with mask 0 neither its weights nor their momentum buffers move, and
:meth:`MaskedSGD.set_active` hands back the BatchNorm statistics of the inactive ops for
:func:`restore_statistics`. The update itself is SGD with momentum and coupled weight decay after clipping the
global gradient norm (SPEC P1: momentum 0.9, weight decay 5e-4, lr 0.025 cosine to 0; PyTorch's form, as the
papers' code), one fused ``ResourceApplyMomentum`` per variable, an op's variables in one function shared by every
op of the same signature. Keras' own SGD builds ~25 graph ops per variable (STACK_NOTES "Measured by the
project"); here a variable costs 6.
"""

from __future__ import annotations

import math

import tensorflow as tf

from bnas_tf.space.shared_ops import NOINLINE, config_key, latent
from bnas_tf.space.supernet import KINDS, Supernet
from bnas_tf.tuners.replicas import local_copies


def cosine_learning_rate(base: float, progress: float, minimum: float = 0.0) -> float:
    """lr at ``progress`` in [0, 1] of a cosine schedule from ``base`` to ``minimum``."""
    progress = min(max(progress, 0.0), 1.0)
    return minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * progress))


def momentum_update(var, accumulator, grad, factor, lr, decay, momentum, constraint):
    """One variable's masked SGD step (see :meth:`MaskedSGD.apply`), then its constraint (None: none)."""
    tf.raw_ops.ResourceApplyMomentum(
        var=var.handle, accum=accumulator.handle, lr=lr, grad=grad * factor + decay * var, momentum=momentum
    )
    if constraint is not None:
        if isinstance(var, tf.distribute.DistributedValues):  # a replica writes its own copy (tuners.replicas)
            tf.raw_ops.AssignVariableOp(resource=var.handle, value=constraint(var))
        else:
            var.assign(constraint(var))


def restore_statistics(saved):
    """Put back the ``(variable, value)`` pairs :meth:`MaskedSGD.set_active` saved (under a strategy, one pair per
    replica's copy: BatchNorm statistics are each replica's own)."""
    for variable, value in saved:
        variable.assign(value)


class MaskedSGD:
    """SGD with momentum and coupled weight decay on a :class:`Supernet`'s weights, masked per op."""

    def __init__(self, supernet: Supernet, *, learning_rate, momentum, weight_decay, clip_norm):
        self.supernet = supernet
        self.learning_rate = tf.Variable(float(learning_rate), trainable=False, name="learning_rate")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.clip_norm = float(clip_norm)
        self.weights = supernet.all_weights()
        self.accumulators = {
            id(w): tf.Variable(tf.zeros_like(w), trainable=False, name="momentum") for w in self.weights
        }
        # 1 for variables the sampled paths use, 0 for the layout's filler ops: those stay exactly as they are
        # (one per op, shared by its variables; shared layers have none)
        self.op_masks = {}
        self.update_mask = {}
        for kind in KINDS:
            for edge in range(supernet.space.num_edges):
                for op in range(supernet.space.num_ops):
                    mask = tf.Variable(1.0, trainable=False, name="update_mask")
                    self.op_masks[(kind, edge, op)] = mask
                    for w in supernet.op_weights(kind, edge, op):
                        self.update_mask[id(w)] = mask
        # each op's update as one shared function per signature (bnas_tf.space.shared_ops' reasoning); off: inline
        self.share_updates = True
        self.updates = {}

    def apply(self, grads, variables):
        """SGD with momentum and coupled weight decay (PyTorch's form, as the papers' code) after clipping the
        global gradient norm, masked per variable: with mask 0 neither the weight nor its momentum buffer
        changes. Clip scale and mask are one factor per op, so a variable costs 6 graph ops (tf.clip_by_global_norm
        and a separate mask multiply made it 8: ~1,000 of the benchmark graph's 26,600 ops); an op's update is one
        call of a shared function (``share_updates``: the benchmark's training graph 12,022 -> 8,830 ops)."""
        pairs = [(var, grad) for var, grad in zip(variables, grads) if grad is not None]
        if not pairs:
            return
        norm = tf.sqrt(2.0 * tf.add_n([tf.nn.l2_loss(grad) for _, grad in pairs]))  # the global norm
        clip = self.clip_norm / tf.maximum(norm, self.clip_norm)
        # per op mask (None: shared layers): gradient factor, lr, weight decay and momentum, built once per graph
        groups = {}
        for var, grad in pairs:
            mask = self.update_mask.get(id(var))
            groups.setdefault(id(mask), (mask, []))[1].append((var, grad))
        for mask, members in groups.values():
            if mask is None or not self.share_updates:
                factors = self._factors(clip, self.learning_rate, mask)
                for var, grad in members:
                    momentum_update(var, self.accumulators[id(var)], grad, *factors, var.constraint)
            else:  # an op's variables: one shared function per op signature (see bnas_tf.space.shared_ops)
                variables = [var for var, _ in members]
                self._update_function(variables)(
                    clip,
                    self.learning_rate,
                    mask,
                    *[latent(v) for v in variables],
                    *[self.accumulators[id(v)] for v in variables],
                    *[grad for _, grad in members],
                )

    def _factors(self, clip, learning_rate, mask):
        """(gradient factor, lr, weight decay, momentum) of variables under ``mask`` (None: unmasked)."""
        if mask is None:
            return clip, learning_rate, self.weight_decay, self.momentum
        # filler chunks share BatchNorm batch statistics with the sampled ones, so their ops do get (small)
        # gradients: zero them; with decay 0 and momentum 1 neither weight nor buffer moves
        m = mask.read_value()
        return clip * m, learning_rate * m, self.weight_decay * m, self.momentum * m + (1.0 - m)

    def _update_function(self, variables):
        """The masked SGD update of one op's variables as a ``_noinline`` function shared by every op with the
        same weight shapes and constraints, its mask's factors computed inside: ~8 graph ops a variable and
        ~8 a mask become one call an op."""
        constraints = [var.constraint for var in variables]
        key = tuple((tuple(var.shape), type(c).__name__, config_key(c)) for var, c in zip(variables, constraints))
        if key not in self.updates:
            count = len(variables)

            def update(clip, learning_rate, mask, *arguments):
                factors = self._factors(clip, learning_rate, mask)
                for var, accumulator, grad, constraint in zip(
                    arguments[:count], arguments[count : 2 * count], arguments[2 * count :], constraints
                ):
                    momentum_update(var, accumulator, grad, *factors, constraint)

            self.updates[key] = tf.function(update, autograph=False, experimental_attributes=NOINLINE)
        return self.updates[key]

    def set_active(self, active: dict | None):
        """Only ops in ``active[kind][edge]`` (and the shared layers) are updated; None: every layout op.
        Returns the BatchNorm statistics of the inactive layout ops, for :func:`restore_statistics`."""
        layout = self.supernet.layout
        frozen = []
        for kind in KINDS:
            for edge, ops in enumerate(layout.candidates[kind]):
                for op in ops:
                    on = active is None or op in active[kind][edge]
                    self.op_masks[(kind, edge, op)].assign(1.0 if on else 0.0)
                    if not on:
                        frozen += [
                            v for layer in self.supernet.op_layers(kind, edge, op) for v in layer.non_trainable_weights
                        ]
        return [(copy, copy.numpy()) for v in frozen for copy in local_copies(v)]
