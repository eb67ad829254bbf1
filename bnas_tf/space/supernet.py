"""The weight-sharing supernet: every op of every edge of a cell space (SPEC P1 §3.1, P2 §4, P4 §2.2).

Two forward modes over the same weights:

* **path mode** trains ``P`` sampled architectures at once, each on its own
  chunk of the batch. On each edge the ``P`` candidate ops form a
  permutation over the paths (sampling without replacement, SPEC P1
  Algorithm 1 step b / P4 Algorithm 1), so every op processes exactly one
  chunk: a step costs what one path on the whole batch costs. Which op a
  path takes is an int tensor (``owner``), so a new sample is a new value,
  not a new trace. A graph is kept while pruning removes ops (see
  ``SamplingOracle._update_layout``): the ops no sampled path takes read
  two rows and add nothing, so a round of K paths costs K paths, not
  the layout's slots.
* **mixed mode** computes softmax(α)-weighted sums of every remaining op
  (DARTS, SPEC P2); with ``partial_channels = q > 1`` only the first 1/q of
  each mixture's output channels come from the mixture and the rest bypass
  (PC-DARTS' partial connection, SPEC P1 Eq. 6). The ops keep full width on
  purpose: they are the ops path mode trains, so both modes share every
  weight. That keeps PC-DARTS' bypass and channel shuffle but not its
  compute saving: measured (``benchmarks/partial_channels.py``, 5 cells, 16
  channels, 8 ops, batch 32, CPU), a mixed step at q = 2 costs what q = 1
  costs, and ops reading only C/2 channels would cost at least 0.64x of it.
  In P1, mixed mode is the 5-epoch warm-up and one fine-tune epoch a round,
  beside ⌈K/2⌉·T path epochs a round; P2's search is DARTS (q = 1).

The mode is a variable too (:meth:`SupernetEdge._combined`: each op reads
one chunk and adds its weighted output to one chunk), so both modes run the
same graph: it is traced once per *layout* (the candidate ops of every
edge), and a search whose layout stays the same traces one training graph
for its sampled paths and its mixed-mode fine-tuning.

The cell is :class:`bnas_tf.space.networks.Cell`: supernet and evaluation network
share its definition.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import tensorflow as tf

from bnas_tf.space import ops as ops_module
from bnas_tf.space.genotype import Genotype, edge_inputs, full_edge_count
from bnas_tf.space.losses import DiversityRegularizer
from bnas_tf.space.networks import _check_network_args, build_cells, build_stem
from bnas_tf.space.quantizers import get as get_binarization
from bnas_tf.space.shared_ops import SharedOps

KINDS = ("normal", "reduce")
#: Rows an op that serves no path reads (SupernetEdge._combined). Zero rows would cost nothing, but
#: Conv2DBackpropFilter fails on an empty batch in a graph; with one row a oneDNN kernel corrupted the heap
#: in training steps (TF 2.15, a conv_3x3 + identity space: "double free or corruption"); two rows do not.
FILLER_ROWS = 2


@dataclasses.dataclass(frozen=True)
class CellSpace:
    """A cell search space: op set, stacked cells, width, nodes and reductions.

    Every edge of every cell may take any op of ``op_set`` (SPEC "Common"; the supernet holds them all).
    The space is frozen and checked on construction, so a bad space fails here rather than when a search
    builds its first supernet (the image size is checked then). ``genotype(choice)`` turns one op index
    per edge into a :class:`~bnas_tf.space.genotype.Genotype`.

    Args:
        op_set: candidate ops of every edge, an op set name (``"DARTS_BINARY_OPS"``, the default, P1/P4;
            ``"BINARY_OPS"``, P2; ``"LCE_FRIENDLY_OPS"``) or a sequence of op names (stored as a tuple).
        cells: stacked cells of the search network (default 6).
        channels: channels of the first cells, even (default 16).
        nodes: intermediate nodes per cell (default 4: 14 edges).
        reduction_cells: indices of the reduction cells; default (None) ``cells // 3`` and
            ``2 * cells // 3`` (stored as a tuple).
        inter_cell_skip: SPEC P2's skip connections between cells (default False).
        stem: ``"cifar"`` (default) or ``"imagenet"``, as in ``build_network``.
        lce_friendly: keep to ops LCE runs binary and round ``channels`` up to a multiple of 32, LCE's
            packing (default False).

    Raises:
        ValueError: an unknown or empty op set; with ``lce_friendly``, ops outside ``LCE_FRIENDLY_OPS``;
            ``nodes``, ``cells`` or ``channels`` not a positive integer, odd ``channels``, bad
            ``reduction_cells`` or ``stem``.
    """

    op_set: tuple | str = "DARTS_BINARY_OPS"
    cells: int = 6
    channels: int = 16
    nodes: int = 4
    reduction_cells: tuple | None = None
    inter_cell_skip: bool = False
    stem: str = "cifar"
    lce_friendly: bool = False

    def __post_init__(self):
        object.__setattr__(self, "op_set", tuple(ops_module.get_op_set(self.op_set)))
        if self.lce_friendly:
            bad = sorted(set(self.op_set) - set(ops_module.LCE_FRIENDLY_OPS))
            if bad:
                raise ValueError(
                    f"lce_friendly space has ops LCE does not run binary: {', '.join(bad)}; use "
                    f"op_set='LCE_FRIENDLY_OPS' ({', '.join(ops_module.LCE_FRIENDLY_OPS)})"
                )
            if isinstance(self.channels, int) and self.channels > 0:
                object.__setattr__(self, "channels", ops_module.lce_channels(self.channels))
        if self.reduction_cells is not None:
            object.__setattr__(self, "reduction_cells", tuple(int(r) for r in self.reduction_cells))
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise ValueError(f"nodes must be a positive integer (got {self.nodes!r})")
        # fail here, not when a search builds its first supernet; the image size is checked then
        reductions = len(self.reduction_cells) if self.reduction_cells is not None else 2
        large_enough = 2 ** (reductions + 3)
        _check_network_args(
            self.cells, self.channels, 2, (large_enough, large_enough, 1), self.reduction_cells, self.stem
        )

    @property
    def num_edges(self) -> int:
        return full_edge_count(self.nodes)

    @property
    def num_ops(self) -> int:
        return len(self.op_set)

    def genotype(self, choice: dict, name: str | None = None) -> Genotype:
        """The genotype with op index ``choice[kind][edge]`` on every edge."""
        cells = {
            kind: [(self.op_set[int(k)], source) for k, (_, source) in zip(choice[kind], edge_inputs(self.nodes))]
            for kind in KINDS
        }
        return Genotype(
            normal=cells["normal"], reduce=cells["reduce"], op_set=list(self.op_set), nodes=self.nodes, name=name
        )

    def get_config(self) -> dict:
        return {
            **dataclasses.asdict(self),
            "op_set": list(self.op_set),
            "reduction_cells": None if self.reduction_cells is None else list(self.reduction_cells),
        }

    @classmethod
    def from_config(cls, config: dict) -> CellSpace:
        return cls(**config)


class SupernetEdge:
    """All ops of one edge, combined by the supernet's current mode."""

    def __init__(self, supernet, kind, edge, ops):
        self.supernet, self.kind, self.edge, self.ops = supernet, kind, edge, ops

    def __call__(self, x, training=None):
        candidates = self.supernet.layout.candidates[self.kind][self.edge]
        out = self._combined(x, training, candidates)
        return self._partial(x, out) if self.supernet.partial_channels > 1 else out

    def _combined(self, x, training, candidates):
        """Both modes in one graph, so path-mode training and mixed-mode fine-tuning share one trace.
        ``x`` holds ``streams`` equal chunks of rows (a path each in path mode, the one batch in mixed mode);
        candidate op ``k`` reads chunk ``owner[k]`` and adds ``weight[k]`` times its output to those rows.
        Path mode: owner = the path the op serves (each real path exactly one op), weight 1. Mixed mode:
        owner 0 for every remaining op, weight softmax(α). ``owner -1``: the op serves no path (a filler op
        of the layout, or an abandoned op in mixed mode); it reads FILLER_ROWS rows and adds nothing, so it
        costs ~2/chunk of a real op.

        While a graph is traced, the routing (rows to the ops) and the mixture (weights and rows back) are
        shared functions per signature too, beside the ops' own (~150 graph ops an edge become two calls;
        see bnas_tf.space.shared_ops). Not nested: an op called inside an edge function made steps slower."""
        supernet = self.supernet
        if len(candidates) == 1:  # every path takes it; softmax over one op is 1
            return supernet.call_op(self.ops[candidates[0]], x, training)
        owner = supernet.owner[self.kind][self.edge]
        mixture = (
            owner,
            supernet.alpha[self.kind][self.edge],
            supernet.alpha_mask[self.kind][self.edge],
            supernet.mixing,
        )
        count, shared = len(candidates), supernet.shared_ops
        sharing = supernet.share_ops and supernet.share_edges and tf.inside_function()
        alpha_gradients = shared.alpha_gradients or not sharing  # inline, a tape prunes what it does not need

        def route(x, owner, chunk, filler_rows):
            return _route(x, owner, chunk, filler_rows, count)

        def mix(outs, index, rows, *mixture):
            return _mix(outs, index, rows, *mixture, candidates=candidates, alpha_gradients=alpha_gradients)

        if sharing:
            route = shared.edge_function(("route", count, tuple(x.shape[1:]), x.dtype.name), route)
        inputs, index = route(x, owner, supernet.chunk, supernet.filler_rows)
        outs = [supernet.call_op(self.ops[op], rows_k, training) for op, rows_k in zip(candidates, inputs)]
        if sharing:
            mix = shared.edge_function(
                (
                    "mix",
                    tuple(candidates),
                    tuple(tuple(out.shape[1:]) for out in outs),
                    outs[0].dtype.name,
                    alpha_gradients,
                ),
                mix,
            )
        return mix(outs, index, tf.shape(x)[0], *mixture)

    def _partial(self, x, out):
        """Mixed mode with ``partial_channels = q > 1``: only the first 1/q of the channels come from the
        mixture, the rest bypass it (path mode: the op's output unchanged)."""
        keep = max(1, out.shape[-1] // self.supernet.partial_channels)
        stride = 1 if out.shape[1] == x.shape[1] else 2
        rest = x[:, ::stride, ::stride, keep:]
        # the bypass goes first: a channel shuffle (PC-DARTS), so each channel takes its turn in the mixture
        bypassed = tf.concat([rest, out[..., :keep]], axis=-1)
        return tf.where(self.supernet.mixing > 0.5, bypassed, out)


def _route(x, owner, chunk, filler_rows, count):
    """The rows of ``x`` each of ``count`` candidate ops reads (SupernetEdge._combined), and their indices."""
    serves = tf.greater_equal(owner, 0)
    starts = tf.maximum(owner, 0) * chunk
    sizes = tf.where(serves, chunk, filler_rows)
    index = tf.ragged.range(starts, starts + sizes).flat_values  # the rows each op reads, op after op
    return tf.split(tf.gather(x, index), sizes, num=count), index


def _mix(outs, index, rows, owner, alpha, alpha_mask, mixing, *, candidates, alpha_gradients=True):
    """The candidates' outputs weighted (1 in path mode, softmax(α) in mixed mode, 0 serving no path) and put
    back in the ``rows`` rows they were read from. Without ``alpha_gradients`` the weights get no gradient
    (a weight step in a shared function, where nothing else would prune it)."""
    softmax = tf.nn.softmax(tf.gather(alpha + alpha_mask, list(candidates)))
    weights = tf.where(tf.greater_equal(owner, 0), 1.0 + mixing * (softmax - 1.0), 0.0)  # path mode: exactly 1
    if not alpha_gradients:
        weights = tf.stop_gradient(weights)
    weighted = [out * w for out, w in zip(outs, tf.unstack(weights, num=len(candidates)))]
    # an op serving no path adds 0 to row 0
    return tf.math.unsorted_segment_sum(tf.concat(weighted, 0), index, rows)


@dataclasses.dataclass(frozen=True)
class Layout:
    """What the traced graph contains: the mode and the candidate op indices of every edge."""

    mode: str
    candidates: dict  # kind -> tuple of tuples of op indices

    @property
    def paths(self) -> int:
        return len(self.candidates["normal"][0]) if self.mode == "path" else 1

    @property
    def key(self):
        return (self.mode,) + tuple(self.candidates[kind] for kind in KINDS)

    @property
    def graph_key(self):
        """What a graph of :class:`SupernetEdge` depends on: the candidates (the mode is a variable)."""
        return tuple(self.candidates[kind] for kind in KINDS)


class Supernet:
    """Every op of every edge; ``train_step``/``evaluate`` in path or mixed mode over shared weights."""

    def __init__(
        self,
        space: CellSpace,
        *,
        num_classes: int,
        input_shape,
        binarization="W1/A32",
        partial_channels: int = 1,
        name: str = "supernet",
        sync_batch_norm: bool = False,
    ):
        """``sync_batch_norm``: BatchNorm statistics over every replica of the ``tf.distribute`` strategy the
        supernet is built under (:func:`~bnas_tf.space.ops.synchronized_batch_norm`); False (default): each
        replica's own. Build under ``strategy.scope()`` to train on the strategy's replicas."""
        if not isinstance(sync_batch_norm, bool):
            raise TypeError(f"sync_batch_norm must be True or False, got {sync_batch_norm!r}")
        self.sync_batch_norm = sync_batch_norm
        with ops_module.synchronized_batch_norm() if sync_batch_norm else contextlib.nullcontext():
            self._build(space, num_classes, input_shape, binarization, partial_channels, name)

    def _build(self, space, num_classes, input_shape, binarization, partial_channels, name):
        self.space = space
        self.binarization = get_binarization(binarization)
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.partial_channels = int(partial_channels)
        reduction_cells = _check_network_args(
            space.cells, space.channels, num_classes, self.input_shape, space.reduction_cells, space.stem
        )
        edges = space.num_edges
        self.alpha = {
            kind: [tf.Variable(tf.zeros(space.num_ops), name=f"alpha_{kind}_{e}") for e in range(edges)]
            for kind in KINDS
        }
        # 0 for ops still in the space, -1e9 for abandoned ones (mixed mode)
        self.alpha_mask = {
            kind: [
                tf.Variable(tf.zeros(space.num_ops), trainable=False, name=f"alpha_mask_{kind}_{e}")
                for e in range(edges)
            ]
            for kind in KINDS
        }
        # how many paths (equal chunks of a batch) the graph trains: the sampled ones; 1 in mixed mode
        self.path_count = tf.Variable(1, trainable=False, dtype=tf.int32, name="path_count")
        # per edge, the chunk of the batch each candidate op reads, -1 for none (see SupernetEdge._combined)
        self.owner = {
            kind: [
                tf.Variable(
                    tf.zeros(1, tf.int32), trainable=False, shape=tf.TensorShape([None]), name=f"owner_{kind}_{e}"
                )
                for e in range(edges)
            ]
            for kind in KINDS
        }
        # 1 in mixed mode, 0 in path mode
        self.mixing = tf.Variable(0.0, trainable=False, name="mixing")
        self.layout = None
        self.chunk = self.filler_rows = None  # set by each forward pass (see _start_pass)
        self.paths = 1  # path_count on the host (batching and evaluation read it)
        channels_of, c = {}, space.channels
        for index in range(space.cells):
            c = c * 2 if index in reduction_cells else c
            channels_of[index] = c

        def make_edge_for(kind, cell_index):
            def make_edge(index, node, source, stride, edge_name):
                ops = [
                    ops_module.build_op(op, channels_of[cell_index], stride, self.binarization, name_prefix=edge_name)
                    for op in space.op_set
                ]
                return SupernetEdge(self, kind, index, ops)

            return make_edge

        node_sources = [(node, list(range(node))) for node in range(2, space.nodes + 2)]
        concat = tuple(range(2, space.nodes + 2))
        self.cells = build_cells(
            {kind: (node_sources, concat) for kind in KINDS},
            cells=space.cells,
            channels=space.channels,
            binarization=self.binarization,
            reduction_cells=reduction_cells,
            inter_cell_skip=space.inter_cell_skip,
            stem=space.stem,
            make_edge_for=make_edge_for,
        )
        self._stem_layers = None
        self.classifier = [
            tf.keras.layers.GlobalAveragePooling2D(name=f"{name}_pool"),
            tf.keras.layers.Dense(num_classes, name=f"{name}_logits"),
        ]
        self._stem_input = tf.keras.Input(self.input_shape)
        self.stem = tf.keras.Model(
            self._stem_input, list(build_stem(self._stem_input, space.channels, space.stem)), name=f"{name}_stem"
        )
        self._functions = {}
        # ops and edges traced once per signature as shared _noinline functions (see bnas_tf.space.shared_ops); the
        # α step's differentiate only their inputs and α (alpha_gradient_ops)
        self.shared_ops = SharedOps()
        self.share_ops = True
        self.share_edges = True  # each edge's routing and mixture as shared functions too (with share_ops)
        self._build_all()

    # --- structure --------------------------------------------------------
    def edges(self, kind):
        """Every SupernetEdge of cells of ``kind`` (one list per cell)."""
        return [
            [edge for _, node_edges in cell.nodes for _, edge in node_edges]
            for cell in self.cells
            if (cell.reduction == (kind == "reduce"))
        ]

    def _build_all(self):
        """Create every variable once, eagerly, in mixed mode over all ops (so tracing never creates any)."""
        all_ops = tuple(range(self.space.num_ops))
        self.set_mixed({kind: (all_ops,) * self.space.num_edges for kind in KINDS})
        self.forward(tf.zeros((1,) + self.input_shape), training=False)
        # ops whose layers add losses (PCNN's amplitude loss) stay inline: the loss must be a tensor of the step
        self.shared_ops.inline = {
            id(op)
            for kind in KINDS
            for cell_edges in self.edges(kind)
            for edge in cell_edges
            for op in edge.ops
            if any(layer.losses for layer in op.layers)
        }

    def op_weights(self, kind, edge, op):
        return [w for cell_edges in self.edges(kind) for w in cell_edges[edge].ops[op].trainable_weights]

    @property
    def alpha_variables(self):
        return [v for kind in KINDS for v in self.alpha[kind]]

    def shared_weights(self):
        """Weights every path uses: stem, preprocessing, skips, classifier."""
        edge_ids = {
            id(w)
            for kind in KINDS
            for cell_edges in self.edges(kind)
            for edge in cell_edges
            for op in edge.ops
            for w in op.weights
        }
        return [w for w in self.all_weights() if id(w) not in edge_ids]

    def _shared_layers(self):
        """Layers every path goes through: stem, preprocessing, inter-cell skips, classifier."""
        layers = list(self.stem.layers) + self.classifier
        for cell in self.cells:
            for op in (cell.preprocess0, cell.preprocess1, cell.shortcut):
                if op is not None:
                    layers += op.layers
        return layers

    def _all_layers(self):
        return self._shared_layers() + [
            layer
            for kind in KINDS
            for cell_edges in self.edges(kind)
            for edge in cell_edges
            for op in edge.ops
            for layer in op.layers
        ]

    def _unique(self, attribute):
        seen, out = set(), []
        for layer in self._all_layers():
            for w in getattr(layer, attribute):
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    def all_weights(self):
        """Every trainable weight except α."""
        return self._unique("trainable_weights")

    def all_variables(self):
        """Every variable to checkpoint (weights, BN statistics, α)."""
        return self._unique("weights") + self.alpha_variables

    # --- modes ------------------------------------------------------------
    def set_layout(self, layout: Layout):
        self.layout = layout

    def set_paths(self, layout_ops: dict, routes: dict, sampled_paths: int | None = None):
        """Path mode. ``layout_ops[kind][edge]`` = the op indices in the graph (one per path slot);
        ``routes[kind][edge][p]`` = position in that tuple of the op path ``p`` takes (a permutation).
        The first ``sampled_paths`` paths are real samples and get a chunk of every batch; the other slots'
        ops only fill the layout: they serve no path and cost (almost) nothing."""
        layout = Layout("path", {kind: tuple(tuple(int(k) for k in c) for c in layout_ops[kind]) for kind in KINDS})
        self.set_layout(layout)
        sampled = layout.paths if sampled_paths is None else int(sampled_paths)
        for kind in KINDS:
            for e, route in enumerate(routes[kind]):
                owner = np.argsort(np.asarray(route)).astype(np.int32)  # candidate k serves path owner[k]
                self.owner[kind][e].assign(np.where(owner < sampled, owner, -1).astype(np.int32))
        self.paths = sampled
        self.path_count.assign(sampled)
        self.mixing.assign(0.0)

    def set_mixed(self, layout_ops: dict, remaining: dict | None = None):
        """Mixed mode over ``layout_ops[kind][edge]``; ops not in ``remaining`` take no part in the mixture."""
        self.set_layout(
            Layout("mixed", {kind: tuple(tuple(int(k) for k in r) for r in layout_ops[kind]) for kind in KINDS})
        )
        remaining = layout_ops if remaining is None else remaining
        for kind in KINDS:
            for e, ops in enumerate(remaining[kind]):
                candidates = self.layout.candidates[kind][e]
                self.owner[kind][e].assign(np.array([0 if op in ops else -1 for op in candidates], dtype=np.int32))
                mask = np.full(self.space.num_ops, -1e9, dtype=np.float32)
                mask[list(ops)] = 0.0
                self.alpha_mask[kind][e].assign(mask)
        self.paths = 1
        self.path_count.assign(1)
        self.mixing.assign(1.0)

    def masked_alpha(self, kind, edge):
        return self.alpha[kind][edge] + self.alpha_mask[kind][edge]

    def op_layers(self, kind, edge, op):
        """The layers of op ``op`` of edge ``edge`` in every cell of ``kind``."""
        return [layer for cell_edges in self.edges(kind) for layer in cell_edges[edge].ops[op].layers]

    def _layout_layers(self):
        layers = self._shared_layers()
        for kind in KINDS:
            for cell_edges in self.edges(kind):
                for edge, candidates in zip(cell_edges, self.layout.candidates[kind]):
                    for k in candidates:
                        layers += edge.ops[k].layers
        return layers

    def extra_losses(self):
        """Losses layers added in the last forward pass of this layout (e.g. PCNN amplitude loss, SPEC P1 Eq. 2)."""
        return [loss for layer in self._layout_layers() for loss in layer.losses]

    def mean_alpha_entropy(self):
        """Mean entropy of softmax(α) over the remaining ops of every edge (SPEC P2 Eq. 5's H(α)), as
        :meth:`DiversityRegularizer.mean_entropy <bnas_tf.space.losses.DiversityRegularizer.mean_entropy>`
        computes it; each edge is one row over its layout candidates (removed ops are masked to weight 0)."""
        rows = [
            tf.gather(self.masked_alpha(kind, edge), [list(candidates)], axis=-1)
            for kind in KINDS
            for edge, candidates in enumerate(self.layout.candidates[kind])
        ]
        return DiversityRegularizer.mean_entropy(rows)

    def alpha_values(self) -> dict:
        """α of every edge as nested lists (kind -> edge -> op)."""
        return {kind: [v.numpy().tolist() for v in self.alpha[kind]] for kind in KINDS}

    # --- computation ------------------------------------------------------
    def call_op(self, op, x, training):
        """``op`` on ``x``: inline, or through its signature's shared function while a graph is traced."""
        return self.shared_ops(op, x, training) if self.share_ops else op(x, training)

    @contextlib.contextmanager
    def alpha_gradient_ops(self):
        """The shared ops and edges traced inside differentiate α and the inputs, not the weights (the α step:
        no kernel gradients). Outside, a traced edge's mixture weights get no gradient."""
        previous, self.shared_ops.alpha_gradients = self.shared_ops.alpha_gradients, True
        try:
            yield
        finally:
            self.shared_ops.alpha_gradients = previous

    def _start_pass(self, x):
        """Rows of the batch each path owns and rows an op serving no path reads (never more than the batch),
        once per forward pass: every edge reads them (SupernetEdge._combined)."""
        rows = tf.shape(x)[0]
        self.chunk, self.filler_rows = rows // self.path_count, tf.minimum(FILLER_ROWS, rows)

    def by_path(self, tensor):
        """``tensor`` (rows first, as the batch) as (paths, rows of a path, ...): the paths' equal chunks of rows.
        The count is read when a graph runs, so a kept layout serves rounds with fewer sampled paths."""
        return tf.reshape(tensor, [self.path_count, -1] + tensor.shape[1:].as_list())

    def forward(self, x, training=None):
        return self.forward_with_features(x, training)[1]

    def forward_with_features(self, x, training=None):
        """``(features, logits)`` in one pass: the globally pooled features before the classifier (SPEC P4's
        last conv features, a face path's embedding) and the classifier's logits."""
        self._start_pass(x)
        s0, s1 = self.stem(x, training=training)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, training)
        features = self.classifier[0](s1)
        logits = features
        for layer in self.classifier[1:]:
            logits = layer(logits)
        return features, logits

    def function(self, name, build, *, any_mode: bool = False):
        """A tf.function for the current layout, traced once per (name, layout); with ``any_mode`` one per
        (name, candidates), shared by path and mixed mode (a function whose Python code does not read the mode)."""
        key = (name,) + (self.layout.graph_key if any_mode else self.layout.key)
        if key not in self._functions:
            self._functions[key] = build()
        return self._functions[key]

    # --- features for embedding-based scores (face verification, bnas_tf.face) ----------------------
    def features(self, x, training=None):
        """The globally pooled features before the classifier (a path's embedding for face verification)."""
        return self.forward_with_features(x, training)[0]
