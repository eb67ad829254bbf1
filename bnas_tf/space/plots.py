"""Pictures of architectures: each cell of a genotype drawn as a graph (matplotlib)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_INPUT_LABELS = {0: "c_{k-2}", 1: "c_{k-1}"}


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


def plot_genotype(genotype, path) -> None:
    """Draw the normal and reduction cells of ``genotype`` side by side into a PNG at ``path``."""
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * genotype.nodes, 3.5))
    for ax, cell in zip(axes, ("normal", "reduce")):
        _draw_cell(ax, genotype, cell)
    fig.suptitle(genotype.name or "genotype")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
