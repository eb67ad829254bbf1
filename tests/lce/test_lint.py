"""bnas-tf lint: the lce_profile table for published names, genotype files, run folders and saved models."""

import json
import shutil
from importlib import resources

import larq as lq
import tensorflow as tf

import bnas_tf
from bnas_tf.pipeline import cli, lint

SMALL = ["--cells", "2", "--channels", "8", "--input-shape", "16,16,1"]


def lint_output(capsys, *argv):
    status = cli.main(["lint", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_published_name(capsys):
    status, out, _ = lint_output(capsys, "p2_bnas_imagenet", *SMALL)
    assert status == 0
    assert out.startswith("p2_bnas_imagenet: 2 cells, 8 channels, W1/A1")
    assert "binary kernel" in out and "LceBconv2d" in out
    assert "kernel ops:" in out and "expected .tflite size:" in out
    assert "fallbacks: 2 x dilated binary conv sharing its input" in out  # node 1 read by two dilated 3x3 convs


def test_published_defaults_come_from_the_paper():
    args = cli.build_parser().parse_args(["lint", "p2_bnas_cifar10"])
    assert lint._paper_settings(bnas_tf.space.published.info(args.target)) == {
        "cells": 20,
        "channels": 36,
        "label": "BNAS-A",
    }


def test_genotype_file_w1a32_is_all_float(capsys, tmp_path):
    path = tmp_path / "genotype.json"
    bnas_tf.Genotype.random("BINARY_OPS", seed=1).save(path)
    status, out, _ = lint_output(capsys, str(path), *SMALL, "--binarization", "W1/A32")
    assert status == 0
    assert "binary kernel" not in out
    assert "without input quantizer (W1/A32): float CONV_2D" in out
    assert "accelerated binary MACs: 0 " in out


def test_run_folder_with_only_a_genotype(capsys, tmp_path):
    bnas_tf.Genotype.random("BINARY_OPS", seed=2).save(tmp_path / "genotype.json")
    status, out, _ = lint_output(capsys, str(tmp_path), *SMALL)
    assert status == 0 and "random_seed2: 2 cells" in out


def test_published_layout_file(capsys, tmp_path):
    source = resources.files("bnas_tf.space") / "published_cells" / "p2_bnas_cifar10.json"
    path = tmp_path / "cell.json"
    with resources.as_file(source) as original:
        shutil.copy(original, path)
    status, out, _ = lint_output(capsys, str(path), *SMALL)
    assert status == 0 and out.startswith("p2_bnas_cifar10: 2 cells, 8 channels, W1/A1")


def test_width_genotype_json(capsys, tmp_path):
    path = tmp_path / "widths.json"
    bnas_tf.WidthGenotype.uniform("vgg_small", 0.25).save(path)
    status, out, _ = lint_output(capsys, str(path), "--input-shape", "16,16,1", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["ops"] == {"LceBconv2d": 5, "CONV_2D": 1, "DEPTHWISE_CONV_2D": 0, "FULLY_CONNECTED": 1}
    status, _, err = lint_output(capsys, str(path), "--cells", "3")
    assert status == 2 and "--cells apply to cell genotypes" in err


def test_saved_model_with_a_rejected_layer_exits_1(capsys, tmp_path):
    inputs = tf.keras.Input((4, 4, 16))
    conv = lq.layers.QuantConv2D(
        8,
        5,
        padding="same",
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        use_bias=False,
        name="overhanging",
    )
    path = str(tmp_path / "model.keras")
    tf.keras.Model(inputs, conv(inputs)).save(path)
    status, out, _ = lint_output(capsys, path)
    assert status == 1
    assert "rejected" in out and "REJECTED: bnas-tf convert refuses 1 layer(s): overhanging" in out
    status, _, err = lint_output(capsys, path, "--cells", "2")
    assert status == 2 and "is a saved model, linted as it is" in err


def test_unknown_target(capsys, tmp_path):
    status, _, err = lint_output(capsys, str(tmp_path / "nothing"))
    assert status == 2 and "p2_bnas_cifar10, p2_bnas_imagenet" in err
