"""Data-parallel supernet steps on a ``tf.distribute`` strategy: every replica takes its share of each path's chunk.

A path-mode batch is laid out ``[path 0's chunk | path 1's chunk | ...]`` (:meth:`Supernet.by_path
<bnas_tf.space.supernet.Supernet.by_path>`). Under a strategy of R replicas each replica gets, of every path's
chunk, its own consecutive ``chunk / R`` rows, so its batch keeps the same path layout (:func:`replica_rows`);
mixed mode is one path. The global batch is the recipe's batch (the papers' batch sizes are global: each
replica trains on batch / R rows of each path).

In a replica, a step's objective is the single-device one on its rows divided by R (each path's mean over
``chunk / R`` rows, over R, is its share of the mean over the global chunk; the layers' extra losses and α's
regularisers are the same in every replica). The gradients are then summed over the replicas (all-reduce SUM):
the single-device gradient, which every replica applies with the same fused masked update to its own copy of
the weights. A sum over samples (P4's class-centre term) is not divided: each replica adds its rows' whole
term, measured from the global batch's class centres (all-reduced sums and counts). Counts and losses are
summed over the replicas too. Evaluation pads each path's chunk up to a multiple of R with rows labelled -1, which no
prediction matches, so the counts stay exact.

:class:`SingleDevice` is the same interface with no strategy: it adds nothing to the traced graphs.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import tensorflow as tf

#: Label of a padding row of a sharded evaluation: no class index equals it, so it never counts as correct.
PADDING_LABEL = -1
#: Rows a replica trains on at least: BatchNorm needs two (see bnas_tf.tuners.batches.trainable_batch).
MIN_REPLICA_ROWS = 2


def replica_rows(rows: int, paths: int, replicas: int) -> np.ndarray:
    """Row indices of each replica's share of a batch of ``paths`` equal chunks, an array (replicas, rows /
    replicas): replica ``r`` takes rows ``[r·c/R, (r+1)·c/R)`` of every path's chunk of ``c = rows / paths`` rows,
    path after path, so its batch has the same layout with ``c / R`` rows a path.

    >>> replica_rows(8, 2, 2).tolist()
    [[0, 1, 4, 5], [2, 3, 6, 7]]
    """
    chunk = rows // paths
    if chunk * paths != rows or chunk % replicas:
        raise ValueError(
            f"a batch of {rows} rows in {paths} path chunks of {rows / paths:g} rows cannot be split evenly over "
            f"{replicas} replicas: use a batch size (rows a path) that is a multiple of {replicas}"
        )
    local = chunk // replicas
    return np.arange(rows).reshape(paths, replicas, local).transpose(1, 0, 2).reshape(replicas, paths * local)


def padded_replica_rows(rows: int, paths: int, replicas: int) -> np.ndarray:
    """:func:`replica_rows` of the batch with every path's chunk padded up to a multiple of ``replicas`` rows; a
    padding row is index -1 (the last replicas' shares end with them).

    >>> padded_replica_rows(6, 2, 2).tolist()
    [[0, 1, 3, 4], [2, -1, 5, -1]]
    """
    chunk = rows // paths
    padded = math.ceil(chunk / replicas) * replicas
    index = np.full((paths, padded), -1)
    index[:, :chunk] = np.arange(paths * chunk).reshape(paths, chunk)
    local = padded // replicas
    return index.reshape(paths, replicas, local).transpose(1, 0, 2).reshape(replicas, paths * local)


def trimmed_rows(rows: int, replicas: int) -> int:
    """The rows of a one-path (mixed-mode) batch a step trains on: the largest multiple of ``replicas`` (an
    epoch's last, smaller batch may leave up to ``replicas - 1`` rows out)."""
    return rows - rows % replicas


def check_batch(rows: int, replicas: int, what: str) -> int:
    """``rows`` if a batch (a path's chunk) of that many rows splits evenly over ``replicas`` with at least
    :data:`MIN_REPLICA_ROWS` rows each; else a ValueError naming the numbers and the fix."""
    if rows % replicas or rows // replicas < MIN_REPLICA_ROWS:
        fit = max(math.ceil(rows / replicas), MIN_REPLICA_ROWS) * replicas
        raise ValueError(
            f"{what} has batches of {rows} rows, which do not split over the strategy's {replicas} replicas "
            f"into equal shares of at least {MIN_REPLICA_ROWS} rows (each sampled path trains on its own batch, "
            f"split evenly over the replicas); batch the data with batch_size a multiple of {replicas}, "
            f"e.g. {fit}"
        )
    return rows


def without_small_batches(dataset, replicas: int):
    """``dataset`` (of (images, labels) batches) without the batches too small to give each of ``replicas``
    :data:`MIN_REPLICA_ROWS` rows: an epoch's last, ragged batch (the search checks the first batch before
    training)."""
    least = MIN_REPLICA_ROWS * replicas
    return dataset.filter(lambda x, y: tf.shape(y)[0] >= least)


class SingleDevice:
    """No strategy: the steps are traced as they are and called with the whole batch."""

    count = 1
    strategy = None

    @staticmethod
    def scope():
        return contextlib.nullcontext()

    @staticmethod
    def share(loss):
        return loss

    @staticmethod
    def all_reduce(grads):
        return grads

    @staticmethod
    def trained_rows(rows):
        return rows

    @staticmethod
    def trainable(dataset):
        return dataset

    @staticmethod
    def function(step, signature, paths, *, evaluation=False):
        return tf.function(step, autograph=False, input_signature=signature)


class Replicas:
    """A strategy's replicas running a supernet's steps, each on its share of every path's chunk (module doc)."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.count = int(strategy.num_replicas_in_sync)

    def scope(self):
        """Variables created inside are the strategy's (mirrored on every replica)."""
        return self.strategy.scope()

    def share(self, loss):
        """A replica's share of the global objective: its single-device form over its rows, divided by R."""
        return loss / self.count

    @staticmethod
    def all_reduce(grads):
        """The gradients summed over the replicas (None stays None): the single-device gradient of the
        objective :meth:`share` splits."""
        present = [tf.convert_to_tensor(grad) for grad in grads if grad is not None]
        summed = iter(tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, present))
        return [None if grad is None else next(summed) for grad in grads]

    def trainable(self, dataset):
        """``dataset`` without the batches too small for the replicas (:func:`without_small_batches`)."""
        return without_small_batches(dataset, self.count)

    def trained_rows(self, rows):
        """Rows a mixed-mode step trains on of a batch of ``rows`` (:func:`trimmed_rows`)."""
        return trimmed_rows(rows, self.count)

    @staticmethod
    def class_centres(features, groups, count):
        """The mean features of each of ``count`` groups (a path's class) over every replica's rows: the
        global batch's class centres of P4's kernel-level loss (constants: offsets from a mean sum to zero)."""
        flat = tf.reshape(features, [tf.shape(features)[0], -1])
        sums = tf.math.unsorted_segment_sum(flat, groups, count)
        sizes = tf.math.unsorted_segment_sum(tf.ones_like(groups, flat.dtype), groups, count)
        sums, sizes = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, [sums, sizes])
        return tf.stop_gradient(sums / tf.maximum(sizes, 1.0)[:, None])

    def function(self, step, signature, paths, *, evaluation=False):
        """``step(x, y)`` run on every replica with its rows of the batch (``paths()`` path chunks), its outputs
        summed over the replicas. Called with the global batch (arrays or tensors). ``evaluation`` pads each
        path's chunk to a multiple of R (rows labelled :data:`PADDING_LABEL`); training splits it evenly, one
        path (mixed mode) trimmed to a multiple of R.

        Every replica is handed the global batch and the table of each replica's rows (:func:`replica_rows`) and
        gathers its own: the traced function has the single-device signature (any batch size, one trace per
        layout), where values distributed per replica would be traced again for every new batch size."""
        count = self.count
        table = tf.TensorSpec((count, None), tf.int32)
        # a partial, not a closure: TensorFlow counts the traces of closures sharing one code object together and
        # warns of retracing when the three steps of a few layouts add up
        traced = tf.function(
            functools.partial(_run_on_replicas, self.strategy, step),
            autograph=False,
            input_signature=list(signature) + [table],
        )

        def call(x, y):
            x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int32)
            if evaluation:
                index = padded_replica_rows(len(y), paths(), count)
                # padding rows read one appended blank image whose label no prediction matches
                index = np.where(index < 0, len(y), index)
                x = np.concatenate([x, np.zeros((1,) + x.shape[1:], np.float32)])
                y = np.append(y, np.int32(PADDING_LABEL))
            else:
                if paths() == 1:
                    rows = check_batch(trimmed_rows(len(y), count), count, "a mixed-mode step")
                    x, y = x[:rows], y[:rows]
                index = replica_rows(len(y), paths(), count)
            return traced(x, y, index.astype(np.int32))

        return call


def _run_on_replicas(strategy, step, x, y, index):
    """``step`` on every replica with its rows (``index[replica]``) of the global batch, outputs summed."""

    def on_share(x, y, index):
        rows = tf.gather(index, tf.distribute.get_replica_context().replica_id_in_sync_group)
        return step(tf.gather(x, rows), tf.gather(y, rows))

    outputs = strategy.run(on_share, args=(x, y, index))
    return tf.nest.map_structure(lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), outputs)


def replicas_of(strategy) -> SingleDevice | Replicas:
    """The step plumbing of ``strategy`` (None: :class:`SingleDevice`)."""
    if strategy is None:
        return SingleDevice()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            f"distribution_strategy must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()), "
            f"got {type(strategy).__name__}"
        )
    return Replicas(strategy)


def local_copies(variable) -> list:
    """Every replica's copy of ``variable`` (itself when it is not distributed)."""
    if isinstance(variable, tf.distribute.DistributedValues):
        return list(variable.distribute_strategy.experimental_local_results(variable))
    return [variable]
