"""report.md of a run folder, written from its files alone (``bnas-tf report RUN_DIR``).

Reads genotype.json, search_log.json, history.json and metrics.json (any of them may be missing: a ``bnas-tf
search`` folder has no training yet), redraws the PNG figures (:mod:`bnas_tf.pipeline.report_plots`) and writes
``report.md``, which puts the .tflite's verified accuracy next to the Keras model's and links the figures.
"""

from __future__ import annotations

import os

from bnas_tf.files import atomic_write_text, read_json
from bnas_tf.pipeline import run_folder
from bnas_tf.pipeline.face_report import verification_section
from bnas_tf.pipeline.report_plots import (
    ACCURACY_PNG,
    EVOLUTION_PNG,
    GENOTYPE_PNG,
    SEARCH_PNG,
    draw_plots,
    plot_accuracy,
    plot_evolution,
    plot_search_progress,
)
from bnas_tf.space.genotype import WidthGenotype, load_any
from bnas_tf.space.plots import plot_genotype, plot_widths

# the figures and their file names are defined in bnas_tf.pipeline.report_plots and reachable from here too
__all__ = [
    "ACCURACY_PNG",
    "EVOLUTION_PNG",
    "GENOTYPE_PNG",
    "SEARCH_PNG",
    "plot_accuracy",
    "plot_evolution",
    "plot_genotype",
    "plot_search_progress",
    "plot_widths",
    "run",
    "write_report",
]


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
    if metrics.get("settings", {}).get("binarization_scheme") == "dorefa":
        lines += [
            "DoReFa activations (round(clip(x, 0, 1)), SPEC P3 Eq. 1) run as float ops in Larq Compute Engine: "
            "every binarized convolution is a float CONV_2D. `--set binarization_scheme=xnor` trains sign "
            "activations, which LCE runs as binary LceBconv2d kernels.",
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


def _baselines_section(metrics) -> list:
    """The winner beside the baselines retrained with its schedule (bnas_tf.pipeline.baselines)."""
    baselines, keras = metrics.get("baselines"), metrics.get("keras")
    if not baselines or not keras:
        return []
    costs, size = metrics.get("costs") or {}, metrics.get("size") or {}
    lines = [
        "## Baselines",
        "",
        "Every network below was retrained with the winner's recipe (cells, channels, binarization, epochs, "
        "learning rate, data); `--set baselines=0` turns them off.",
        "",
        "| network | test accuracy (Keras) | binary MACs | float MACs | .tflite size |",
        "|---|---|---|---|---|",
        "| **the searched winner** | "
        f"**{_pct(keras['test_accuracy'])}** | {_num(costs.get('binary_macs'))} | {_num(costs.get('float_macs'))} | "
        f"{_kb(size.get('tflite_bytes'))} |",
    ]
    for row in baselines["rows"]:
        lines.append(
            f"| {row['name']} | {_pct(row['test_accuracy'])} | {_num(row['binary_macs'])} | "
            f"{_num(row['float_macs'])} | {_kb(row['tflite_bytes'])} |"
        )
    lines.append("")
    if baselines.get("random_mean") is not None:
        gain = keras["test_accuracy"] - baselines["random_mean"]
        verdict = "beat" if gain > 0 else "did not beat"
        lines += [
            f"The search {verdict} the mean of the random genotypes ({_pct(baselines['random_mean'])}): "
            f"{100 * gain:+.2f} points. The baselines took {baselines['seconds']:.0f} s.",
            "",
        ]
    return lines


def _kb(value):
    return "n/a" if value is None else f"{value / 1024:,.1f} KB"


def _settings_section(metrics) -> list:
    settings = metrics.get("settings")
    if not settings:
        return []
    lines = ["## Settings", "", "Override any with `--set key=value`.", "", "| setting | value |", "|---|---|"]
    return lines + [f"| {key} | `{value}` |" for key, value in settings.items()] + [""]


def _timing_line(metrics) -> list:
    parts = [
        (label, metrics[key]["seconds"])
        for key, label in (("search", "search"), ("train", "retraining"), ("baselines", "baselines"))
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
    files = draw_plots(run_dir, metrics, genotype, log, history)
    title = f"# bnas-tf run: {metrics.get('recipe', 'unknown recipe')} ({metrics.get('profile', '?')} profile)"
    lines = [title, ""]
    if metrics.get("paper"):
        lines += [f"Experiment: {metrics['paper']}.", ""]
    lines += _timing_line(metrics) + _task_result_section(run_dir, metrics) + _costs_section(metrics)
    lines += _baselines_section(metrics)
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
