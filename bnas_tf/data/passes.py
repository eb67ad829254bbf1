"""Training passes a resumed run reads in the same order: each pass is shuffled by (seed, key, pass), not by how
many iterators the process made before (DESIGN `data`).

A tf.data shuffle that reshuffles each iteration draws every pass's order from a generator that moves with each
iterator made in the process: pass n of a restarted process is pass 0 of the unbroken one, so a search resumed
after a crash trained its next trials on other batches than the unbroken search did. Here a pass's order (and its
augmentation draws) is a pure function of the part's seed, a *key* and the pass's number since the key was set:
the code that trains names its passes with :func:`start_passes`, by a key that is part of its saved state (a
supernet's trained epochs, a width candidate's gene), and a resumed search reads exactly the batches an unbroken
one read. Without a key (Keras' ``fit`` on a bundle), pass ``i`` since the part was made is keyed ``(0, i)``: a
seeded reshuffle each epoch.
"""

from __future__ import annotations

import weakref

import tensorflow as tf

#: Graph-level seed of the pass function (tf.data shuffles take it with the pass seed).
GRAPH_SEED = 1
#: Every training part's :class:`PassOrder` while the part is alive (the part's dataset holds it).
_ORDERS = weakref.WeakSet()


def start_passes(key: int) -> None:
    """From now on, the ``i``-th pass over any training part of a :class:`~bnas_tf.data.DataBundle` is shuffled,
    and augmented, by (its seed, ``key``, ``i``).

    A search calls it before each training epoch with a key from its saved state, so the epoch reads the same
    batches when the search is resumed in a new process.

    Args:
        key: an integer in [0, 2**63), e.g. the epochs the supernet has trained.
    """
    for order in list(_ORDERS):
        order.start(key)


class PassOrder:
    """Which shuffle a training part's next pass takes: the key last set and the passes read since."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        with tf.device("/cpu:0"):
            self.position = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="pass_position")
        _ORDERS.add(self)

    def start(self, key: int):
        self.position.assign([int(key), 0])

    def next_pass_seed(self) -> tf.Tensor:
        """Count a new pass and return its shuffle seed (an int64 scalar; runs inside the pass's dataset function)."""
        key, passes = tf.unstack(self.position.assign_add(tf.constant([0, 1], tf.int64)))
        return pass_seed(self.seed, key, passes - 1)


def pass_seed(seed, key, index) -> tf.Tensor:
    """The int64 seed of pass ``index`` after key ``key`` of a part seeded ``seed`` (stateless)."""
    mixed = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), key]), index)
    return tf.random.stateless_uniform([], seed=mixed, minval=None, maxval=None, dtype=tf.int64)


def example_seed(seed, index) -> tf.Tensor:
    """The int64 seed of the ``index``-th example of the pass seeded ``seed`` (its augmentation draws)."""
    return tf.random.stateless_uniform([], seed=tf.stack([seed, index]), minval=None, maxval=None, dtype=tf.int64)


def shuffled_passes(examples: tf.data.Dataset, size: int, buffer_size: int, seed: int, *, seeds: bool = False):
    """``examples`` (``size`` of them) reshuffled each pass with a ``buffer_size`` window, pass ``i`` after
    :func:`start_passes` ``(key)`` by (``seed``, key, ``i``). With ``seeds``, elements are ``(example, seed)``: an
    int64 seed per example for its augmentation, from the same three numbers and its place in the pass."""
    order = PassOrder(seed)

    def one_pass(_):
        # the shuffle's second seed is this graph's: fixed here, so the order depends on the pass seed alone, not
        # on the process's global seed when the part was made (a global seed 0 also fails with a tensor seed)
        tf.compat.v1.set_random_seed(GRAPH_SEED)
        shuffle_seed = order.next_pass_seed()
        shuffled = examples.shuffle(buffer_size, seed=shuffle_seed, reshuffle_each_iteration=False)
        if not seeds:
            return shuffled
        return shuffled.enumerate().map(lambda index, example: (example, example_seed(shuffle_seed, index)))

    passes = tf.data.Dataset.from_tensors(0).flat_map(one_pass)
    passes = passes.apply(tf.data.experimental.assert_cardinality(size))
    passes.pass_order = order  # alive as long as the dataset and every dataset made from it
    return passes
