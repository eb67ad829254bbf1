"""The run report's "Face verification" section and its ROC plot (``roc.png``), from verification.json.

Drawn from the run folder alone, like the rest of :mod:`bnas_tf.pipeline.report`: one ROC curve per pair set
(Keras solid, .tflite dashed), the chosen threshold's operating point marked, and a table with the
10-fold accuracy (mean ± std) of the Keras and .tflite embeddings, the threshold, AUC and TAR@FAR.
"""

from __future__ import annotations

import os

from bnas_tf.files import read_json
from bnas_tf.space.plots import plt  # matplotlib with the Agg backend

ROC_PNG = "roc.png"
VERIFICATION = "verification.json"


def plot_roc(verification: dict, path) -> None:
    """ROC curve of every pair set (Keras solid, .tflite dashed) with the threshold's operating point."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for index, (name, summary) in enumerate(verification.get("keras", {}).items()):
        colour = f"C{index % 10}"
        ax.plot(
            summary["roc"]["fpr"], summary["roc"]["tpr"], color=colour, label=f"{name} Keras (AUC {summary['auc']:.3f})"
        )
        tflite = verification.get("tflite", {}).get(name)
        if tflite:
            ax.plot(
                tflite["roc"]["fpr"],
                tflite["roc"]["tpr"],
                color=colour,
                linestyle="--",
                label=f"{name} .tflite (AUC {tflite['auc']:.3f})",
            )
        point = summary["operating_point"]
        ax.scatter(
            [point["fpr"]],
            [point["tpr"]],
            color=colour,
            zorder=3,
            edgecolors="black",
            label=f"{name} threshold {summary['threshold']:.3f}",
        )
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax.set(
        xlabel="false accept rate (different pairs called same)",
        ylabel="true accept rate",
        title="face verification ROC (cosine similarity)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tar(summary) -> str:
    tar = summary["tar_at_far"]
    return f"{tar['tar']:.2%}" if tar["tar"] is not None else f"n/a ({tar['reason']})"


def verification_section(run_dir: str, metrics: dict) -> list:
    """report.md lines of a face run (draws roc.png); [] when the folder has no verification.json."""
    path = os.path.join(run_dir, VERIFICATION)
    if not os.path.exists(path):
        return ["## Face verification", "", "Not verified yet: this folder has no verification.json.", ""]
    verification = read_json(path, what="verification results")
    plot_roc(verification, os.path.join(run_dir, ROC_PNG))
    tflite = metrics.get("tflite", {})
    lines = [
        "## Face verification",
        "",
        "Cosine similarity of the embeddings; accuracy with the 10-fold protocol (threshold chosen on 9 folds, "
        "accuracy on the 10th; mean ± std over folds). Threshold: the best on all pairs.",
        "",
        "| pairs | count | Keras accuracy | .tflite accuracy | threshold | AUC | TAR@FAR=1e-3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, summary in verification.get("keras", {}).items():
        converted = verification.get("tflite", {}).get(name)
        tflite_accuracy = f"{converted['accuracy']:.2%} ± {converted['accuracy_std']:.2%}" if converted else "n/a"
        lines.append(
            f"| {name} | {summary['num_pairs']} ({summary['same_pairs']} same) | "
            f"{summary['accuracy']:.2%} ± {summary['accuracy_std']:.2%} | {tflite_accuracy} | "
            f"{summary['threshold']:.4f} | {summary['auc']:.4f} | {_tar(summary)} |"
        )
    lines.append("")
    if tflite.get("min_cosine") is not None:
        lines += [
            f"The .tflite (LCE interpreter) embeddings agree with Keras: cosine similarity min "
            f"{tflite['min_cosine']:.6f}, mean {tflite['mean_cosine']:.6f} on "
            f"{tflite['verified_on'].get('test', '?')} test images.",
            "",
        ]
    return lines + [f"![face verification ROC]({ROC_PNG})", ""]
