"""report.md and its PNG plots, drawn from a run folder's files alone (``bnas-tf report RUN_DIR``).

Reads genotype.json, search_log.json, history.json and metrics.json (any of
them may be missing: a ``bnas-tf search`` folder has no training yet) and
writes ``genotype.png`` (both cells, or the width per layer), ``search_progress.png``
(sampling searches: path scores per trial, op scores per round, the round
each op left each edge; differentiable: validation accuracy and softmax(α)
per epoch; evolution: fitness and accuracy per generation),
``evolution.png`` (accuracy against FLOPs with the Pareto front),
``accuracy.png`` (training curves) and ``report.md``, which puts the
.tflite's verified accuracy next to the Keras model's.
"""

from __future__ import annotations

import os

import numpy as np

from bnas_tf.files import atomic_write_text, read_json
from bnas_tf.pipeline import run_folder
from bnas_tf.pipeline.face_report import verification_section
from bnas_tf.space.genotype import WidthGenotype, load_any
from bnas_tf.space.plots import plot_genotype, plot_widths, plt  # noqa: F401  (plot_widths: public here too)

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


# --- report.md -----------------------------------------------------------------------
def _pct(value):
    return "n/a" if value is None else f"{value:.2%}"


def _num(value):
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _result_section(metrics) -> list:
    keras, tflite = metrics.get("keras"), metrics.get("tflite")
    if not keras:
        return ["## Result", "", "No trained model in this folder yet (`bnas-tf train genotype.json` trains one).", ""]
    lines = ["## Result", ""]
    if tflite:
        samples = tflite.get("verified_on", {})
        lines += [
            "| accuracy | Keras (`model.keras`) | .tflite (`model.tflite`, verified in the LCE interpreter) |",
            "|---|---|---|",
            f"| validation ({samples.get('validation', '?')} images) | {_pct(keras['val_accuracy'])} | "
            f"{_pct(tflite['val_accuracy'])} |",
            f"| test ({samples.get('test', '?')} images) | {_pct(keras['test_accuracy'])} | "
            f"{_pct(tflite['test_accuracy'])} |",
            "",
            f"The .tflite's verified test accuracy is **{_pct(tflite['test_accuracy'])}** against "
            f"**{_pct(keras['test_accuracy'])}** for Keras; top-1 agreement between the two "
            f"{_pct(tflite['top1_agreement'])}, largest logit difference {tflite['max_abs_diff']:.3g}.",
            "",
        ]
    else:
        lines += [
            f"Keras accuracy: validation {_pct(keras['val_accuracy'])}, test {_pct(keras['test_accuracy'])}. "
            "Not converted yet (`bnas-tf convert RUN_DIR -o model.tflite --verify-on DATASET`).",
            "",
        ]
    return lines


