"""Published cells as library data (SPEC P2 §5).

P2 (BNAS, Kim, Singh & Choi, ECCV 2020) publishes its searched cells in its
code, in the DARTS genotype layout, with its own op names. They ship here as
JSON files (``bnas_tf/space/published_cells/``, copied unchanged from the source)
and load as ordinary :class:`~bnas_tf.space.genotype.Genotype` objects whose ops
are mapped to bnas-tf's names through :data:`bnas_tf.space.ops.P2_OP_NAMES` and
whose ``name`` is the published one, so they train and convert like any
searched genotype:

    >>> from bnas_tf.space import published
    >>> published.names()
    ('p2_bnas_cifar10', 'p2_bnas_imagenet')
    >>> published.P2_BNAS_CIFAR10.normal[:2]
    (('zero', 1), ('dilated_conv_3x3', 0))
    >>> published.info("p2_bnas_cifar10").trained_as["BNAS-A"]["cells"]
    20

``bnas_tf.build_network(bnas_tf.space.published.P2_BNAS_CIFAR10, cells=20, channels=36,
binarization="W1/A1")`` is BNAS-A's evaluation network; ``bnas-tf lint
p2_bnas_cifar10`` shows what LCE makes of it. P1 and P4 publish their cells
only as figures, so they are not here.
"""

from __future__ import annotations

import dataclasses
import json
import types
from importlib import resources

from bnas_tf.space import ops as ops_module
from bnas_tf.space.genotype import Genotype

__all__ = ["P2_BNAS_CIFAR10", "P2_BNAS_IMAGENET", "PublishedGenotype", "from_dict", "get", "info", "names"]

DATA_PACKAGE = "bnas_tf.space"
DATA_FOLDER = "published_cells"
# Keys of a published file that are about the paper, not the architecture.
METADATA_FIELDS = ("paper", "source", "trained_as")
# Op names of each published source, mapped to bnas-tf's; bnas-tf's own names map to themselves.
SOURCE_OP_NAMES = {"BINARY_OPS": ops_module.P2_OP_NAMES}


@dataclasses.dataclass(frozen=True)
class PublishedGenotype:
    """A published architecture: the bnas-tf ``genotype`` plus where it comes from.

    ``paper`` and ``source`` cite it, ``trained_as`` holds the settings and
    results the paper reports for it (e.g. ``{"BNAS-A": {"cells": 20,
    "channels": 36, "cifar10_top1": 92.7}}``), and ``source_normal`` /
    ``source_reduce`` keep its cells with the source's own op names.
    """

    name: str
    genotype: Genotype
    paper: str = ""
    source: str = ""
    trained_as: types.MappingProxyType = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}), hash=False
    )
    source_normal: tuple = ()
    source_reduce: tuple = ()


def _map_cell(edges, op_names: dict, name: str, cell: str) -> tuple:
    if not isinstance(edges, list):
        raise ValueError(f"published genotype {name!r}: {cell} must be a list of [op, input_node] pairs")
    mapped = []
    for k, edge in enumerate(edges):
        if not isinstance(edge, list) or len(edge) != 2 or not isinstance(edge[0], str):
            raise ValueError(f"published genotype {name!r}: {cell} edge {k} must be [op, input_node], got {edge!r}")
        op, source = edge
        if op in op_names:
            op = op_names[op]
        elif op not in ops_module.OPS:
            known = sorted(set(op_names) | set(ops_module.OPS))
            raise ValueError(
                f"published genotype {name!r}: {cell} edge {k} uses unknown op {op!r}; known: {', '.join(known)}"
            )
        mapped.append((op, source))
    return tuple(mapped)


def _frozen(value):
    """Read-only view of nested JSON metadata."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def from_dict(data: dict) -> PublishedGenotype:
    """A :class:`PublishedGenotype` from a published-layout dict (source op names, metadata fields).

    Fields ``name``, ``normal`` and ``reduce`` are required; ``op_set``,
    ``nodes``, ``*_concat`` are the :class:`~bnas_tf.space.genotype.Genotype`
    fields; ``paper``, ``source`` and ``trained_as`` are kept as metadata.
    Op names of the source (P2's ``bin_conv_3x3``, ``none``, ...) are mapped
    to bnas-tf's (``conv_3x3``, ``zero``, ...).

    Raises:
        ValueError: naming the missing field, unknown field or unknown op.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a published genotype must be a JSON object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a published genotype needs a non-empty 'name' string")
    architecture = {k: v for k, v in data.items() if k not in METADATA_FIELDS}
    for required in ("normal", "reduce"):
        if required not in architecture:
            raise ValueError(f"published genotype {name!r} is missing {required!r}")
    op_names = SOURCE_OP_NAMES.get(architecture.get("op_set"), {})
    for cell in ("normal", "reduce"):
        architecture[cell] = _map_cell(architecture[cell], op_names, name, cell)
    genotype = Genotype.from_dict(architecture)
    return PublishedGenotype(
        name=name,
        genotype=genotype,
        paper=str(data.get("paper", "")),
        source=str(data.get("source", "")),
        trained_as=_frozen(dict(data.get("trained_as", {}))),
        source_normal=tuple(tuple(edge) for edge in data["normal"]),
        source_reduce=tuple(tuple(edge) for edge in data["reduce"]),
    )


def _load_all() -> dict:
    published = {}
    folder = resources.files(DATA_PACKAGE) / DATA_FOLDER
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            record = from_dict(json.loads(entry.read_text()))
            published[record.name] = record
    return published


_PUBLISHED = _load_all()


def names() -> tuple:
    """Names of the published genotypes, sorted (the names ``get`` and ``bnas-tf lint`` accept)."""
    return tuple(sorted(_PUBLISHED))


def info(name: str) -> PublishedGenotype:
    """The published record of ``name``: genotype plus paper, source, trained_as and the source's op names.

    Raises:
        ValueError: ``name`` is not published here (the message lists the names that are).
    """
    if not isinstance(name, str):
        raise TypeError(f"a published genotype name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _PUBLISHED:
        raise ValueError(f"unknown published genotype {name!r}; published: {', '.join(names())}")
    return _PUBLISHED[key]


def get(name: str) -> Genotype:
    """The published genotype ``name`` (case-insensitive), with bnas-tf op names.

    >>> get("p2_bnas_imagenet").name
    'p2_bnas_imagenet'
    """
    return info(name).genotype


P2_BNAS_CIFAR10 = get("p2_bnas_cifar10")
P2_BNAS_IMAGENET = get("p2_bnas_imagenet")
