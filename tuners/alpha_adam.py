"""Adam on the architecture parameters α, the α step of mixed mode (SPEC P2: DARTS' bilevel optimisation, used
first-order: one α step on an architecture batch, then one weight step on a weights batch).

The update is one fused ``ResourceApplyAdam`` per α on a Keras Adam's own slots and step count (what checkpoints
hold), the same update as its ``apply_gradients``: that one builds ~17 graph ops an α. Under a ``tf.distribute``
strategy each replica applies the all-reduced gradient to its own copy of α and the slots
(:mod:`~bnas_tf.tuners.replicas`).
"""

from __future__ import annotations

import tensorflow as tf


def alpha_optimizer(learning_rate: float, alphas) -> tf.keras.optimizers.Adam:
    """The Keras Adam of ``alphas`` (β1 = 0.5, β2 = 0.999, as DARTS), its slots built."""
    optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)
    optimizer.build(alphas)
    return optimizer


def apply_alpha_adam(optimizer: tf.keras.optimizers.Adam, grads, alphas):
    """``optimizer``'s Adam step on ``alphas`` with one fused ``ResourceApplyAdam`` each; α with no gradient
    (None) do not move."""
    step = tf.cast(optimizer.iterations + 1, tf.float32)
    beta_1, beta_2 = float(optimizer.beta_1), float(optimizer.beta_2)
    powers = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step))
    for grad, alpha in zip(grads, alphas):
        if grad is None:  # an edge with one candidate: softmax over one op is constant
            continue
        index = optimizer._index_dict[optimizer._var_key(alpha)]  # Keras 2.15's slot lookup (pinned)
        tf.raw_ops.ResourceApplyAdam(
            var=alpha.handle,
            m=optimizer._momentums[index].handle,
            v=optimizer._velocities[index].handle,
            lr=optimizer.learning_rate,
            beta1=beta_1,
            beta2=beta_2,
            epsilon=float(optimizer.epsilon),
            grad=grad,
            **powers,
        )
    if (
        isinstance(optimizer.iterations, tf.distribute.DistributedValues)
        and not tf.distribute.in_cross_replica_context()
    ):
        # a replica cannot write a mirrored count on its own: the step is counted once, for every replica
        tf.distribute.get_replica_context().merge_call(lambda _: optimizer.iterations.assign_add(1))
    else:
        optimizer.iterations.assign_add(1)
