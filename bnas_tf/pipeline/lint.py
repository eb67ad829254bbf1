"""``bnas-tf lint MODEL_OR_GENOTYPE``: what Larq Compute Engine will run as binary, before anyone trains.

``MODEL_OR_GENOTYPE`` is a published genotype name (``bnas-tf lint
p2_bnas_cifar10``), a genotype JSON file (cell or width genotype, bnas-tf's
layout or a published one with the source's op names), a run folder, or a
saved model (``.keras``, SavedModel folder). Genotypes are built with
``--cells``, ``--channels``, ``--input-shape`` and ``--binarization``
(W1/A1 by default: only 1-bit activations give LCE binary kernels).

Prints one row per conv and dense layer (``--all``: every layer): its kind
(binary kernel, float, rejected), MACs, TFLite ops and the reason; then the
totals of :func:`bnas_tf.deploy.lce_profile.lce_profile`: accelerated binary MACs, float
MACs and the part of them in fallback ops, kernel op counts and the expected
.tflite size. Exit status 1 when a layer would be refused by
``bnas-tf convert``.
"""

from __future__ import annotations

import collections
import json
import os

from bnas_tf.convert import load_model
from bnas_tf.deploy.lce_profile import BINARY, FLOAT, FOLDED, KERNEL_OPS, REJECTED, lce_profile
from bnas_tf.pipeline.commands import DEFAULT_BINARIZATION, DEFAULT_CELLS, DEFAULT_CHANNELS, DEFAULT_INPUT_SHAPE
from bnas_tf.space import published
from bnas_tf.space.genotype import Genotype, WidthGenotype
from bnas_tf.space.networks import build_network, build_width_network

GENOTYPE_FILE = "genotype.json"  # in a run folder, written by bnas-tf search
KIND_LABELS = {BINARY: "binary kernel", FLOAT: "float", REJECTED: "rejected", FOLDED: "folded"}
_CELL_OPTIONS = ("cells", "channels", "stem", "auxiliary", "inter_cell_skip")


# --------------------------------------------------------------------------
# What to lint.


def _genotype_from_file(path: str):
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"genotype file {path} is not valid JSON ({error})") from None
    if isinstance(data, dict) and "backbone" in data:
        return WidthGenotype.from_dict(data), None
    if isinstance(data, dict) and set(published.METADATA_FIELDS) & set(data):
        record = published.from_dict(data)
        return record.genotype, record
    return Genotype.from_dict(data), None


def resolve(target: str):
    """``("model", keras model)`` or ``("genotype", genotype, published record or None)`` for ``target``."""
    if target.strip().lower() in published.names():
        record = published.info(target)
        return "genotype", record.genotype, record
    saved = ("model.keras", "saved_model.pb")
    if os.path.isdir(target) and not any(os.path.exists(os.path.join(target, f)) for f in saved):
        if os.path.isfile(os.path.join(target, GENOTYPE_FILE)):  # a run folder searched but not yet trained
            return ("genotype",) + _genotype_from_file(os.path.join(target, GENOTYPE_FILE))
    if os.path.isfile(target) and target.endswith(".json"):
        return ("genotype",) + _genotype_from_file(target)
    if os.path.exists(target):
        return "model", load_model(target)
    raise ValueError(
        f"{target!r} is neither a published genotype ({', '.join(published.names())}) nor an existing "
        "genotype JSON file, run folder or saved model"
    )


def _paper_settings(record) -> dict:
    """cells/channels of the published record's first trained network that gives them (e.g. BNAS-A: 20, 36)."""
    for label, settings in record.trained_as.items() if record else ():
        if "cells" in settings and "channels" in settings:
            return {"cells": settings["cells"], "channels": settings["channels"], "label": label}
    return {}


