"""Networks: the cell (written once), evaluation networks from genotypes, width backbones.

SPEC "Common": a cell preprocesses its two inputs (c_{k-2}, c_{k-1}) to C
channels (a factorised reduce when c_{k-2} is at twice the resolution),
computes each intermediate node as the sum of its edges and outputs the
concatenation of its ``concat`` nodes. The same :class:`Cell` serves the
evaluation network (one :class:`~bnas_tf.space.ops.Operation` per edge) and the
supernet (an edge object that mixes or routes several ops), so the searched
and the trained architecture cannot drift apart.

The stem and the classifier stay full precision (SPEC P2 §5.4, P3 §2).
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from bnas_tf import arguments
from bnas_tf.space import ops as ops_module
from bnas_tf.space.genotype import Genotype, WidthGenotype
from bnas_tf.space.quantizers import Binarization
from bnas_tf.space.quantizers import get as get_binarization

# DARTS' CIFAR stem widens to 3C channels; its ImageNet stem ends at C (see build_stem).
STEM_MULTIPLIER = 3


class Cell:
    """One cell. ``make_edge(index, node, source, stride, name)`` returns the edge callable or None (no edge).

    Only what reaches the cell output is built: an input is preprocessed only if an edge of a used node
    reads it (the supernet's edges read every node, so its cells preprocess both inputs)."""

    def __init__(
        self,
        *,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        binarization: Binarization,
        node_sources: list,
        make_edge: Callable,
        concat,
        out_channels_prev: int,
        inter_cell_skip: bool,
        name: str,
    ):
        self.channels = channels
        self.reduction = reduction
        self.concat = tuple(concat)
        self.name = name
        self.nodes = []  # [(node, [(source, edge), ...])]
        index = 0
        for node, sources in node_sources:
            edges = []
            for source in sources:
                stride = 2 if reduction and source < 2 else 1
                edge = make_edge(index, node, source, stride, f"{name}_e{index}_n{node}_from{source}")
                index += 1
                if edge is not None:
                    edges.append((source, edge))
            self.nodes.append((node, edges))
        self.used_nodes = self._used_nodes()
        # preprocessing of an unread input would reach the output only through an empty node's Zero, which reads
        # just its shape: weights with no gradient and MACs for nothing
        self.preprocess0 = self.preprocess1 = None
        if 0 in self.used_nodes:
            if reduction_prev:
                self.preprocess0 = ops_module.FactorizedReduce("preprocess", channels, binarization, f"{name}_pre0")
            else:
                self.preprocess0 = ops_module.Operation(
                    "preprocess", ops_module.conv_block(channels, 1, 1, binarization, f"{name}_pre0")
                )
        if 1 in self.used_nodes:
            self.preprocess1 = ops_module.Operation(
                "preprocess", ops_module.conv_block(channels, 1, 1, binarization, f"{name}_pre1")
            )
        stride = 2 if reduction else 1
        self.empty_node = ops_module.Zero(stride, name=f"{name}_empty")
        self.add_layers = {node: tf.keras.layers.Add(name=f"{name}_node{node}") for node, _ in self.nodes}
        self.concat_layer = tf.keras.layers.Concatenate(name=f"{name}_concat") if len(self.concat) > 1 else None
        self.shortcut = None
        if inter_cell_skip:
            out_channels = channels * len(self.concat)
            self.shortcut_add = tf.keras.layers.Add(name=f"{name}_skip_add")
            if reduction:
                self.shortcut = ops_module.FactorizedReduce("skip", out_channels, binarization, f"{name}_skip")
            elif out_channels != out_channels_prev:
                self.shortcut = ops_module.Operation(
                    "skip", ops_module.conv_block(out_channels, 1, 1, binarization, f"{name}_skip")
                )
            else:
                self.shortcut = ops_module.Operation("skip", [])

    @property
    def out_channels(self) -> int:
        return self.channels * len(self.concat)

    def _used_nodes(self) -> set:
        """The nodes whose value reaches the cell output: the ``concat`` nodes and, back along the edges, what
        they read (an input no edge of a used node reads is not used). A cell reading neither input still uses
        input 1, the tensor its empty nodes take their shape from."""
        used = set(self.concat)
        for node, edges in reversed(self.nodes):
            if node in used:
                used.update(source for source, _ in edges)
        return used if used & {0, 1} else used | {1}

    def __call__(self, s0, s1, training=None):
        states = {}
        if self.preprocess0 is not None:
            states[0] = self.preprocess0(s0, training)
        if self.preprocess1 is not None:
            states[1] = self.preprocess1(s1, training)
        for node, edges in self.nodes:
            if node not in self.used_nodes:
                continue
            terms = [edge(states[source], training) for source, edge in edges]
            if not terms:
                # both preprocessed inputs have the node's shape before the stride
                states[node] = self.empty_node(states[1] if 1 in states else states[0])
            elif len(terms) == 1:
                states[node] = terms[0]
            else:
                states[node] = self.add_layers[node](terms)
        outputs = [states[node] for node in self.concat]
        out = self.concat_layer(outputs) if self.concat_layer else outputs[0]
        if self.shortcut is not None:
            out = self.shortcut_add([out, self.shortcut(s1, training)])
        return out


def default_reduction_cells(cells: int) -> tuple:
    """DARTS rule: reduce at cells//3 and 2*cells//3 (P1's 6-cell search net: cells 2 and 4)."""
    if cells < 3:
        return (cells // 2,) if cells == 2 else ()
    return (cells // 3, 2 * cells // 3)


def _check_network_args(cells, channels, num_classes, input_shape, reduction_cells, stem):
    for label, value in (("cells", cells), ("channels", channels), ("num_classes", num_classes)):
        arguments.count(label, value)
    if channels % 2:
        raise ValueError(f"channels must be even (got {channels}): factorised reduce splits them in two halves")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 (got {num_classes})")
    if len(tuple(input_shape)) != 3 or any(not isinstance(d, int) or d <= 0 for d in input_shape):
        raise ValueError(f"input_shape must be (height, width, channels) of positive ints, got {tuple(input_shape)}")
    reduction_cells = default_reduction_cells(cells) if reduction_cells is None else tuple(reduction_cells)
    if len(set(reduction_cells)) != len(reduction_cells) or any(not 0 <= r < cells for r in reduction_cells):
        raise ValueError(f"reduction_cells must be distinct indices in 0..{cells - 1}, got {list(reduction_cells)}")
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet' (got {stem!r})")
    halvings = len(reduction_cells) + (3 if stem == "imagenet" else 0)
    smallest = min(input_shape[0], input_shape[1])
    if smallest < 2**halvings:
        raise ValueError(
            f"input {input_shape[0]}x{input_shape[1]} is too small for {halvings} halvings of resolution "
            f"(needs at least {2**halvings}x{2**halvings}); use fewer reduction cells or larger images"
        )
    return reduction_cells


def stem_channels(channels: int, stem: str) -> int:
    """Channels of the stem outputs the first cells read: 3C (CIFAR stem) or C (ImageNet stem).

    >>> stem_channels(36, "cifar"), stem_channels(64, "imagenet")
    (108, 64)
    """
    return STEM_MULTIPLIER * channels if stem == "cifar" else channels


def build_stem(x, channels: int, stem: str) -> tuple:
    """Full-precision stem of a network whose first cells have ``channels`` channels; returns ``(s0, s1)``,
    the inputs c_{k-2} and c_{k-1} of the first cell.

    CIFAR (DARTS NetworkCIFAR): a 3x3 conv to 3C + BN, read as both inputs. ImageNet (DARTS
    NetworkImageNet, which P1 follows and P2's ``src/model_imagenet.py`` copies): three stride-2 3x3 convs
    to C/2, C and C (224 -> 28 pixels); s0 is the second conv's output (1/4 resolution, DARTS' stem0),
    s1 the third's (1/8, stem1), so the first cell reduces s0 as after a reduction cell. A stem as wide as
    the CIFAR one (3C) would cost about six times the FLOPs of P2 Table 7's BNAS-D and BNAS-E.
    """
    if stem == "cifar":
        width = stem_channels(channels, stem)
        x = tf.keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(x)
        x = ops_module.batch_norm(name="stem_bn")(x)
        return x, x
    outputs = []
    for i, width in enumerate((channels // 2, channels, channels)):
        if i:
            x = tf.keras.layers.ReLU(name=f"stem{i}_relu")(x)
        x = tf.keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"stem{i}_conv")(x)
        x = ops_module.batch_norm(name=f"stem{i}_bn")(x)
        outputs.append(x)
    return outputs[1], outputs[2]


def build_cells(
    genotype_cells: dict,
    *,
    cells,
    channels,
    binarization,
    reduction_cells,
    inter_cell_skip,
    stem,
    make_edge_for: Callable,
) -> list:
    """Create the stacked cells after ``stem`` (see :func:`build_stem`). ``genotype_cells[kind] =
    (node_sources, concat)`` for kind normal/reduce; ``make_edge_for(kind, cell_index)`` returns that
    cell's ``make_edge``."""
    stack, c = [], channels
    out_prev = stem_channels(channels, stem)
    reduction_prev = stem == "imagenet"  # its s0 has twice the resolution of s1
    for index in range(cells):
        reduction = index in reduction_cells
        if reduction:
            c *= 2
        kind = "reduce" if reduction else "normal"
        node_sources, concat = genotype_cells[kind]
        cell = Cell(
            channels=c,
            reduction=reduction,
            reduction_prev=reduction_prev,
            binarization=binarization,
            node_sources=node_sources,
            make_edge=make_edge_for(kind, index),
            concat=concat,
            out_channels_prev=out_prev,
            inter_cell_skip=inter_cell_skip,
            name=f"cell{index}",
        )
        stack.append(cell)
        reduction_prev = reduction
        out_prev = cell.out_channels
    return stack


def auxiliary_head(x, num_classes: int):
    """DARTS auxiliary classifier (full precision), adapted to small feature maps with 'same' pooling."""
    x = tf.keras.layers.ReLU(name="aux_relu")(x)
    x = tf.keras.layers.AveragePooling2D(5, strides=3, padding="same", name="aux_pool")(x)
    x = tf.keras.layers.Conv2D(128, 1, use_bias=False, name="aux_conv")(x)
    x = ops_module.batch_norm(name="aux_bn")(x)
    x = tf.keras.layers.ReLU(name="aux_relu2")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="aux_gap")(x)
    return tf.keras.layers.Dense(num_classes, name="aux_logits")(x)


def classifier(x, num_classes: int, name: str = "logits"):
    x = tf.keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    return tf.keras.layers.Dense(num_classes, name=name)(x)


def build_network(
    genotype: Genotype,
    *,
    cells: int = 8,
    channels: int = 16,
    num_classes: int = 10,
    input_shape: tuple = (32, 32, 3),
    binarization: Binarization | str | dict = "W1/A32",
    inter_cell_skip: bool = False,
    auxiliary: bool = False,
    reduction_cells: tuple | None = None,
    stem: str = "cifar",
    lce_friendly: bool = False,
    name: str | None = None,
) -> tf.keras.Model:
    """The evaluation network of a genotype, as a functional Keras model returning logits.

    A full-precision stem, ``cells`` stacked cells (SPEC "Common": each node the sum of its edges, the
    cell output the concatenation of its ``concat`` nodes; the channels double at every reduction cell)
    and a full-precision classifier (global average pooling + Dense).

    ``lce_friendly=True`` (W1/A1 only) rounds the cell channels up to a multiple of 32 (LCE packs binary
    inputs in 32-channel words) and refuses ops LCE would not run as binary kernels.

    With ``auxiliary=True`` the model returns ``[logits, aux_logits]`` (head after
    the second reduction, DARTS style). Zeroise edges are kept as "no edge":
    they add nothing and never reach the graph or the flatbuffer.

    Args:
        genotype: the normal and reduction cell (:class:`~bnas_tf.space.genotype.Genotype`).
        cells: number of stacked cells (default 8).
        channels: channels of the first cells, even (default 16).
        num_classes: number of logits, at least 2 (default 10).
        input_shape: ``(height, width, channels)`` of positive ints (default ``(32, 32, 3)``).
        binarization: a :class:`~bnas_tf.space.quantizers.Binarization`, its config dict or a tag such as
            ``"W1/A1"`` (default ``"W1/A32"``).
        inter_cell_skip: add SPEC P2's skip connections between cells (default False).
        auxiliary: add the DARTS auxiliary head (default False).
        reduction_cells: indices of the reduction cells; default (None) ``cells // 3`` and
            ``2 * cells // 3`` (:func:`default_reduction_cells`).
        stem: ``"cifar"`` (3x3 conv + BN, default) or ``"imagenet"`` (three stride-2 convs, P1).
        lce_friendly: W1/A1 only; see above (default False).
        name: the model's name; default the genotype's name, else ``"bnas_network"``.

    Returns:
        A ``tf.keras.Model`` from ``image`` to the logits (``[logits, aux_logits]`` with ``auxiliary``).

    Raises:
        TypeError: ``genotype`` is not a ``Genotype`` (width genes go to :func:`build_width_network`),
            or ``binarization`` is not a Binarization, dict or tag.
        ValueError: an unknown binarization; ``cells``, ``channels`` or ``num_classes`` not a positive
            integer, odd ``channels``, fewer than 2 classes, a bad ``input_shape``, ``reduction_cells`` or
            ``stem``, an input too small for the resolution halvings; with ``lce_friendly``, ops that LCE
            does not run binary or activations that are not 1-bit.
    """
    if not isinstance(genotype, Genotype):
        raise TypeError(
            f"build_network needs a Genotype (got {type(genotype).__name__}); for width genes use build_width_network"
        )
    binarization = get_binarization(binarization)
    if lce_friendly:
        ops_module.check_lce_friendly([op for op, _ in genotype.normal + genotype.reduce], binarization, "the genotype")
        channels = ops_module.lce_channels(channels) if isinstance(channels, int) and channels > 0 else channels
    reduction_cells = _check_network_args(cells, channels, num_classes, tuple(input_shape), reduction_cells, stem)

    def make_edge_for(kind, cell_index):
        ops_by_index = [op for op, _ in getattr(genotype, kind)]

        def make_edge(index, node, source, stride, edge_name):
            op = ops_by_index[index]
            if op == "zero":
                return None
            return ops_module.build_op(op, channels_of[cell_index], stride, binarization, name_prefix=edge_name)

        return make_edge

    channels_of, c = {}, channels
    for index in range(cells):
        if index in reduction_cells:
            c *= 2
        channels_of[index] = c
    genotype_cells = {
        kind: (
            [(node, [source for _, source in edges]) for node, edges in genotype.cell_nodes(kind)],
            getattr(genotype, f"{kind}_concat"),
        )
        for kind in ("normal", "reduce")
    }
    stack = build_cells(
        genotype_cells,
        cells=cells,
        channels=channels,
        binarization=binarization,
        reduction_cells=reduction_cells,
        inter_cell_skip=inter_cell_skip,
        stem=stem,
        make_edge_for=make_edge_for,
    )
    inputs = tf.keras.Input(shape=tuple(input_shape), name="image")
    s0, s1 = build_stem(inputs, channels, stem)
    aux_logits = None
    aux_position = reduction_cells[-1] if reduction_cells else None
    for index, cell in enumerate(stack):
        s0, s1 = s1, cell(s0, s1)
        if auxiliary and index == aux_position:
            aux_logits = auxiliary_head(s1, num_classes)
    logits = classifier(s1, num_classes)
    outputs = [logits, aux_logits] if auxiliary and aux_logits is not None else logits
    return tf.keras.Model(inputs, outputs, name=name or (genotype.name or "bnas_network"))


# --- width search backbones (SPEC P3): base widths in bnas_tf.space.backbones ----------


def _vgg_small(x, widths, binarization):
    x = tf.keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="conv0")(x)
    x = ops_module.batch_norm(name="conv0_bn")(x)
    for i, width in enumerate(widths[1:], start=1):
        x = ops_module.Operation("conv", ops_module.conv_block(width, 3, 1, binarization, f"conv{i}"))(x)
        if i % 2 == 1:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i}")(x)
    return x


def _resnet18(x, widths, binarization, large_input: bool):
    if large_input:
        x = tf.keras.layers.Conv2D(widths[0], 7, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = ops_module.batch_norm(name="stem_bn")(x)
        x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = tf.keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(x)
        x = ops_module.batch_norm(name="stem_bn")(x)
    in_channels = widths[0]
    for block in range(8):
        stride = 2 if block in (2, 4, 6) else 1
        mid, out = widths[1 + 2 * block], widths[2 + 2 * block]
        name = f"block{block}"
        y = ops_module.Operation("conv", ops_module.conv_block(mid, 3, stride, binarization, f"{name}_a"))(x)
        y = ops_module.Operation("conv", ops_module.conv_block(out, 3, 1, binarization, f"{name}_b"))(y)
        if stride != 1 or in_channels != out:
            x = ops_module.Operation("conv", ops_module.conv_block(out, 1, stride, binarization, f"{name}_shortcut"))(x)
        x = tf.keras.layers.Add(name=f"{name}_add")([x, y])
        in_channels = out
    return x


def build_width_network(
    width_genotype: WidthGenotype,
    *,
    num_classes: int = 10,
    input_shape: tuple = (32, 32, 3),
    binarization: Binarization | str | dict = "W1/A1",
    lce_friendly: bool = False,
    width_multiplier: float = 1.0,
    name: str | None = None,
) -> tf.keras.Model:
    """VGG-small or ResNet-18 with the per-layer widths of ``width_genotype`` (SPEC P3).

    Each layer's width is the backbone's base width times the gene's ratio for that layer. The first conv
    and the classifier stay full precision (SPEC P3 §2). ResNet-18 uses an ImageNet stem (7x7 stride-2
    conv + max pool) on inputs of at least 128 pixels, else a 3x3 conv.

    ``width_multiplier`` scales the backbone's base widths (VGG-small 128..512) before the ratios apply:
    1.0 is the paper's network, 0.125 a test-sized one.

    Args:
        width_genotype: backbone and per-layer ratios (:class:`~bnas_tf.space.genotype.WidthGenotype`).
        num_classes: number of logits, at least 2 (default 10).
        input_shape: ``(height, width, channels)`` of positive ints (default ``(32, 32, 3)``).
        binarization: a :class:`~bnas_tf.space.quantizers.Binarization`, its config dict or a tag such as
            ``"W1/A1"`` (default ``"W1/A1"``).
        lce_friendly: round every width up to a multiple of 32, LCE's packing (default False).
        width_multiplier: finite number > 0 scaling the base widths (default 1.0).
        name: the model's name; default the gene's name, else the backbone's.

    Returns:
        A ``tf.keras.Model`` from ``image`` to the logits.

    Raises:
        TypeError: ``width_genotype`` is not a ``WidthGenotype``, or ``binarization`` is not a
            Binarization, dict or tag.
        ValueError: an unknown binarization, fewer than 2 classes, a bad ``input_shape``, an input too
            small for the backbone's resolution halvings, or a ``width_multiplier`` that is not a finite
            number > 0.
    """
    if not isinstance(width_genotype, WidthGenotype):
        raise TypeError(f"build_width_network needs a WidthGenotype (got {type(width_genotype).__name__})")
    binarization = get_binarization(binarization)
    halvings = 3 if width_genotype.backbone == "vgg_small" else 3 + (2 if min(input_shape[:2]) >= 128 else 0)
    _check_network_args(1, 2, num_classes, tuple(input_shape), (), "cifar")
    if min(input_shape[:2]) < 2**halvings:
        raise ValueError(
            f"input {input_shape[0]}x{input_shape[1]} is too small for {width_genotype.backbone}'s "
            f"{halvings} halvings of resolution (needs at least {2**halvings}x{2**halvings})"
        )
    if (
        isinstance(width_multiplier, bool)
        or not isinstance(width_multiplier, (int, float))
        or not math.isfinite(width_multiplier)
        or width_multiplier <= 0
    ):
        raise ValueError(f"width_multiplier must be a finite number > 0, got {width_multiplier!r}")
    widths = width_genotype.channels(lce_friendly, float(width_multiplier))
    inputs = tf.keras.Input(shape=tuple(input_shape), name="image")
    if width_genotype.backbone == "vgg_small":
        x = _vgg_small(inputs, widths, binarization)
    else:
        x = _resnet18(inputs, widths, binarization, large_input=min(input_shape[:2]) >= 128)
    logits = classifier(x, num_classes)
    return tf.keras.Model(inputs, logits, name=name or (width_genotype.name or width_genotype.backbone))
