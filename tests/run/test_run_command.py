"""`bnas-tf run` end to end at toy size, and the search / train / report / recipes subcommands."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from toysize import toy_overrides

from bnas_tf import recipes
from bnas_tf.convert import load_model
from bnas_tf.pipeline import cli

RUN_FILES = (
    "genotype.json",
    "model.keras",
    "model.tflite",
    "metrics.json",
    "report.md",
    "search_log.json",
    "history.json",
    "genotype.png",
    "search_progress.png",
    "accuracy.png",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _main(argv):
    """cli.main with stdout and stderr captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def _set(name, *extra):
    return [arg for assignment in toy_overrides(name) + list(extra) for arg in ("--set", assignment)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One toy `bnas-tf run` of the default recipe, with the auxiliary head and label smoothing on."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "toy")
    status, out, err = _main(
        ["run", *_set(recipes.DEFAULT_RECIPE, "auxiliary=true", "label_smoothing=0.1"), "--output", run_dir]
    )
    assert status == 0, err
    return run_dir, out


def _assert_real_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 5 * 1024, f"{path} is only {os.path.getsize(path)} bytes"
    pixels = plt.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert np.ptp(pixels[..., :3]) > 0.5, f"{path} is (nearly) one colour"


def test_run_writes_every_file_and_prints_where_the_report_is(run):
    run_dir, out = run
    for name in RUN_FILES:
        assert os.path.isfile(os.path.join(run_dir, name)), name
    for part in ("search", "train"):
        events = os.listdir(os.path.join(run_dir, "logs", part))
        assert events, f"no TensorBoard logs for the {part}"
    assert f"report: {os.path.join(run_dir, 'report.md')}" in out
    assert "trial " in out  # one line per finished trial


def test_plots_are_real_pngs_of_the_run(run):
    run_dir, _ = run
    for name in ("genotype.png", "search_progress.png", "accuracy.png"):
        _assert_real_png(os.path.join(run_dir, name))


def test_metrics_hold_keras_and_tflite_accuracy_costs_and_size(run):
    run_dir, _ = run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    for side in ("keras", "tflite"):
        for split in ("val_accuracy", "test_accuracy"):
            assert 0.0 <= metrics[side][split] <= 1.0
    assert metrics["tflite"]["verified_on"] == {"validation": 30, "test": 60}  # 300 digits: 10% / 20%
    assert metrics["search"]["seconds"] > 0 and metrics["search"]["completed_trials"] > 0
    assert metrics["costs"]["binary_params"] > 0 and metrics["costs"]["flops"] > 0
    assert metrics["size"]["tflite_bytes"] == os.path.getsize(os.path.join(run_dir, "model.tflite"))
    assert metrics["settings"]["auxiliary"] is True and metrics["recipe"] == recipes.DEFAULT_RECIPE
    assert metrics["total_seconds"] > metrics["search"]["seconds"]


def test_saved_model_has_no_auxiliary_head_and_matches_the_tflite_on_its_test_check(run):
    run_dir, _ = run
    model = load_model(run_dir)
    assert len(model.outputs) == 1 and "aux_logits" not in [layer.name for layer in model.layers]
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    check = metrics["tflite"]["checks"]["test"]
    assert check["keras_accuracy"] == pytest.approx(metrics["keras"]["test_accuracy"])


def test_report_states_the_tflite_accuracy_next_to_keras(run):
    run_dir, _ = run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    report = open(os.path.join(run_dir, "report.md")).read()
    row = next(line for line in report.splitlines() if line.startswith("| test"))
    assert f"{metrics['keras']['test_accuracy']:.2%}" in row and f"{metrics['tflite']['test_accuracy']:.2%}" in row
    assert "verified in the LCE interpreter" in report
    for name in ("genotype.png", "search_progress.png", "accuracy.png"):
        assert f"]({name})" in report


def test_report_regenerates_report_and_plots_from_the_folder(run, tmp_path):
    run_dir, _ = run
    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    original = open(os.path.join(copy, "report.md")).read()
    for name in ("report.md", "genotype.png", "search_progress.png", "accuracy.png"):
        os.remove(os.path.join(copy, name))
    status, out, err = _main(["report", copy])
    assert status == 0, err
    assert open(os.path.join(copy, "report.md")).read() == original
    for name in ("genotype.png", "search_progress.png", "accuracy.png"):
        _assert_real_png(os.path.join(copy, name))
    assert "report.md" in out


def test_search_then_train_subcommands(tmp_path):
    name = "cpnas"
    search_dir, train_dir = str(tmp_path / "search"), str(tmp_path / "train")
    status, out, err = _main(["search", "--recipe", name, *_set(name), "--output", search_dir, "--quiet"])
    assert status == 0, err
    assert os.path.isfile(os.path.join(search_dir, "genotype.json"))
    assert not os.path.exists(os.path.join(search_dir, "model.keras"))
    assert f"bnas-tf train {os.path.join(search_dir, 'genotype.json')}" in out
    status, _, err = _main(["report", search_dir])  # a search-only folder reports what it has
    assert status == 0, err
    assert "No trained model" in open(os.path.join(search_dir, "report.md")).read()

    status, out, err = _main(
        [
            "train",
            os.path.join(search_dir, "genotype.json"),
            "--recipe",
            name,
            "--epochs",
            "2",
            *_set(name),
            "--output",
            train_dir,
            "--quiet",
        ]
    )
    assert status == 0, err
    history = json.load(open(os.path.join(train_dir, "history.json")))
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert history["lr"][1] < history["lr"][0]  # cosine decay
    metrics = json.load(open(os.path.join(train_dir, "metrics.json")))
    assert metrics["train"]["epochs"] == 2 and 0.0 <= metrics["keras"]["test_accuracy"] <= 1.0
    assert load_model(train_dir).output_shape == (None, 10)


def test_evolution_run_draws_accuracy_against_flops_with_the_pareto_front(tmp_path):
    name = "evolution_vgg_small"
    run_dir = str(tmp_path / "evolution")
    status, _, err = _main(["run", "--recipe", name, *_set(name), "--output", run_dir, "--quiet"])
    assert status == 0, err
    _assert_real_png(os.path.join(run_dir, "evolution.png"))
    _assert_real_png(os.path.join(run_dir, "genotype.png"))  # widths per layer
    log = json.load(open(os.path.join(run_dir, "search_log.json")))
    assert log["pareto"] and "![accuracy vs FLOPs" in open(os.path.join(run_dir, "report.md")).read()


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("colour=blue", "unknown setting 'colour' for recipe"),
        ("train_epochs=many", "setting 'train_epochs' takes int, got 'many'"),
        ("train_epochs", "--set takes key=value"),
    ],
)
def test_set_errors_exit_2_with_a_message_and_write_nothing(assignment, message, tmp_path):
    status, _, err = _main(["run", "--set", assignment, "--output", str(tmp_path / "never")])
    assert status == 2 and message in err
    assert not os.path.exists(tmp_path / "never")


