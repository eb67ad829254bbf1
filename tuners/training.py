"""Training a supernet: path-mode and mixed-mode epochs and per-path evaluation, composed from one module a job.

:class:`SupernetTrainer` builds the traced steps (the paths' summed loss, a weight step, an α step, an
evaluation) and runs them on data from :mod:`~bnas_tf.tuners.batches` (whole epochs, one chunk a path), under
:mod:`~bnas_tf.tuners.graph_options` (Grappler off). Weights move by :mod:`~bnas_tf.tuners.masked_sgd` (SGD with
momentum and coupled weight decay, SPEC P1, only on the sampled paths: DESIGN "update only the path"),
architecture parameters α by :mod:`~bnas_tf.tuners.alpha_adam` (DARTS' first-order bilevel scheme: one α step on
an architecture batch, then one weight step on a weights batch). Under a ``tf.distribute`` strategy every step runs
on the replicas, each on its share of every path's chunk, with all-reduced gradients
(:mod:`~bnas_tf.tuners.replicas`). Its state is saved by :mod:`~bnas_tf.tuners.checkpoints`; the face search's
per-path features come from :mod:`~bnas_tf.tuners.features`.

Every training call (a group's path epoch, a mixed-mode epoch) names its data passes by the epochs the weights
have trained before it (:func:`~bnas_tf.data.passes.start_passes`), a count saved in the checkpoint with them: a
search resumed from a checkpoint reads the batches the unbroken search read next, from the shuffled training parts
of :mod:`bnas_tf.data` (a dataset that reshuffles by itself orders its passes by what the process read before).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from bnas_tf.data import without_autotune
from bnas_tf.data.passes import start_passes
from bnas_tf.space.losses import (
    ChildParentKernelLoss,
    child_parent_kernel_loss,
    class_centre_term,
    quantized_kernel_pairs,
)
from bnas_tf.space.supernet import KINDS, Supernet
from bnas_tf.tuners import checkpoints, features, masked_sgd
from bnas_tf.tuners.alpha_adam import alpha_optimizer, apply_alpha_adam
from bnas_tf.tuners.batches import (
    EVAL_PIXELS,
    batch_size_of,
    merged_batches,
    paths_batches,
    trainable_batch,
)
from bnas_tf.tuners.checkpoints import POINTER
from bnas_tf.tuners.graph_options import without_graph_optimisation
from bnas_tf.tuners.masked_sgd import MaskedSGD, cosine_learning_rate
from bnas_tf.tuners.replicas import replicas_of

__all__ = [
    "EVAL_PIXELS",
    "POINTER",
    "SupernetTrainer",
    "batch_size_of",
    "cosine_learning_rate",
    "without_autotune",
    "without_graph_optimisation",
]


def _delegated(name):
    """A trainer attribute that is its masked SGD's ``name`` (read and set there)."""
    return property(lambda self: getattr(self.sgd, name), lambda self, value: setattr(self.sgd, name, value))


