"""The PNG figures of a run folder, drawn from its files alone (:func:`draw_plots`; ``bnas-tf report`` calls it).

``genotype.png`` (both cells, or the width per layer; :func:`bnas_tf.space.plots.plot_genotype`),
``search_progress.png`` (sampling searches: path scores per trial, op scores per round, the round each op left
each edge; differentiable: validation accuracy and softmax(α) per epoch; evolution: fitness and accuracy per
generation), ``evolution.png`` (accuracy against FLOPs with the Pareto front) and ``accuracy.png`` (training
curves). :mod:`bnas_tf.pipeline.report` links them from report.md.
"""

from __future__ import annotations

import os

import numpy as np

from bnas_tf.space.plots import plot_genotype, plt  # plt: matplotlib with the Agg backend

GENOTYPE_PNG = "genotype.png"
SEARCH_PNG = "search_progress.png"
EVOLUTION_PNG = "evolution.png"
ACCURACY_PNG = "accuracy.png"
DPI = 110


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _objective(trial) -> float | None:
    metrics = trial["metrics"]
    return metrics.get("score", metrics.get("val_accuracy"))


# --- search progress ------------------------------------------------------------------
def _plot_paths(ax, trials):
    samples = [t for t in trials if t["values"].get("phase") == "sample" and _objective(t) is not None]
    rounds = sorted({t["values"].get("round", 0) for t in samples})
    for r in rounds:
        points = [(i, _objective(t)) for i, t in enumerate(samples) if t["values"].get("round", 0) == r]
        xs, ys = zip(*points)
        ax.scatter(xs, ys, s=18, color=f"C{r % 10}", label=f"round {r + 1}")
        ax.plot([xs[0], xs[-1]], [np.mean(ys)] * 2, color=f"C{r % 10}", linewidth=1)
    name = "score" if samples and "score" in samples[0]["metrics"] else "val_accuracy"
    ax.set(xlabel="sampled path (trial)", ylabel=name, title="sampled paths (line: round mean)")
    if rounds:
        ax.legend(fontsize=7)


def _plot_op_scores(ax, rounds, op_set):
    for k, op in enumerate(op_set):
        xs, ys = [], []
        for r, record in enumerate(rounds):
            values = [edge["score"][op] for edge in record["edges"].values() if op in edge["score"]]
            if values:
                xs.append(r + 1)
                ys.append(float(np.mean(values)))
        if xs:
            ax.plot(xs, ys, marker="o", color=f"C{k % 10}", label=op)
    ax.set(xlabel="pruning round", ylabel="score (mean over edges)", title="op scores per round")
    ax.set_xticks(range(1, len(rounds) + 1))
    ax.legend(fontsize=7)


def _plot_ops_left(ax, rounds, op_set):
    edges = list(rounds[-1]["edges"]) if rounds else []
    kept = len(rounds) + 1
    grid = np.full((len(edges), len(op_set)), float(kept))
    for r, record in enumerate(rounds):
        for e, edge in enumerate(edges):
            abandoned = record["edges"][edge]["abandoned"]
            if abandoned is not None:
                grid[e, op_set.index(abandoned)] = r + 1
    ax.imshow(grid, cmap="viridis", aspect="auto", vmin=1, vmax=kept)
    for e in range(len(edges)):
        for k in range(len(op_set)):
            label = "kept" if grid[e, k] == kept else f"r{int(grid[e, k])}"
            ax.text(k, e, label, ha="center", va="center", fontsize=7, color="black" if label == "kept" else "white")
    ax.set_xticks(range(len(op_set)))
    ax.set_xticklabels(op_set, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(edges)))
    ax.set_yticklabels(edges, fontsize=7)
    ax.set_title("ops left per edge (rN: pruned in round N)")


def _plot_differentiable(axes, epochs, op_set):
    xs = [e["epoch"] + 1 for e in epochs]
    axes[0].plot(xs, [e["val_accuracy"] for e in epochs], marker="o")
    axes[0].set(xlabel="search epoch", ylabel="val_accuracy", title="supernet validation accuracy")
    for kind, style in (("normal", "-"), ("reduce", "--")):
        weights = np.array([[_softmax(a) for a in e["alpha"][kind]] for e in epochs])  # epoch x edge x op
        for k, op in enumerate(op_set):
            axes[1].plot(
                xs, weights[:, :, k].mean(axis=1), style, color=f"C{k % 10}", label=op if kind == "normal" else None
            )
    axes[1].set(xlabel="search epoch", ylabel="softmax(α), mean over edges", title="α (solid normal, dashed reduce)")
    axes[1].legend(fontsize=7)
    final = np.array([_softmax(a) for kind in ("normal", "reduce") for a in epochs[-1]["alpha"][kind]])
    axes[2].imshow(final, cmap="viridis", aspect="auto")
    labels = [f"{kind}_e{e}" for kind in ("normal", "reduce") for e in range(len(epochs[-1]["alpha"][kind]))]
    axes[2].set_yticks(range(len(labels)))
    axes[2].set_yticklabels(labels, fontsize=7)
    axes[2].set_xticks(range(len(op_set)))
    axes[2].set_xticklabels(op_set, rotation=30, ha="right", fontsize=7)
    axes[2].set_title("final softmax(α) per edge")