def build(genotype, record, args):
    """The network lint profiles for a genotype, and a line saying how it was built."""
    binarization = args.binarization or DEFAULT_BINARIZATION
    input_shape = args.input_shape or DEFAULT_INPUT_SHAPE
    common = {
        "num_classes": args.num_classes,
        "input_shape": input_shape,
        "binarization": binarization,
        "lce_friendly": args.lce_friendly,
    }
    if isinstance(genotype, WidthGenotype):
        given = [f"--{o.replace('_', '-')}" for o in _CELL_OPTIONS if getattr(args, o) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} apply to cell genotypes; {genotype.backbone} width genotypes take "
                "--input-shape, --binarization, --num-classes and --lce-friendly"
            )
        model = build_width_network(genotype, **common)
        return model, f"{genotype.backbone} widths {genotype.channels(args.lce_friendly)}"
    paper = _paper_settings(record)
    cells = args.cells or paper.get("cells", DEFAULT_CELLS)
    channels = args.channels or paper.get("channels", DEFAULT_CHANNELS)
    model = build_network(
        genotype,
        cells=cells,
        channels=channels,
        stem=args.stem or "cifar",
        auxiliary=bool(args.auxiliary),
        inter_cell_skip=bool(args.inter_cell_skip),
        **common,
    )
    source = f" ({paper['label']}'s size)" if paper and not (args.cells or args.channels) else ""
    return model, f"{cells} cells, {channels} channels{source}"


# --------------------------------------------------------------------------
# The table.


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1024**2 else f"{size / 1024**2:.2f} MB"


def _ops(ops: list) -> str:
    """The layer's main op, and how many others come with it (LceQuantize, SPACE_TO_BATCH_ND, ...)."""
    main = [op for op in ops if op not in ("LceQuantize", "LceDequantize")]
    if not main:
        return ", ".join(ops) or "-"
    return main[0] + (f" +{len(ops) - 1}" if len(ops) > 1 else "")


def format_table(report: dict, every_layer: bool = False) -> str:
    """The rows and totals of an :func:`~bnas_tf.deploy.lce_profile.lce_profile` report as text (MACs of binary rows
    padded)."""
    rows = [r for r in report["layers"] if every_layer or r["macs"] or r["kind"] == REJECTED]
    name_width = min(48, max([len("layer")] + [len(r["name"]) for r in rows]))
    lines = [f"{'layer':<{name_width}}  {'kind':<13}  {'MACs':>13}  {'ops':<20}  reason"]
    for r in rows:
        name = r["name"] if len(r["name"]) <= name_width else "..." + r["name"][-(name_width - 3) :]
        macs = r["binary_macs"] if r["kind"] == BINARY else r["macs"]
        lines.append(
            f"{name:<{name_width}}  {KIND_LABELS[r['kind']]:<13}  {macs:>13,}  {_ops(r['ops']):<20}  {r['reason']}"
        )
    ops = report["ops"]
    lines += [
        "",
        "kernel ops: " + ", ".join(f"{ops[op]} {op}" for op in KERNEL_OPS),
        f"accelerated binary MACs: {report['binary_macs']:,} with LCE's channel padding "
        f"({report['unpadded_binary_macs']:,} unpadded)",
        f"float MACs: {report['float_macs']:,}, of which {report['fallback_macs']:,} in fallback ops "
        "(layers binary in Keras that LCE runs in float)",
        f"expected .tflite size: {_size(report['size_bytes'])} ({_size(report['weight_bytes'])} of constants, "
        f"~{report['num_ops']} ops)",
    ]
    reasons = collections.Counter(r["reason"] for r in report["layers"] if r["fallback_macs"])
    if reasons:
        lines.append("fallbacks: " + "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common()))
    if report["rejected"]:
        lines.append(
            f"REJECTED: bnas-tf convert refuses {len(report['rejected'])} layer(s): "
            f"{', '.join(report['rejected'][:5])}{' ...' if len(report['rejected']) > 5 else ''}"
        )
    return "\n".join(lines)


def run(args) -> int:
    resolved = resolve(args.target)
    if resolved[0] == "model":
        given = [
            f"--{o.replace('_', '-')}"
            for o in _CELL_OPTIONS + ("input_shape", "binarization")
            if getattr(args, o) is not None
        ] + (["--lce-friendly"] if args.lce_friendly else [])
        if given:
            raise ValueError(
                f"{', '.join(given)} build networks from genotypes; {args.target} is a saved model, linted as it is"
            )
        model, built = resolved[1], f"saved model {args.target}"
    else:
        model, built = build(resolved[1], resolved[2], args)
        name = resolved[1].name or "genotype"
        built = f"{name}: {built}, {args.binarization or DEFAULT_BINARIZATION}, input {model.input_shape[1:]}"
    report = lce_profile(model)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(built)
        print(format_table(report, every_layer=args.all))
    return 1 if report["rejected"] else 0
