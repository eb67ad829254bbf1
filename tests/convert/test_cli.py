"""``bnas-tf convert``: the round trip on a saved searched network, and clear errors for bad inputs."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import convert
from bnas_tf.convert.export import WEIGHT_FORMATS
from bnas_tf.pipeline import cli, commands


def digits_sized_model():
    inputs = tf.keras.Input((16, 16, 1), name="image")
    x = tf.keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="logits")(x))


@pytest.mark.slow  # ~50 s (a fresh TensorFlow process, conversion and benchmark): keeps the default suite < 15 min
def test_round_trip_in_a_fresh_process(converted, tmp_path):
    """Save a trained W1/A1 network, convert it with the console command in a new process, check the report."""
    model, _ = converted("BINARY_OPS", "W1/A1")
    saved = tmp_path / "model.keras"
    model.save(saved)
    output = tmp_path / "deploy" / "model.tflite"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bnas_tf.pipeline.cli",
            "convert",
            str(saved),
            "-o",
            str(output),
            "--verify-on",
            "digits",
            "--benchmark",
            "--runs",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.exists() and output.stat().st_size > 0
    out = result.stdout
    assert "top-1 agreement 100.00%" in out or "top-1 agreement 99." in out
    assert "max |logit diff|" in out
    assert "bit-level bound" in out and "KB" in out
    assert "LceBconv2d" in out
    assert "ms median" in out and "float tflite" in out
    # The written file is the model: verify it again here.
    report = convert.verify(model, output, np.zeros((2, 16, 16, 1), np.float32))
    assert report["max_abs_diff"] < 1e-3


def test_run_folder_and_agreement_threshold(tmp_path, capsys):
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    digits_sized_model().save(run_folder / "model.keras")
    output = tmp_path / "model.tflite"
    assert cli.main(["convert", str(run_folder), "-o", str(output), "--verify-on", "digits"]) == 0
    out = capsys.readouterr().out
    assert "top-1 agreement 100.00%" in out and "accuracy Keras" in out
    assert "no binary kernels" in out  # a float model: say why it is not small
    # Agreement can never reach 1.01: exit status 1, file still written.
    output.unlink()
    assert (
        cli.main(["convert", str(run_folder), "-o", str(output), "--verify-on", "digits", "--min-agreement", "1.01"])
        == 1
    )
    assert output.exists()


def test_savedmodel_folder_loads(tmp_path, capsys):
    digits_sized_model().save(tmp_path / "sm", save_format="tf")
    assert cli.main(["convert", str(tmp_path / "sm"), "-o", str(tmp_path / "m.tflite")]) == 0
    assert "wrote" in capsys.readouterr().out


def lambda_model(marker):
    """A model whose Lambda writes ``marker`` whenever Keras calls it (as loading a SavedModel would)."""
    path = str(marker)
    inputs = tf.keras.Input((16, 16, 1))
    outputs = tf.keras.layers.Lambda(lambda t: (open(path, "w").close(), t)[1], name="side_effect")(inputs)
    return tf.keras.Model(inputs, outputs)


def test_lambda_code_is_never_run(tmp_path, capsys):
    marker = tmp_path / "lambda_ran"
    model = lambda_model(marker)
    model.save(tmp_path / "lambda.keras")
    model.save(tmp_path / "lambda_sm", save_format="tf")
    marker.unlink()
    assert cli.main(["convert", str(tmp_path / "lambda.keras"), "-o", str(tmp_path / "x.tflite")]) == 2
    assert "Lambda" in capsys.readouterr().err
    # Keras 2.15 ignores safe_mode for SavedModels and would call the lambda; we load inside the safe-mode scope.
    assert cli.main(["convert", str(tmp_path / "lambda_sm"), "-o", str(tmp_path / "x.tflite")]) == 2
    assert "Lambda" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda tmp: [str(tmp / "missing.keras"), "-o", str(tmp / "m.tflite")], "no saved model"),
        (lambda tmp: [str(tmp), "-o", str(tmp / "m.tflite")], "neither model.keras"),
        (lambda tmp: [str(tmp / "notes.txt"), "-o", str(tmp / "m.tflite")], "not a saved Keras model"),
        (lambda tmp: [str(tmp / "good.keras"), "-o", str(tmp / "notes.txt" / "m.tflite")], "not a folder"),
        (lambda tmp: [str(tmp / "good.keras"), "-o", str(tmp / "m.tflite"), "--verify-on", "no_such_dataset_xyz"], ""),
    ],
)
def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys, make_args, message):
    (tmp_path / "notes.txt").write_text("hello")
    digits_sized_model().save(tmp_path / "good.keras")
    assert cli.main(["convert"] + make_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("bnas-tf convert: error:") and message in err


def test_rgb_model_cannot_verify_on_digits(tmp_path, capsys):
    inputs = tf.keras.Input((16, 16, 3))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.GlobalAveragePooling2D()(inputs)))
    model.save(tmp_path / "rgb.keras")
    assert (
        cli.main(["convert", str(tmp_path / "rgb.keras"), "-o", str(tmp_path / "m.tflite"), "--verify-on", "digits"])
        == 2
    )
    assert "channels" in capsys.readouterr().err


def test_convert_prints_no_converter_log_lines(tmp_path):
    """The converter's C++ and MLIR lines (SavedModel loading, op counts, the int8 op summary) stay hidden."""
    digits_sized_model().save(tmp_path / "model.keras")
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "bnas_tf.pipeline.cli", "convert", str(tmp_path / "model.keras")]
    command += ["-o", str(tmp_path / "model.tflite"), "--weights", "int8"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("wrote ") and "ops: " in done.stdout
    output = done.stdout + done.stderr
    assert not re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |oneDNN|cuda|TensorRT", output, re.M), output
    assert "Summary on the non-converted ops" not in output and "loc(" not in output


def test_weight_formats_of_the_command_are_the_converter_s():
    assert commands.WEIGHT_FORMATS == WEIGHT_FORMATS
