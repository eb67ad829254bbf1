"""Pictures of architectures (matplotlib): each cell of a cell genotype drawn as a graph, or the width ratios of
a width genotype as bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bnas_tf.space.backbones import BACKBONES, scaled_channels  # noqa: E402

_INPUT_LABELS = {0: "c_{k-2}", 1: "c_{k-1}"}
DPI = 110


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _node_positions(nodes: int):
    positions = {0: (0.0, 0.75), 1: (0.0, 0.25)}
    for node in range(2, nodes + 2):
        positions[node] = (1.0 + (node - 2), 0.5 + 0.3 * (-1) ** node)
    positions["out"] = (nodes + 1.0, 0.5)
    return positions


def _draw_cell(ax, genotype, cell: str):
    positions = _node_positions(genotype.nodes)
    for node, edges in genotype.cell_nodes(cell):
        for op, source in edges:
            (x0, y0), (x1, y1) = positions[source], positions[node]
            zero = op == "zero"
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops=dict(arrowstyle="->", color="0.6" if zero else "C0", linestyle="--" if zero else "-"),
            )
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                op,
                fontsize=7,
                ha="center",
                va="center",
                color="0.5" if zero else "black",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
            )
    for node in getattr(genotype, f"{cell}_concat"):
        (x0, y0), (x1, y1) = positions[node], positions["out"]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="C2"))
    for node, (x, y) in positions.items():
        label = _INPUT_LABELS.get(node, "c_{k}" if node == "out" else str(node))
        ax.text(
            x,
            y,
            f"${label}$" if "_" in label else label,
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="circle", fc="C1" if node in (0, 1) else "C9", ec="black"),
        )
    ax.set_title(f"{cell} cell")
    ax.set_xlim(-0.5, genotype.nodes + 1.5)
    ax.set_ylim(0.0, 1.0)
    ax.axis("off")


def plot_cells(genotype, path) -> None:
    """Draw the normal and reduction cells of a cell genotype side by side into a PNG at ``path``."""
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * genotype.nodes, 3.5))
    for ax, cell in zip(axes, ("normal", "reduce")):
        _draw_cell(ax, genotype, cell)
    fig.suptitle(genotype.name or "genotype")
    _save(fig, path)


def plot_widths(genotype, path, width_multiplier: float = 1.0) -> None:
    """Bars of the width ratio of every searchable layer of a width genotype, labelled with its channels
    (the backbone's base widths times ``width_multiplier``, scaled by the ratio)."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(genotype.ratios) + 2), 3.2))
    layers = np.arange(len(genotype.ratios))
    ax.bar(layers, genotype.ratios, color="C0")
    bases = [max(1, int(round(base * width_multiplier))) for base in BACKBONES[genotype.backbone]]
    for x, ratio, base in zip(layers, genotype.ratios, bases):
        ax.text(x, ratio, f"{scaled_channels(base, ratio)}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1, label="uniform 1x")
    ax.set(
        xlabel="searchable layer", ylabel="width ratio", title=f"{genotype.backbone}: width ratios (labels: channels)"
    )
    ax.set_xticks(layers)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_genotype(genotype, path, width_multiplier: float = 1.0) -> None:
    """Draw ``genotype`` into a PNG at ``path``: a cell genotype's cells (:func:`plot_cells`), or a width genotype's
    ratios (:func:`plot_widths`; ``width_multiplier`` only labels its channels).

    Example: ``plot_genotype(Genotype.random(seed=0), "genotype.png")``.
    """
    if hasattr(genotype, "cell_nodes"):  # a Genotype; this module cannot import genotype (Genotype.plot imports it)
        plot_cells(genotype, path)
    else:
        plot_widths(genotype, path, width_multiplier)