class SupernetTrainer:
    """Runs training and evaluation of a :class:`Supernet` in its current layout."""

    learning_rate = _delegated("learning_rate")
    momentum = _delegated("momentum")
    weight_decay = _delegated("weight_decay")
    clip_norm = _delegated("clip_norm")
    weights = _delegated("weights")
    accumulators = _delegated("accumulators")
    op_masks = _delegated("op_masks")
    update_mask = _delegated("update_mask")
    share_updates = _delegated("share_updates")
    _updates = _delegated("updates")

    def __init__(
        self,
        supernet: Supernet,
        *,
        learning_rate=0.025,
        momentum=0.9,
        weight_decay=5e-4,
        alpha_learning_rate=3e-4,
        clip_norm=5.0,
        kernel_loss: ChildParentKernelLoss | None = None,
        distribution_strategy: tf.distribute.Strategy | None = None,
    ):
        """``kernel_loss``: SPEC P4's kernel-level Child-Parent loss (Eq. 3), added to every weight step of a
        binarized supernet (the child's path training, Eq. 4); None trains on the cross-entropy alone.

        ``distribution_strategy`` (a ``tf.distribute.Strategy``; None: one device) runs every step on the
        strategy's replicas, each on its share of every path's chunk (:mod:`~bnas_tf.tuners.replicas`); build
        ``supernet`` under ``distribution_strategy.scope()``. Its ops then run inline, not as the shared
        per-signature functions (:mod:`bnas_tf.space.shared_ops`): a replica's variables and cross-replica
        reductions (synchronized BatchNorm) belong to its own step."""
        self.replicas = replicas_of(distribution_strategy)
        if distribution_strategy is not None and not distribution_strategy.extended.variable_created_in_scope(
            supernet.alpha_variables[0]
        ):
            raise ValueError(
                "the supernet was not built under the distribution strategy: create it inside "
                "`with distribution_strategy.scope():`, so its variables live on every replica"
            )
        with self.replicas.scope():
            self._create_variables(
                supernet,
                learning_rate=learning_rate,
                momentum=momentum,
                weight_decay=weight_decay,
                alpha_learning_rate=alpha_learning_rate,
                clip_norm=clip_norm,
                kernel_loss=kernel_loss,
            )
        if distribution_strategy is not None:
            supernet.share_ops = False
            self.sgd.share_updates = False

    def _create_variables(
        self, supernet, *, learning_rate, momentum, weight_decay, alpha_learning_rate, clip_norm, kernel_loss
    ):
        self.supernet = supernet
        self.kernel_loss = kernel_loss
        self.base_learning_rate = float(learning_rate)
        self.sgd = MaskedSGD(
            supernet, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay, clip_norm=clip_norm
        )
        self.diversity = tf.Variable(0.0, trainable=False, name="diversity_weight")
        # deployment penalty of the α step (Differentiable): weight and per-edge op costs (relative to a base)
        self.cost_weight = tf.Variable(0.0, trainable=False, name="cost_weight")
        space = supernet.space
        self.op_costs = {
            kind: tf.Variable(tf.zeros([space.num_edges, space.num_ops]), trainable=False, name=f"op_costs_{kind}")
            for kind in KINDS
        }
        self.alpha_optimizer = alpha_optimizer(alpha_learning_rate, supernet.alpha_variables)
        # training calls these weights have had: the key of the next call's data passes (checkpointed with them)
        self.epochs_trained = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_trained")
        self._shared = supernet.shared_weights()
        # (seconds, traced) of every training step: what benchmarks/search_overhead.py reads
        self.step_times = []
        self._traced = set()

    def _timed(self, key, function, *args):
        start = time.perf_counter()
        out = function(*args)
        loss = float(out[0] if isinstance(out, tuple) else out)  # waits for the step to finish
        first = key not in self._traced
        self._traced.add(key)
        self.step_times.append((time.perf_counter() - start, first))
        return loss, out

    # --- variables of a layout and their updates -------------------------------
    def layout_weights(self):
        """Weights the current layout's graph reads: shared ones and the candidate ops'."""
        layout = self.supernet.layout
        out = list(self._shared)
        for kind in KINDS:
            for edge, candidates in enumerate(layout.candidates[kind]):
                for op in candidates:
                    out += self.supernet.op_weights(kind, edge, op)
        return out

    def _apply(self, grads, variables):
        """The masked SGD step on ``variables`` (:meth:`MaskedSGD.apply`)."""
        self.sgd.apply(grads, variables)

    def _apply_alpha(self, grads, alphas):
        """The fused Adam step on α (:func:`~bnas_tf.tuners.alpha_adam.apply_alpha_adam`)."""
        apply_alpha_adam(self.alpha_optimizer, grads, alphas)

    def set_active(self, active: dict | None):
        """Only ops in ``active[kind][edge]`` (and the shared layers) are updated; None: every layout op.
        Returns the BatchNorm statistics of the inactive layout ops, for :meth:`restore_statistics`."""
        return self.sgd.set_active(active)

    @staticmethod
    def restore_statistics(saved):
        """Put back the BatchNorm statistics :meth:`set_active` returned."""
        masked_sgd.restore_statistics(saved)

    def _losses(self, logits, y):
        """The sum over paths (``path_count`` chunks of the batch; mixed mode: one) of each path's mean
        cross-entropy, plus the layers' own losses.

        A sum, not a mean: each op serves one path, so it gets that path's whole gradient, as if every sampled
        path trained on its own (SPEC P1 Algorithm 1 step b, P4); the shared layers get the sum of the paths'
        gradients, which is P sequential steps to first order. (A mean gave every op 1/P of its gradient.)"""
        per_sample = tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        loss = tf.reduce_sum(tf.reduce_mean(self.supernet.by_path(per_sample), axis=1))
        extra = self.supernet.extra_losses()
        return loss + tf.add_n(extra) if extra else loss

    def _kernel_loss(self, features, y, variables):
        """P4 Eq. 3 on the paths' batch: the latent vs binarized kernels of the layout's ops, plus the
        class-centre term with one set of centres per path (each path's chunk of rows is its own network).
        Ops outside the sampled paths add a constant: the masked update leaves them as they are."""
        kernels, reconstructions = quantized_kernel_pairs(variables)
        paths = tf.range(tf.shape(y)[0]) // self.supernet.chunk
        if self.replicas.strategy is None:
            return self.kernel_loss(kernels, reconstructions, features, y, groups=paths)
        # on a replica: the kernel term, the same in every replica, is shared over them as the mean losses are
        # (the step divides by R); the class-centre term is a sum over samples: a replica's rows count whole, with
        # the global batch's centres
        kernel_term = child_parent_kernel_loss(kernels, reconstructions, features, y, 0.0, groups=paths)
        groups = paths * self.supernet.num_classes + tf.cast(y, tf.int32)
        centres = self.replicas.class_centres(features, groups, self.supernet.path_count * self.supernet.num_classes)
        return kernel_term + self.replicas.count * class_centre_term(features, groups, centres, self.kernel_loss.lam)

    def _path_correct(self, logits, y):
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32)
        return tf.reduce_sum(self.supernet.by_path(hits), axis=1)

    # --- traced functions: one per layout, shared by path and mixed mode (see bnas_tf.space.supernet) -------------
    def _function(self, name, build):
        """``(key, function)``: the layout's tf.function ``name``; ``key`` tells :meth:`_timed` which trace it is."""
        return (name,) + self.supernet.layout.graph_key, self.supernet.function(name, build, any_mode=True)

    def _signature(self):
        """One trace per layout whatever the batch size (the last validation batch is smaller)."""
        shape = (None,) + tuple(self.supernet.input_shape)
        return [tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None,), tf.int32)]

    def _step_function(self, step, evaluation=False):
        """``step(x, y)`` traced, on every replica of the strategy with its share of the batch (one device: as
        it is; :mod:`~bnas_tf.tuners.replicas`)."""
        return self.replicas.function(step, self._signature(), lambda: self.supernet.paths, evaluation=evaluation)

    def _train_step_fn(self):
        """A weight step: the paths' loss (or the mixture's), masked SGD on the layout's weights."""
        variables = self.layout_weights()

        def step(x, y):
            # only the weights are watched: ops reading α alone (the mixture weights) are not differentiated
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(variables)
                if self.kernel_loss is None:
                    logits = self.supernet.forward(x, training=True)
                    loss = self._losses(logits, y)
                else:
                    features, logits = self.supernet.forward_with_features(x, training=True)
                    loss = self._losses(logits, y) + self._kernel_loss(features, y, variables)
                loss = self.replicas.share(loss)
            self._apply(self.replicas.all_reduce(tape.gradient(loss, variables)), variables)
            return loss / tf.cast(self.supernet.path_count, loss.dtype), self._path_correct(logits, y)  # per path

        return self._step_function(step)

    def _alpha_step_fn(self):
        """An α step (mixed mode): the loss minus the diversity-weighted α entropy, Adam on α."""
        alphas = self.supernet.alpha_variables

        def alpha_step(x, y):
            # only α is watched: the ops on the weights alone (kernel binarization, ...) are not differentiated
            with tf.GradientTape(watch_accessed_variables=False) as tape, self.supernet.alpha_gradient_ops():
                tape.watch(alphas)
                logits = self.supernet.forward(x, training=True)
                loss = self._losses(logits, y) - self.diversity * self.supernet.mean_alpha_entropy()
                loss += self.cost_weight * self.expected_cost()
                loss = self.replicas.share(loss)
            self._apply_alpha(self.replicas.all_reduce(tape.gradient(loss, alphas)), alphas)
            return loss

        return self._step_function(alpha_step)

    def _eval_fn(self):
        def evaluate(x, y):
            logits = self.supernet.forward(x, training=False)
            return self._path_correct(logits, y)

        return self._step_function(evaluate, evaluation=True)

    def _start_epoch(self):
        """Key the data passes of the training call about to run by :attr:`epochs_trained`, then count it."""
        start_passes(int(self.epochs_trained.numpy()))
        self.epochs_trained.assign_add(1)

    # --- path mode ------------------------------------------------------------
    def train_paths(self, dataset, steps: int) -> dict:
        """Train the current paths for ``steps`` steps; each path gets its own batch every step."""
        self._start_epoch()
        paths = self.supernet.paths
        key, step = self._function("train", self._train_step_fn)
        losses, correct, seen = [], np.zeros(paths), 0
        with without_graph_optimisation():
            for x, y in paths_batches(dataset, paths, steps):
                loss, (_, hits) = self._timed(key, step, tf.constant(x), tf.constant(y, tf.int32))
                losses.append(loss)
                correct += hits.numpy()
                seen += int(y.shape[0]) // paths
        return {
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "losses": losses,
            "accuracy": (correct / max(seen, 1)).tolist(),
        }

    def evaluate_paths(self, dataset) -> np.ndarray:
        """Validation accuracy of every current path on the same samples (mixed mode: of the mixture)."""
        paths = self.supernet.paths
        _, evaluate = self._function("eval", self._eval_fn)
        correct, seen = np.zeros(paths), 0
        with without_graph_optimisation():
            for x, y in merged_batches(dataset, paths):
                tiled = np.tile(x.astype(np.float32), (paths,) + (1,) * (x.ndim - 1))
                correct += evaluate(tiled, np.tile(y, paths).astype(np.int32)).numpy()
                seen += len(y)
        if not seen:
            raise ValueError("validation data is empty: pass a validation dataset with at least one batch")
        return correct / seen

    # --- mixed mode -----------------------------------------------------------
    def expected_cost(self):
        """Σ over edges of softmax(α) · op costs over the remaining ops: the differentiable deployment cost."""
        terms = []
        for kind in KINDS:
            for edge, candidates in enumerate(self.supernet.layout.candidates[kind]):
                p = tf.nn.softmax(tf.gather(self.supernet.masked_alpha(kind, edge), list(candidates)))
                terms.append(tf.reduce_sum(p * tf.gather(self.op_costs[kind][edge], list(candidates))))
        return tf.add_n(terms)

    def train_mixed(
        self,
        weights_data,
        steps: int,
        *,
        architecture_data=None,
        diversity_weight: float = 0.0,
        cost_weight: float = 0.0,
        op_costs: dict | None = None,
    ) -> dict:
        """One mixed-mode pass: weight steps, interleaved with α steps when ``architecture_data`` is given.
        ``cost_weight`` times :meth:`expected_cost` (with ``op_costs[kind][edge][op]``) joins the α loss."""
        self._start_epoch()
        train_alpha = architecture_data is not None
        key, weight_step = self._function("train", self._train_step_fn)
        alpha_key, alpha_step = self._function("alpha", self._alpha_step_fn) if train_alpha else (None, None)
        self.diversity.assign(float(diversity_weight))
        self.cost_weight.assign(float(cost_weight))
        for kind, table in (op_costs or {}).items():
            self.op_costs[kind].assign(np.asarray(table, dtype=np.float32))
        # both pipelines end after `steps` batches and are read to their end: deleting an iterator dropped in the
        # middle of an endless prefetching repeat waits for tf.data's threads (see bnas_tf.tuners.batches)
        weights = self.replicas.trainable(weights_data).repeat().take(steps)
        if train_alpha:
            architecture = self.replicas.trainable(architecture_data).repeat().take(steps)
        batches = tf.data.Dataset.zip((weights, architecture)) if train_alpha else weights
        batches = without_autotune(batches)
        losses, correct, seen = [], 0.0, 0
        with without_graph_optimisation():
            for batch in batches:
                (x, y), arch = batch if train_alpha else (batch, None)
                if not losses:  # before the first step
                    for labels in [y] + ([arch[1]] if arch is not None else []):
                        trainable_batch(int(labels.shape[0]))
                if arch is not None:
                    self._timed(alpha_key, alpha_step, arch[0], tf.cast(arch[1], tf.int32))
                loss, (_, hits) = self._timed(key, weight_step, x, tf.cast(y, tf.int32))
                losses.append(loss)
                correct += float(hits.numpy()[0])
                seen += self.replicas.trained_rows(int(y.shape[0]))
        return {
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "losses": losses,
            "accuracy": correct / max(seen, 1),
        }

    # --- schedule and checkpoints ----------------------------------------------
    def set_progress(self, progress: float):
        self.learning_rate.assign(cosine_learning_rate(self.base_learning_rate, progress))

    def _state(self) -> dict:
        """Every variable of the search state by checkpoint key (:func:`~bnas_tf.tuners.checkpoints.search_state`)."""
        return checkpoints.search_state(
            self.supernet, self.weights, self.accumulators, self.alpha_optimizer, self.epochs_trained
        )

    def _legacy_checkpoint(self):
        """The tf.train.Checkpoint layout of the search state that older bnas-tf versions wrote."""
        return checkpoints.legacy_checkpoint(self._state(), self.alpha_optimizer)

    def save(self, folder, tag: str, record=None):
        """Write a checkpoint, then point ``latest.json`` at it: the pointer is the commit, so a crash before it
        leaves the previous checkpoint in force. ``record`` (JSON) is kept in the pointer (the tuner stores the
        results of the trials these weights finished). The previous checkpoint is kept too (see :meth:`restore`)."""
        checkpoints.save(folder, tag, self._state(), record)

    @staticmethod
    def pointer(folder) -> dict | None:
        """The content of ``folder/latest.json`` (prefix, tag, record, previous), or None without one."""
        return checkpoints.pointer(folder)

    def restore(self, folder, tag: str | None = None) -> str | None:
        """Load the latest checkpoint in ``folder`` (or the one tagged ``tag``: the latest or the one before);
        returns its tag, or None when there is none."""
        return checkpoints.restore(folder, self._state(), self.alpha_optimizer, tag)

    # --- per-path features (face verification scores, bnas_tf.face.tuners) ---------------------------
    def path_features(self, images, batch_size: int = 256) -> np.ndarray:
        """Pooled features (:meth:`Supernet.features`) of every current path for ``images`` (N, H, W, C):
        an array (paths, N, features), inference mode, each path seeing every image."""
        return features.path_features(self.supernet, images, batch_size)
