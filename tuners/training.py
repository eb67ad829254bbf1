"""Training a supernet: path-mode and mixed-mode epochs, per-path evaluation, checkpoints.

The optimiser is SGD with momentum and coupled weight decay (SPEC P1: momentum
0.9, weight decay 5e-4, lr 0.025 cosine to 0), applied with one fused
``ResourceApplyMomentum`` per variable (an op's variables in one function shared
by every op of the same signature), and **only to the variables the
current layout uses**: ops outside the sampled paths are not in the graph, so
neither momentum nor weight decay moves them. (Keras' own SGD builds ~25 graph
ops per variable; on a 534-variable supernet that took 18 of a 24 s trace.)
Architecture parameters α use Adam (DARTS' first-order bilevel scheme: one α
step on an architecture batch, then one weight step on a weights batch).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time

import numpy as np
import tensorflow as tf

from bnas_tf.files import atomic_write_json, read_json
from bnas_tf.space.shared_ops import NOINLINE, config_key, latent
from bnas_tf.space.supernet import KINDS, Supernet

POINTER = "latest.json"


def cosine_learning_rate(base: float, progress: float, minimum: float = 0.0) -> float:
    """lr at ``progress`` in [0, 1] of a cosine schedule from ``base`` to ``minimum``."""
    progress = min(max(progress, 0.0), 1.0)
    return minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * progress))


_optimisation_lock = threading.Lock()
_optimisation_users = [0, None]  # runs inside without_graph_optimisation, the options they replaced


@contextlib.contextmanager
def without_graph_optimisation():
    """Run the supernet's functions without Grappler. On a 27k-node training graph Grappler took 6 of a
    10 s first call (measured, 2 cores) and the steps ran no faster. The setting is TensorFlow's global
    one and is read at every call (a function called under other options is instantiated again), so it is
    on while any trainer runs (reference-counted: threaded chief/worker tests) and put back afterwards."""
    with _optimisation_lock:
        if _optimisation_users[0] == 0:
            _optimisation_users[1] = tf.config.optimizer.get_experimental_options()
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        _optimisation_users[0] += 1
    try:
        yield
    finally:
        with _optimisation_lock:
            _optimisation_users[0] -= 1
            if _optimisation_users[0] == 0:
                tf.config.optimizer.set_experimental_options(
                    {"disable_meta_optimizer": False, **_optimisation_users[1]}
                )


def without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off. Deleting an iterator that was read between training steps
    waited for the autotuning thread: 0.2-1.2 s in half of the deletions (measured, 2 cores; 0 with autotune
    off), once per epoch of every path and per evaluation. The training step dominates by far, so nothing
    needs tuning; AUTOTUNE parallelism falls back to the number of cores."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def batch_size_of(dataset) -> int:
    for x, _ in dataset.take(1):
        return int(x.shape[0])
    raise ValueError("training data is empty: pass a dataset with at least one batch")


def _trainable_batch(size: int) -> int:
    """``size`` if a supernet can train on batches of it: one image is refused (BatchNorm's batch variance
    is 0, and a one-row training step corrupted the heap in TF 2.15's oneDNN kernels: "free(): invalid
    pointer", reproduced with and without row routing)."""
    if size < 2:
        raise ValueError(
            f"training batches hold {size} image: a supernet trains on at least 2 per batch "
            "(BatchNorm); batch the data with batch_size >= 2, e.g. bnas_tf.data.load(..., batch_size=32)"
        )
    return size


def _paths_batches(dataset, paths: int, steps: int):
    """``steps`` (images, labels) of ``paths`` consecutive full batches each, so every path gets its own stream
    of data: the dataset's epochs one after another, each cut into full batches (the remainder dropped).
    Every epoch is read to its end: a tf.data iterator dropped in the middle of a prefetching pipeline took
    ~2.7 s to delete in a search (measured, once per group)."""
    dataset = without_autotune(dataset)
    size, produced, group = _trainable_batch(batch_size_of(dataset)), 0, []
    while produced < steps:
        images, labels, full = [], [], 0
        for x, y in dataset:
            images.append(x.numpy())
            labels.append(y.numpy())
            while sum(len(b) for b in labels) >= size:
                x_all, y_all = np.concatenate(images), np.concatenate(labels)
                group.append((x_all[:size], y_all[:size]))
                images, labels, full = [x_all[size:]], [y_all[size:]], full + 1
                if len(group) == paths:
                    if produced < steps:
                        yield np.concatenate([g[0] for g in group]), np.concatenate([g[1] for g in group])
                        produced += 1
                    group = []
        if not full:
            raise ValueError(f"training data has no full batch of {size} examples: pass a dataset with at least one")


#: Input pixels (rows x height x width, every path's copy counted) an evaluation call takes at most: consecutive
#: validation batches are merged up to it (a call has a fixed cost: on the overhead benchmark's supernet with
#: 8x8 inputs 256 rows took 86 ms, 720 rows 175 ms); a batch larger than it goes alone.
EVAL_PIXELS = 2**19


def _merged_batches(dataset, paths: int, pixels: int = EVAL_PIXELS):
    """(images, labels) numpy blocks of consecutive batches of ``dataset``, each within ``pixels`` once tiled
    for ``paths`` paths (or a single batch)."""
    images, labels, rows = [], [], 0
    for x, y in without_autotune(dataset):
        x, y = x.numpy(), y.numpy()
        per_row = paths * int(np.prod(x.shape[1:3]))
        if images and (rows + len(x)) * per_row > pixels:
            yield np.concatenate(images), np.concatenate(labels)
            images, labels, rows = [], [], 0
        images.append(x)
        labels.append(y)
        rows += len(x)
    if images:
        yield np.concatenate(images), np.concatenate(labels)


def _momentum_update(var, accumulator, grad, factor, lr, decay, momentum, constraint):
    """One variable's masked SGD step (see SupernetTrainer._apply), then its constraint (None: none)."""
    tf.raw_ops.ResourceApplyMomentum(
        var=var.handle, accum=accumulator.handle, lr=lr, grad=grad * factor + decay * var, momentum=momentum
    )
    if constraint is not None:
        var.assign(constraint(var))


class SupernetTrainer:
    """Runs training and evaluation of a :class:`Supernet` in its current layout."""

    def __init__(
        self,
        supernet: Supernet,
        *,
        learning_rate=0.025,
        momentum=0.9,
        weight_decay=5e-4,
        alpha_learning_rate=3e-4,
        clip_norm=5.0,
    ):
        self.supernet = supernet
        self.base_learning_rate = float(learning_rate)
        self.learning_rate = tf.Variable(float(learning_rate), trainable=False, name="learning_rate")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.clip_norm = float(clip_norm)
        self.diversity = tf.Variable(0.0, trainable=False, name="diversity_weight")
        # deployment penalty of the α step (Differentiable): weight and per-edge op costs (relative to a base)
        self.cost_weight = tf.Variable(0.0, trainable=False, name="cost_weight")
        space = supernet.space
        self.op_costs = {
            kind: tf.Variable(tf.zeros([space.num_edges, space.num_ops]), trainable=False, name=f"op_costs_{kind}")
            for kind in KINDS
        }
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
        self.alpha_optimizer = tf.keras.optimizers.Adam(alpha_learning_rate, beta_1=0.5, beta_2=0.999)
        self.alpha_optimizer.build(supernet.alpha_variables)
        self._shared = supernet.shared_weights()
        # each op's update as one shared function per signature (bnas_tf.space.shared_ops' reasoning); off: inline
        self.share_updates = True
        self._updates = {}
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

    # --- variables of a layout ------------------------------------------------
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
                    _momentum_update(var, self.accumulators[id(var)], grad, *factors, var.constraint)
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
        if key not in self._updates:
            count = len(variables)

            def update(clip, learning_rate, mask, *arguments):
                factors = self._factors(clip, learning_rate, mask)
                for var, accumulator, grad, constraint in zip(
                    arguments[:count], arguments[count : 2 * count], arguments[2 * count :], constraints
                ):
                    _momentum_update(var, accumulator, grad, *factors, constraint)

            self._updates[key] = tf.function(update, autograph=False, experimental_attributes=NOINLINE)
        return self._updates[key]

    def set_active(self, active: dict | None):
        """Only ops in ``active[kind][edge]`` (and the shared layers) are updated; None: every layout op.
        Returns the BatchNorm statistics of the inactive layout ops, for :meth:`restore_statistics`."""
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
        return [(v, v.numpy()) for v in frozen]

    @staticmethod
    def restore_statistics(saved):
        for variable, value in saved:
            variable.assign(value)

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

    def _train_step_fn(self):
        """A weight step: the paths' loss (or the mixture's), masked SGD on the layout's weights."""
        variables = self.layout_weights()

        def step(x, y):
            # only the weights are watched: ops reading α alone (the mixture weights) are not differentiated
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(variables)
                logits = self.supernet.forward(x, training=True)
                loss = self._losses(logits, y)
            self._apply(tape.gradient(loss, variables), variables)
            return loss / tf.cast(self.supernet.path_count, loss.dtype), self._path_correct(logits, y)  # per path

        return tf.function(step, autograph=False, input_signature=self._signature())

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
            self._apply_alpha(tape.gradient(loss, alphas), alphas)
            return loss

        return tf.function(alpha_step, autograph=False, input_signature=self._signature())

    def _apply_alpha(self, grads, alphas):
        """Adam on α with one fused ``ResourceApplyAdam`` per variable, on the Keras Adam's own slots and step
        count (what checkpoints hold), the same update as its ``apply_gradients``: that one built ~17 graph ops
        an α (1,404 of the benchmark α graph's 12,263)."""
        optimizer = self.alpha_optimizer
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
        optimizer.iterations.assign_add(1)

    def _eval_fn(self):
        def evaluate(x, y):
            logits = self.supernet.forward(x, training=False)
            return self._path_correct(logits, y)

        return tf.function(evaluate, autograph=False, input_signature=self._signature())

    # --- path mode ------------------------------------------------------------
    def train_paths(self, dataset, steps: int) -> dict:
        """Train the current paths for ``steps`` steps; each path gets its own batch every step."""
        paths = self.supernet.paths
        key, step = self._function("train", self._train_step_fn)
        losses, correct, seen = [], np.zeros(paths), 0
        with without_graph_optimisation():
            for x, y in _paths_batches(dataset, paths, steps):
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
            for x, y in _merged_batches(dataset, paths):
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
        train_alpha = architecture_data is not None
        key, weight_step = self._function("train", self._train_step_fn)
        alpha_key, alpha_step = self._function("alpha", self._alpha_step_fn) if train_alpha else (None, None)
        self.diversity.assign(float(diversity_weight))
        self.cost_weight.assign(float(cost_weight))
        for kind, table in (op_costs or {}).items():
            self.op_costs[kind].assign(np.asarray(table, dtype=np.float32))
        # both pipelines end after `steps` batches and are read to their end: an iterator dropped in the middle
        # of an endless prefetching repeat takes seconds to delete (see train_paths)
        weights = weights_data.repeat().take(steps)
        batches = tf.data.Dataset.zip((weights, architecture_data.repeat().take(steps))) if train_alpha else weights
        batches = without_autotune(batches)
        losses, correct, seen = [], 0.0, 0
        with without_graph_optimisation():
            for batch in batches:
                (x, y), arch = batch if train_alpha else (batch, None)
                if not losses:  # before the first step
                    for labels in [y] + ([arch[1]] if arch is not None else []):
                        _trainable_batch(int(labels.shape[0]))
                if arch is not None:
                    self._timed(alpha_key, alpha_step, arch[0], tf.cast(arch[1], tf.int32))
                loss, (_, hits) = self._timed(key, weight_step, x, tf.cast(y, tf.int32))
                losses.append(loss)
                correct += float(hits.numpy()[0])
                seen += int(y.shape[0])
        return {
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "losses": losses,
            "accuracy": correct / max(seen, 1),
        }

    # --- schedule and checkpoints ----------------------------------------------
    def set_progress(self, progress: float):
        self.learning_rate.assign(cosine_learning_rate(self.base_learning_rate, progress))

    def _state(self) -> dict:
        """Every variable of the search state by checkpoint key: supernet variables (``v<i>``), momentum
        buffers (``m<i>``), the α optimizer's (``a<i>``). Matched by position, so a change to the supernet's
        layer walk makes older checkpoints unreadable (a clear error, see :meth:`restore`)."""
        state = {f"v{i}": v for i, v in enumerate(self.supernet.all_variables())}
        state.update({f"m{i}": self.accumulators[id(w)] for i, w in enumerate(self.weights)})
        state.update({f"a{i}": v for i, v in enumerate(self.alpha_optimizer.variables)})
        return state

    def _legacy_checkpoint(self):
        """The tf.train.Checkpoint layout of searches saved before bnas-tf wrote one SaveV2 bundle."""
        variables = {key: v for key, v in self._state().items() if key[0] in "vm"}
        return tf.train.Checkpoint(alpha_optimizer=self.alpha_optimizer, **variables)

    def _write(self, prefix):
        """One SaveV2 op for the whole state: a TensorFlow checkpoint bundle (``tf.train.load_checkpoint`` reads
        it). tf.train.Checkpoint.write took 0.45 s for the ~1,400 variables of the overhead benchmark's
        supernet, SaveV2 0.24 s (median of 10, 2 cores), once per group."""
        state = self._state()
        tf.raw_ops.SaveV2(
            prefix=prefix,
            tensor_names=list(state),
            shape_and_slices=[""] * len(state),
            tensors=[v.read_value() for v in state.values()],
        )

    def _read(self, prefix):
        reader = tf.train.load_checkpoint(prefix)
        saved = reader.get_variable_to_shape_map()
        if "_CHECKPOINTABLE_OBJECT_GRAPH" in saved:
            self._legacy_checkpoint().read(prefix).assert_existing_objects_matched()
            return
        state = self._state()
        wrong = [key for key, v in state.items() if saved.get(key) != v.shape.as_list()]
        if wrong or len(saved) != len(state):
            raise ValueError(
                f"it holds {len(saved)} variables, this supernet has {len(state)} ({len(wrong)} missing or of "
                "another shape): it was saved for another space or bnas-tf version"
            )
        values = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=list(state),
            shape_and_slices=[""] * len(state),
            dtypes=[v.dtype for v in state.values()],
        )
        for variable, value in zip(state.values(), values):
            variable.assign(value)

    def save(self, folder, tag: str, record=None):
        """Write a checkpoint, then point ``latest.json`` at it: the pointer is the commit, so a crash before it
        leaves the previous checkpoint in force. ``record`` (JSON) is kept in the pointer (the tuner stores the
        results of the trials these weights finished). The previous checkpoint is kept too (see :meth:`restore`)."""
        os.makedirs(folder, exist_ok=True)
        name = f"ckpt-{tag}"
        self._write(os.path.join(folder, name))
        current = self.pointer(folder)
        previous = current if current and current["prefix"] != name else (current or {}).get("previous")
        previous = {"prefix": previous["prefix"], "tag": previous["tag"]} if previous else None
        atomic_write_json(
            os.path.join(folder, POINTER), {"prefix": name, "tag": tag, "record": record, "previous": previous}
        )
        keep = {name} | ({previous["prefix"]} if previous else set())
        for file in os.listdir(folder):  # older checkpoints, and any a crash left before its pointer was written
            if file.startswith("ckpt-") and file.split(".")[0] not in keep:
                os.unlink(os.path.join(folder, file))

    @staticmethod
    def pointer(folder) -> dict | None:
        """The content of ``folder/latest.json`` (prefix, tag, record, previous), or None without one."""
        path = os.path.join(folder, POINTER)
        if not os.path.exists(path):
            return None
        state = read_json(
            path,
            what="supernet checkpoint pointer",
            recovery=(
                f"restore it from a backup, or start the search again with overwrite=True; deleting only {folder} "
                "would resume the search with untrained weights"
            ),
        )
        if not isinstance(state, dict) or not isinstance(state.get("prefix"), str) or "tag" not in state:
            raise ValueError(
                f"supernet checkpoint pointer {path} is not one bnas-tf wrote (no prefix/tag); restore it "
                "from a backup, or start the search again with overwrite=True"
            )
        return state

    def restore(self, folder, tag: str | None = None) -> str | None:
        """Load the latest checkpoint in ``folder`` (or the one tagged ``tag``: the latest or the one before);
        returns its tag, or None when there is none."""
        state = self.pointer(folder)
        if state is None:
            if tag is not None:
                raise ValueError(
                    f"no supernet checkpoint in {folder}, but the search's other supernet is at {tag}; "
                    "restore the folder from a backup, or start again with overwrite=True"
                )
            return None
        if tag is not None and state["tag"] != tag:
            previous = state.get("previous")
            if not previous or previous["tag"] != tag:
                raise ValueError(
                    f"the supernet checkpoint in {folder} is at {state['tag']}, the search's other "
                    f"supernet at {tag}; restore the project from a backup, or start again with overwrite=True"
                )
            state = previous
        prefix = os.path.join(folder, state["prefix"])
        try:
            self._read(prefix)
        except (tf.errors.OpError, ValueError, AssertionError) as error:  # NotFoundError, DataLossError, no .data file
            detail = f"{error}" if type(error) is ValueError else type(error).__name__
            raise ValueError(
                f"supernet checkpoint {prefix} cannot be read ({detail}); restore it from "
                "a backup, or start the search again with overwrite=True"
            ) from None
        return state["tag"]

    # --- per-path features (face verification scores, bnas_tf.face.tuners) ---------------------------
    def path_features(self, images, batch_size: int = 256) -> np.ndarray:
        """Pooled features (:meth:`Supernet.features`) of every current path for ``images`` (N, H, W, C):
        an array (paths, N, features), inference mode, each path seeing every image."""
        paths = self.supernet.paths

        def build():
            def features(x):
                return self.supernet.by_path(self.supernet.features(x, training=False))

            shape = (None,) + tuple(self.supernet.input_shape)
            return tf.function(features, autograph=False, input_signature=[tf.TensorSpec(shape, tf.float32)])

        features = self.supernet.function("features", build)
        images = np.asarray(images, dtype=np.float32)
        if not len(images):
            raise ValueError("no images to compute features of: pass at least one")
        with without_graph_optimisation():  # as the steps run: Grappler would re-optimise every shared function
            chunks = [
                features(np.tile(images[start : start + batch_size], (paths, 1, 1, 1))).numpy()
                for start in range(0, len(images), batch_size)
            ]
        return np.concatenate(chunks, axis=1)
