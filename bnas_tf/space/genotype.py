"""Discrete architectures: cell genotypes (SPEC "Common") and width genes (SPEC P3).

A cell has two input nodes (0: output of cell k-2, 1: output of cell k-1)
and ``nodes`` intermediate nodes numbered 2, 3, ...; an edge is
``(op, input_node)``. Edges are listed node by node, either

* all of them (P1/P4 keep every edge): node j has j + 2 edges, one from each
  earlier node in order, ``nodes * (nodes + 3) / 2`` edges in all (14 for 4
  nodes); or
* two per node (DARTS/P2 discretisation), ``2 * nodes`` edges in all (8).

The JSON form mirrors the published DARTS layout used in ../shared/genotypes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import numpy as np

from bnas_tf import arguments
from bnas_tf.files import atomic_write_text
from bnas_tf.space import ops as ops_module
from bnas_tf.space.backbones import BACKBONES, scaled_channels

WIDTH_RATIOS = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)

_GENOTYPE_FIELDS = ("name", "op_set", "nodes", "normal", "normal_concat", "reduce", "reduce_concat")


def full_edge_count(nodes: int) -> int:
    """Edges of a cell that keeps every edge: 2 + 3 + ... + (nodes + 1)."""
    return nodes * (nodes + 3) // 2


def edge_inputs(nodes: int) -> list[tuple[int, int]]:
    """(node, input) of every edge of a full cell, in genotype order."""
    return [(node, source) for node in range(2, nodes + 2) for source in range(node)]


def _as_edges(edges, cell: str) -> tuple:
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise ValueError(f"{cell} cell must be a list of [op, input_node] pairs, got {type(edges).__name__}")
    out = []
    for k, edge in enumerate(edges):
        if not isinstance(edge, Sequence) or isinstance(edge, str) or len(edge) != 2:
            raise ValueError(f"{cell} cell edge {k} must be a pair [op, input_node], got {edge!r}")
        op, source = edge
        if not isinstance(op, str):
            raise ValueError(f"{cell} cell edge {k}: op must be a string, got {op!r}")
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
            raise ValueError(f"{cell} cell edge {k}: input node must be an integer, got {source!r}")
        out.append((op, int(source)))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Genotype:
    """Normal and reduction cell of a searched (or random) architecture.

    A cell has two input nodes (0: output of cell k-2, 1: output of cell k-1) and ``nodes`` intermediate
    nodes numbered 2, 3, ... (SPEC "Common"). Each cell lists its edges ``(op, input_node)`` node by node:
    all of them (P1/P4, ``nodes * (nodes + 3) / 2`` edges, each node's inputs in order) or two per node
    from two different inputs (DARTS/P2 discretisation, ``2 * nodes`` edges). The genotype is frozen and
    checked on construction; ``to_json`` / ``from_json`` / ``save`` / ``load`` serialise it and ``plot``
    draws both cells.

    Args:
        normal: the normal cell's edges, a sequence of ``(op, input_node)`` pairs.
        reduce: the reduction cell's edges, in the same form.
        normal_concat: intermediate nodes the normal cell outputs (concatenated); default (None) all of
            them, ``2 .. nodes + 1``.
        reduce_concat: the same for the reduction cell.
        op_set: the ops the cells may use, an op set name (``"DARTS_BINARY_OPS"``, the default,
            ``"BINARY_OPS"``, ``"LCE_FRIENDLY_OPS"``) or a sequence of op names (stored as a tuple).
        nodes: intermediate nodes per cell, a positive integer (default 4).
        name: optional name, used as the built model's name.

    Raises:
        ValueError: a bad ``nodes`` or op set, a malformed edge, an edge count that is neither every edge
            nor two per node, an op outside ``op_set``, an input node out of range, a full cell whose
            inputs are out of order, a pruned node with both edges from one input, or an empty,
            out-of-range or repeated ``*_concat``.
    """

    normal: tuple
    reduce: tuple
    normal_concat: tuple | None = None
    reduce_concat: tuple | None = None
    op_set: str | tuple = "DARTS_BINARY_OPS"
    nodes: int = 4
    name: str | None = None

    def __post_init__(self):
        arguments.count("nodes", self.nodes)
        allowed = ops_module.get_op_set(self.op_set)
        default_concat = tuple(range(2, self.nodes + 2))
        for cell in ("normal", "reduce"):
            edges = _as_edges(getattr(self, cell), cell)
            object.__setattr__(self, cell, edges)
            self._check_cell(cell, edges, allowed)
            concat = getattr(self, f"{cell}_concat")
            concat = default_concat if concat is None else tuple(concat)
            self._check_concat(cell, concat)
            object.__setattr__(self, f"{cell}_concat", tuple(int(c) for c in concat))
        if not isinstance(self.op_set, str):
            object.__setattr__(self, "op_set", tuple(allowed))

    @property
    def keeps_all_edges(self) -> bool:
        return len(self.normal) == full_edge_count(self.nodes)

    def _check_cell(self, cell, edges, allowed):
        full, pruned = full_edge_count(self.nodes), 2 * self.nodes
        if len(edges) not in (full, pruned):
            raise ValueError(
                f"{cell} cell has {len(edges)} edges; a cell with {self.nodes} nodes needs {full} "
                f"(every edge) or {pruned} (two per node)"
            )
        for op, _ in edges:
            ops_module.check_op(op)
            if op not in allowed:
                raise ValueError(
                    f"{cell} cell uses op {op!r}, which is not in op set {self.op_set!r}: {', '.join(allowed)}"
                )
        for node, node_edges in self._node_edges(edges):
            sources = [source for _, source in node_edges]
            for source in sources:
                if not 0 <= source < node:
                    raise ValueError(f"{cell} cell node {node}: input node {source} out of range 0..{node - 1}")
            if len(edges) == full and self.nodes > 1 and sources != list(range(node)):
                raise ValueError(
                    f"{cell} cell node {node}: a full cell lists inputs {list(range(node))} in order, got {sources}"
                )
            if len(edges) == pruned and len(set(sources)) != len(sources):
                raise ValueError(
                    f"{cell} cell node {node}: both edges come from node {sources[0]}; use two different inputs"
                )

    def _check_concat(self, cell, concat):
        if not concat:
            raise ValueError(
                f"{cell}_concat is empty; list the intermediate nodes the cell outputs "
                f"(e.g. {list(range(2, self.nodes + 2))})"
            )
        for c in concat:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 2 <= c < self.nodes + 2:
                raise ValueError(f"{cell}_concat entry {c!r} is not an intermediate node 2..{self.nodes + 1}")
        if len(set(concat)) != len(concat):
            raise ValueError(f"{cell}_concat repeats a node: {list(concat)}")

    def _node_edges(self, edges):
        per_node = [node for node in range(2, self.nodes + 2)]
        if len(edges) == full_edge_count(self.nodes):
            counts = [node for node in per_node]
        else:
            counts = [2] * self.nodes
        start = 0
        for node, count in zip(per_node, counts):
            yield node, edges[start : start + count]
            start += count

    def cell_nodes(self, cell: str):
        """[(node, [(op, input), ...]), ...] of ``"normal"`` or ``"reduce"``."""
        return list(self._node_edges(getattr(self, cell)))

    # --- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "op_set": self.op_set if isinstance(self.op_set, str) else list(self.op_set),
            "nodes": self.nodes,
            "normal": [list(edge) for edge in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(edge) for edge in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        if not isinstance(data, dict):
            raise ValueError(f"a genotype must be a JSON object, got {type(data).__name__}")
        if "backbone" in data:
            raise ValueError("this is a width genotype (it has 'backbone'); load it with WidthGenotype.from_json")
        unknown = sorted(set(data) - set(_GENOTYPE_FIELDS))
        if unknown:
            raise ValueError(f"unknown genotype fields {unknown}; known fields: {', '.join(_GENOTYPE_FIELDS)}")
        for required in ("normal", "reduce"):
            if required not in data:
                raise ValueError(
                    f"genotype is missing {required!r}: give the {required} cell as a list of [op, input_node]"
                )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"genotype is not valid JSON ({error}); write it with Genotype.to_json") from None
        return cls.from_dict(data)

    def save(self, path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path) -> Genotype:
        with open(path) as f:
            return cls.from_json(f.read())

    # --- constructors ---------------------------------------------------
    @classmethod
    def random(
        cls, op_set="DARTS_BINARY_OPS", *, seed: int = 0, nodes: int = 4, all_edges: bool | None = None
    ) -> Genotype:
        """A valid random architecture: the baseline every search must beat.

        ``all_edges`` defaults to True for P1/P4's DARTS set (every edge kept)
        and False for P2's set (two random inputs per node).
        """
        choices = ops_module.get_op_set(op_set)
        if all_edges is None:
            all_edges = op_set != "BINARY_OPS"
        rng = np.random.default_rng(seed)

        def cell():
            if all_edges:
                return [(str(rng.choice(choices)), source) for _, source in edge_inputs(nodes)]
            edges = []
            for node in range(2, nodes + 2):
                sources = sorted(rng.choice(node, size=2, replace=False)) if node > 1 else [0, 1]
                edges += [(str(rng.choice(choices)), int(s)) for s in sources]
            return edges

        return cls(normal=cell(), reduce=cell(), op_set=op_set, nodes=nodes, name=f"random_seed{seed}")

    def plot(self, path) -> None:
        from bnas_tf.space.plots import plot_genotype  # lazy: matplotlib loads only when a plot is drawn

        plot_genotype(self, path)


@dataclasses.dataclass(frozen=True)
class WidthGenotype:
    """Per-layer channel expansion ratios over a fixed backbone (SPEC P3).

    Layer ``i`` of the built network (:func:`~bnas_tf.space.networks.build_width_network`) has
    ``base_i * ratios[i]`` channels, ``base_i`` the backbone's base width of that layer
    (:data:`~bnas_tf.space.backbones.BACKBONES`). The gene is frozen and checked on construction;
    ``uniform`` and ``random`` make one, ``to_json`` / ``from_json`` / ``save`` / ``load`` serialise it.

    Args:
        backbone: ``"vgg_small"`` or ``"resnet18"`` (a key of ``BACKBONES``).
        ratios: one expansion ratio per searchable layer of the backbone, each one of
            :data:`WIDTH_RATIOS` (0.25, 0.5, 1, 2, 3, 4); stored as a tuple of floats.
        name: optional name, used as the built model's name.

    Raises:
        ValueError: an unknown backbone, ``ratios`` that are not a list of numbers, the wrong number of
            ratios for the backbone, or a ratio outside ``WIDTH_RATIOS``.
    """

    backbone: str
    ratios: tuple
    name: str | None = None

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; known backbones: {', '.join(BACKBONES)}")
        if isinstance(self.ratios, (str, bytes)) or not isinstance(self.ratios, Sequence):
            raise ValueError(f"ratios must be a list of numbers, got {type(self.ratios).__name__}")
        ratios = tuple(float(r) if isinstance(r, (int, float)) and not isinstance(r, bool) else r for r in self.ratios)
        expected = len(BACKBONES[self.backbone])
        if len(ratios) != expected:
            raise ValueError(f"backbone {self.backbone!r} has {expected} searchable layers, got {len(ratios)} ratios")
        for i, r in enumerate(ratios):
            if not isinstance(r, float) or not any(math.isclose(r, a) for a in WIDTH_RATIOS):
                raise ValueError(f"ratio {i} is {r!r}; each ratio must be one of {list(WIDTH_RATIOS)}")
        object.__setattr__(self, "ratios", ratios)

    def channels(self, lce_friendly: bool = False, width_multiplier: float = 1.0) -> list[int]:
        """Channel count of each searchable layer: base width (times ``width_multiplier``) times ratio."""
        bases = [max(1, int(round(base * width_multiplier))) for base in BACKBONES[self.backbone]]
        return [scaled_channels(base, r, lce_friendly) for base, r in zip(bases, self.ratios)]

    @classmethod
    def uniform(cls, backbone: str, ratio: float = 1.0) -> WidthGenotype:
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known backbones: {', '.join(BACKBONES)}")
        return cls(backbone, (float(ratio),) * len(BACKBONES[backbone]), name=f"{backbone}_uniform_{ratio:g}x")

    @classmethod
    def random(cls, backbone: str = "vgg_small", *, seed: int = 0) -> WidthGenotype:
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known backbones: {', '.join(BACKBONES)}")
        rng = np.random.default_rng(seed)
        return cls(
            backbone, tuple(float(rng.choice(WIDTH_RATIOS)) for _ in BACKBONES[backbone]), name=f"random_seed{seed}"
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "backbone": self.backbone, "ratios": list(self.ratios)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> WidthGenotype:
        if not isinstance(data, dict):
            raise ValueError(f"a width genotype must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"name", "backbone", "ratios"})
        if unknown:
            raise ValueError(f"unknown width genotype fields {unknown}; known fields: name, backbone, ratios")
        for required in ("backbone", "ratios"):
            if required not in data:
                raise ValueError(f"width genotype is missing {required!r}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> WidthGenotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"width genotype is not valid JSON ({error})") from None
        return cls.from_dict(data)

    def save(self, path) -> None:
        atomic_write_text(path, self.to_json())


def load_any(path_or_text):
    """A Genotype or WidthGenotype from a JSON file path or JSON text."""
    text = str(path_or_text)
    if not text.lstrip().startswith("{"):
        try:
            with open(text) as f:
                text = f.read()
        except OSError as error:
            raise ValueError(f"cannot read genotype file {path_or_text!r}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"genotype {path_or_text!r} is not valid JSON ({error}); is the file complete? "
            "genotypes are written by Genotype.save / WidthGenotype.save"
        ) from None
    if isinstance(data, dict) and "backbone" in data:
        return WidthGenotype.from_dict(data)
    return Genotype.from_dict(data)