def _softmax(values):
    values = np.asarray(values, dtype=float)
    exp = np.exp(values - values.max())
    return exp / exp.sum()


def _generations(log):
    return log["evolution"]["log"]


def _plot_generations(axes, log):
    generations = _generations(log)
    for key, ax in (("fitness", axes[0]), ("val_accuracy", axes[1])):
        best, mean = [], []
        for g in generations:
            values = [i[key] for i in g["individuals"] if i.get(key) is not None]
            best.append(max(values) if values else np.nan)
            mean.append(np.mean(values) if values else np.nan)
        xs = [g["generation"] for g in generations]
        ax.plot(xs, best, marker="o", label="best")
        ax.plot(xs, mean, marker="s", linestyle="--", label="mean")
        ax.set(xlabel="generation", ylabel=key, title=f"{key} per generation")
        ax.set_xticks(xs)
        ax.legend(fontsize=7)


def plot_search_progress(log: dict, path):
    strategy = log.get("strategy")
    if strategy == "evolution":
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        _plot_generations(axes, log)
    elif strategy == "differentiable":
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        _plot_differentiable(axes, log["rounds"], log["space"]["op_set"])
    else:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
        _plot_paths(axes[0], log["trials"])
        _plot_op_scores(axes[1], log["rounds"], log["space"]["op_set"])
        _plot_ops_left(axes[2], log["rounds"], log["space"]["op_set"])
    fig.suptitle(f"search progress: {strategy}")
    _save(fig, path)


def plot_evolution(log: dict, path):
    """Accuracy against FLOPs of every evaluated individual, coloured by generation, with the Pareto front."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    generations = _generations(log)
    for g in generations:
        points = [
            (i["flops"], i["val_accuracy"])
            for i in g["individuals"]
            if i.get("flops") is not None and i.get("val_accuracy") is not None
        ]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=24, alpha=0.8, color=f"C{g['generation'] % 10}", label=f"generation {g['generation']}")
    front = sorted((p["flops"], p["val_accuracy"]) for p in log.get("pareto", []))
    if front:
        xs, ys = zip(*front)
        ax.step(xs, ys, where="post", color="black", linewidth=1.2)
        ax.scatter(xs, ys, s=60, facecolors="none", edgecolors="black", label="Pareto front")
    ax.set(
        xscale="log", xlabel="FLOPs (float + binary / 64)", ylabel="val_accuracy", title="evolution: accuracy vs FLOPs"
    )
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_accuracy(history: dict, path):
    """Training and validation accuracy (left) and loss with the learning rate (right) per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, style in (("accuracy", "-o"), ("val_accuracy", "-s")):
        if key in history:
            left.plot(epochs, history[key], style, markersize=3, label=key)
    left.set(xlabel="epoch", ylabel="accuracy", title="retraining: accuracy", ylim=(0, 1))
    left.legend(fontsize=8)
    for key, style in (("loss", "-o"), ("val_loss", "-s")):
        if key in history:
            right.plot(epochs, history[key], style, markersize=3, label=key)
    right.set(xlabel="epoch", ylabel="loss", title="retraining: loss")
    if "lr" in history:
        lr_axis = right.twinx()
        lr_axis.plot(epochs, history["lr"], color="0.5", linestyle=":", label="learning rate")
        lr_axis.set_ylabel("learning rate", color="0.5")
    right.legend(fontsize=8)
    _save(fig, path)


def draw_plots(run_dir: str, metrics: dict, genotype=None, log: dict | None = None, history: dict | None = None) -> set:
    """Draw every figure the run's genotype, search log and training history allow into ``run_dir``; returns the
    file names written."""
    files = set()
    if genotype is not None:
        width_multiplier = metrics.get("settings", {}).get("width_multiplier", 1.0)
        plot_genotype(genotype, os.path.join(run_dir, GENOTYPE_PNG), width_multiplier)
        files.add(GENOTYPE_PNG)
    if log is not None:
        plot_search_progress(log, os.path.join(run_dir, SEARCH_PNG))
        files.add(SEARCH_PNG)
        if log.get("strategy") == "evolution":
            plot_evolution(log, os.path.join(run_dir, EVOLUTION_PNG))
            files.add(EVOLUTION_PNG)
    if history:
        plot_accuracy(history, os.path.join(run_dir, ACCURACY_PNG))
        files.add(ACCURACY_PNG)
    return files