def _costs_section(metrics) -> list:
    costs, size, tflite = metrics.get("costs"), metrics.get("size"), metrics.get("tflite")
    if not costs:
        return []
    rows = [
        ("1-bit parameters", _num(costs["binary_params"])),
        ("32-bit parameters", _num(costs["float_params"])),
        ("weight memory", f"{costs['memory_bits'] / 8 / 1024:,.1f} KB"),
        ("binary MACs", _num(costs["binary_macs"])),
        ("float MACs", _num(costs["float_macs"])),
        ("FLOPs (float + binary / 64)", _num(costs["flops"])),
        ("memory saving vs full precision", f"{costs['memory_saving']:.2f}x"),
        ("speed-up vs full precision (FLOPs)", f"{costs['speedup']:.2f}x"),
        ("MACs LCE runs as binary kernels", _num(costs.get("lce_binary_macs"))),
    ]
    if size:
        rows += [
            (".tflite size", f"{size['tflite_bytes'] / 1024:,.1f} KB"),
            ("model.keras size", f"{size['keras_bytes'] / 1024:,.1f} KB"),
        ]
        if size.get("size_over_bound"):
            rows.append((".tflite / bit-level bound of the weights", f"{size['size_over_bound']:.2f}x"))
    if tflite:
        ops = ", ".join(f"{count} {name}" for name, count in sorted(tflite["ops"].items(), key=lambda x: -x[1]))
        rows.append((".tflite operators", ops))
    lines = ["## Costs", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    if tflite and not tflite.get("binary_kernel_ops"):
        lines += [
            "No LceBconv2d kernels: only convolutions with 1-bit inputs *and* weights (W1/A1) run as "
            "binary kernels; W1/A32 layers run as float convolutions (stored as int8 when "
            "`tflite_weights=int8`).",
            "",
        ]
    return lines


def _search_section(metrics, log, genotype, files) -> list:
    search = metrics.get("search")
    lines = ["## Search", ""]
    if search:
        lines += [
            f"Strategy `{search['strategy']}`: {search['trials']} trials ({search['completed_trials']} completed) "
            f"in {search['seconds']:.0f} s on {search.get('dataset', 'the search split')}.",
            "",
        ]
    if genotype is not None:
        lines += ["Searched architecture (`genotype.json`):", "", "```", _genotype_text(genotype), "```", ""]
    for name, caption in (
        (GENOTYPE_PNG, "searched architecture"),
        (SEARCH_PNG, "search progress"),
        (EVOLUTION_PNG, "accuracy vs FLOPs, Pareto front"),
    ):
        if name in files:
            lines += [f"![{caption}]({name})", ""]
    if log and log.get("pareto"):
        lines += ["Pareto front (val accuracy, FLOPs, ratios):", ""]
        lines += [f"- {p['val_accuracy']:.2%}, {p['flops']:,.0f} FLOPs, {p['ratios']}" for p in log["pareto"]] + [""]
    if log and log.get("deployment"):
        lines += _deployment_lines(log)
    return lines


def _deployment_lines(log) -> list:
    """The deployment objective and the accuracy-vs-cost Pareto front of the searched candidates."""
    objective = log["deployment"]
    rules = [
        f"budget {objective['budget']:,.0f}" if objective.get("budget") is not None else None,
        f"penalty {objective['penalty']:g}" if objective.get("penalty") else None,
    ]
    rejected = sum(1 for t in log.get("trials", []) if "over_budget" in t.get("metrics", {}))
    lines = [
        f"Deployment objective: `{objective['cost']}` ({', '.join(r for r in rules if r)}), costed by "
        f"`lce_profile` on the evaluation network; {rejected} candidates were over the budget and not trained.",
        "",
        f"Accuracy vs `{objective['cost']}` Pareto front:",
        "",
        "| trial | val accuracy | size (bytes) | binary MACs | float MACs |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['trial_id']} | {p['val_accuracy']:.2%} | {p['lce_size_bytes']:,.0f} | {p['lce_binary_macs']:,.0f} "
        f"| {p['lce_float_macs']:,.0f} |"
        for p in log.get("deploy_pareto", [])
    ]
    return lines + [""]


def _genotype_text(genotype) -> str:
    if isinstance(genotype, WidthGenotype):
        return f"{genotype.backbone} width ratios: {list(genotype.ratios)}"
    return "\n".join(
        f"{kind}: " + ", ".join(f"{op}<-{source}" for op, source in getattr(genotype, kind))
        for kind in ("normal", "reduce")
    )


def _training_section(metrics, files) -> list:
    train = metrics.get("train")
    if not train:
        return []
    lines = [
        "## Retraining",
        "",
        f"{train['epochs']} epochs in {train['seconds']:.0f} s on {train.get('dataset', '')}.",
        "",
    ]
    if ACCURACY_PNG in files:
        lines += [f"![accuracy curves]({ACCURACY_PNG})", ""]
    return lines


def _settings_section(metrics) -> list:
    settings = metrics.get("settings")
    if not settings:
        return []
    lines = ["## Settings", "", "Override any with `--set key=value`.", "", "| setting | value |", "|---|---|"]
    return lines + [f"| {key} | `{value}` |" for key, value in settings.items()] + [""]


def _timing_line(metrics) -> list:
    parts = [
        (label, metrics[key]["seconds"])
        for key, label in (("search", "search"), ("train", "retraining"))
        if key in metrics
    ]
    if "tflite" in metrics:
        parts.append(("conversion", metrics["tflite"]["convert_seconds"]))
    if "total_seconds" in metrics:
        parts.append(("total", metrics["total_seconds"]))
    return ["Time: " + ", ".join(f"{label} {seconds:.0f} s" for label, seconds in parts), ""] if parts else []


def _task_result_section(run_dir, metrics) -> list:
    """The Result section; a face run's is its verification table and ROC plot (bnas_tf.pipeline.face_report)."""
    if metrics.get("task") == "face_verification":
        return verification_section(run_dir, metrics)
    return _result_section(metrics)


def write_report(run_dir: str) -> str:
    """(Re)draw every plot the folder's files allow and write report.md; returns its path."""
    if not os.path.isdir(run_dir):
        raise ValueError(f"{run_dir} is not a folder; pass a run folder written by `bnas-tf run`")
    metrics = run_folder.read_metrics(run_dir)
    path_of = lambda name: os.path.join(run_dir, name)  # noqa: E731
    genotype = load_any(path_of(run_folder.GENOTYPE)) if os.path.exists(path_of(run_folder.GENOTYPE)) else None
    log = (
        read_json(path_of(run_folder.SEARCH_LOG), what="search log")
        if os.path.exists(path_of(run_folder.SEARCH_LOG))
        else None
    )
    history = (
        read_json(path_of(run_folder.HISTORY), what="history") if os.path.exists(path_of(run_folder.HISTORY)) else None
    )
    if genotype is None and not metrics:
        raise ValueError(f"{run_dir} has neither {run_folder.GENOTYPE} nor {run_folder.METRICS}: not a run folder")
    files = set()
    if genotype is not None:
        plot_genotype(genotype, path_of(GENOTYPE_PNG), metrics.get("settings", {}).get("width_multiplier", 1.0))
        files.add(GENOTYPE_PNG)
    if log is not None:
        plot_search_progress(log, path_of(SEARCH_PNG))
        files.add(SEARCH_PNG)
        if log.get("strategy") == "evolution":
            plot_evolution(log, path_of(EVOLUTION_PNG))
            files.add(EVOLUTION_PNG)
    if history:
        plot_accuracy(history, path_of(ACCURACY_PNG))
        files.add(ACCURACY_PNG)
    title = f"# bnas-tf run: {metrics.get('recipe', 'unknown recipe')} ({metrics.get('profile', '?')} profile)"
    lines = [title, ""]
    if metrics.get("paper"):
        lines += [f"Experiment: {metrics['paper']}.", ""]
    lines += _timing_line(metrics) + _task_result_section(run_dir, metrics) + _costs_section(metrics)
    lines += _search_section(metrics, log, genotype, files) + _training_section(metrics, files)
    lines += _settings_section(metrics)
    lines += [
        "## Files",
        "",
        "`genotype.json`, `model.keras`, `model.tflite`, `metrics.json`, `search_log.json`, "
        "`history.json`, TensorBoard logs in `logs/` (`tensorboard --logdir logs`), the tuner's state in `search/`.",
        "",
    ]
    report_path = path_of(run_folder.REPORT)
    atomic_write_text(report_path, "\n".join(lines))
    return report_path


# --- bnas-tf report (arguments: bnas_tf.pipeline.commands) ---------------------------
def run(args) -> int:
    print(f"report: {write_report(args.run_dir)}")
    return 0