def test_unknown_recipe_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--recipe", "darts"])
    assert exit_info.value.code == 2 and "invalid choice: 'darts'" in capsys.readouterr().err


def test_report_of_a_folder_that_is_no_run(tmp_path):
    status, _, err = _main(["report", str(tmp_path)])
    assert status == 2 and "not a run folder" in err


def test_recipes_lists_every_recipe_and_shows_settings():
    status, out, _ = _main(["recipes"])
    assert status == 0 and all(name in out for name in recipes.names())
    status, out, _ = _main(["recipes", "--show", "binary_darts", "--profile", "paper"])
    assert status == 0 and "diversity_tau = 7.7" in out and "op_set = BINARY_OPS" in out


@pytest.mark.slow
def test_bnas_tf_run_of_the_readme_writes_a_verified_run(tmp_path):
    # the README's command; its baselines (four more retrainings) are tested in tests/run/test_baselines.py
    script = os.path.join(os.path.dirname(sys.executable), "bnas-tf")  # the console script the README runs
    base = [script, "run"] if os.path.exists(script) else [sys.executable, "-m", "bnas_tf.pipeline.cli", "run"]
    done = subprocess.run(
        base + ["--set", "baselines=0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,  # a hang guard, not a speed target (benchmarks/README.md has the run's times)
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = os.listdir(tmp_path / "runs")
    for name in RUN_FILES:
        assert os.path.isfile(tmp_path / "runs" / run_dir / name), name
    metrics = json.load(open(tmp_path / "runs" / run_dir / "metrics.json"))
    assert metrics["keras"]["test_accuracy"] > 0.9 and metrics["tflite"]["top1_agreement"] > 0.99
