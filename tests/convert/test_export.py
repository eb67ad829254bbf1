"""Searched networks of both op sets, W1/A32 and W1/A1, convert and match Keras."""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import convert
from bnas_tf.deploy import convertibility
from bnas_tf.deploy.costs import profile
from bnas_tf.space.ops import OP_SETS

# The DARTS networks (14 edges, separable and dilated convs) take 1-3 minutes each to train and convert on
# 2 cores: they run with -m slow; the default suite converts DARTS cells in tests/lce/test_agreement.py.
CASES = [
    (op_set, binarization) if op_set == "BINARY_OPS" else pytest.param(op_set, binarization, marks=pytest.mark.slow)
    for op_set in ("DARTS_BINARY_OPS", "BINARY_OPS")
    for binarization in ("W1/A32", "W1/A1")
]
MAX_LOGIT_DIFF = 1e-3  # LCE's own end-to-end tolerance


@pytest.mark.parametrize("op_set,binarization", CASES)
def test_searched_network_matches_keras(converted, digits, op_set, binarization, record_property):
    model, flatbuffer = converted(op_set, binarization)
    result = convert.verify(model, flatbuffer, (digits[2], digits[3]), max_samples=256)
    record_property("verify", result)
    print(f"{op_set} {binarization}: {result}")
    assert result["num_samples"] == 256
    assert result["top1_agreement"] >= 0.99
    assert result["max_abs_diff"] < MAX_LOGIT_DIFF
    assert result["keras_accuracy"] == pytest.approx(result["tflite_accuracy"], abs=0.01)


@pytest.mark.parametrize("op_set", ["DARTS_BINARY_OPS", "BINARY_OPS"])
def test_genotype_seed_covers_op_set(genotype_seeds, op_set):
    """The converted networks exercise every op of their op set."""
    from bnas_tf import Genotype

    genotype = Genotype.random(op_set, seed=genotype_seeds[op_set])
    assert {op for op, _ in genotype.normal + genotype.reduce} == set(OP_SETS[op_set])


def test_binary_ops_w1a1_become_binary_kernels(converted):
    model, flatbuffer = converted("BINARY_OPS", "W1/A1")
    info = convert.inspect(flatbuffer, model=model)
    print("inspect BINARY_OPS W1/A1:", info)
    binary_convs = [
        layer for _, layer in convertibility.leaf_layers(model) if convertibility.becomes_lce_binary_conv(layer)
    ]
    undilated = [layer for layer in binary_convs if tuple(layer.dilation_rate) == (1, 1)]
    assert info["binary_conv_layers"] == len(binary_convs) == sum(row["lce_binary"] for row in profile(model)["layers"])
    assert info["ops"]["LceBconv2d"] == info["binary_kernel_ops"] > 0
    assert info["ops"]["LceQuantize"] > 0
    # Every undilated binary conv became a binary kernel; some dilated ones
    # stay float (test_lce_behaviour.py::test_dilated_convs_sharing_an_input_stay_float).
    assert len(undilated) <= info["binary_kernel_ops"] <= len(binary_convs)
    assert info["size_bytes"] == len(flatbuffer) and info["bound_bytes"] > 0


def test_w1a32_gets_no_binary_kernels(converted):
    """STACK_NOTES: without binary activations LCE emits float convolutions (no 32x claim for W1/A32)."""
    model, flatbuffer = converted("BINARY_OPS", "W1/A32")
    info = convert.inspect(flatbuffer, model=model)
    assert info["binary_kernel_ops"] == 0 and "LceQuantize" not in info["ops"]
    assert info["ops"]["CONV_2D"] > 1


@pytest.mark.slow  # 64 s: keeps the default suite under 15 minutes on 2 cores
def test_darts_ops_are_half_binary(converted):
    """Depthwise convs stay float; the pointwise 1x1 convs of sep/dil convs become binary."""
    model, flatbuffer = converted("DARTS_BINARY_OPS", "W1/A1")
    ops = convert.inspect(flatbuffer)["ops"]
    assert ops["LceBconv2d"] > 0 and ops["DEPTHWISE_CONV_2D"] > 0


def test_auxiliary_head_compares_main_logits(converted, digits):
    """With [logits, aux_logits] outputs, verify compares 'logits', whatever order the converter chose."""
    model, flatbuffer = converted("BINARY_OPS", "W1/A1")
    assert model.output_names == ["logits", "aux_logits"]
    assert convert.verify(model, flatbuffer, digits[2])["output"] == "logits"
    x = digits[2][:32]
    main, aux = (np.asarray(out) for out in model(x, training=False))
    for name, keras in (("logits", main), ("aux_logits", aux)):
        tflite = convert.verification.tflite_outputs(flatbuffer, x, output_name=name)
        assert np.abs(keras - tflite).max() < MAX_LOGIT_DIFF
    # The heads differ, so comparing against the wrong one would have shown.
    assert np.abs(main - aux).max() > 10 * MAX_LOGIT_DIFF


def test_to_tflite_writes_atomically(tmp_path):
    inputs = tf.keras.Input((8, 8, 1))
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(2, 3)(inputs))
    path = tmp_path / "out" / "model.tflite"
    path.parent.mkdir()
    path.write_bytes(b"old")
    data = convert.to_tflite(model, path)
    assert path.read_bytes() == data != b"old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.tflite"]  # no temporary file left


def test_int8_weights_for_w1a32(converted, digits):
    """weights='int8' stores W1/A32's ±scale kernels in 8 bits: ~4x smaller than float, same predictions."""
    model, flatbuffer = converted("BINARY_OPS", "W1/A32")
    int8 = convert.to_tflite(model, weights="int8")
    result = convert.verify(model, int8, (digits[2], digits[3]))
    print("W1/A32 int8 weights:", len(int8), "bytes vs", len(flatbuffer), result)
    assert len(int8) < len(flatbuffer) / 2.5  # 4x on the weights; graph metadata weighs more in a tiny net
    assert result["top1_agreement"] >= 0.99


def test_int8_weights_refused_for_binary_activations(converted):
    model, _ = converted("BINARY_OPS", "W1/A1")
    with pytest.raises(ValueError, match="1 bit"):
        convert.to_tflite(model, weights="int8")


def test_benchmark_reports_binary_and_float_latency():
    """The API; the CLI round trip (test_cli.py) times a real binary network against its float twin."""
    inputs = tf.keras.Input((16, 16, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.GlobalAveragePooling2D()(x)))
    timing = convert.benchmark(convert.to_tflite(model), runs=5, model=model)
    print("benchmark:", timing)
    assert 0 < timing["median_ms"] <= timing["p90_ms"]
    assert 0 < timing["float_median_ms"] <= timing["float_p90_ms"]
    assert timing["float_over_binary"] == pytest.approx(timing["float_median_ms"] / timing["median_ms"])
    assert timing["optimised_kernels"] is (timing["machine"] in ("aarch64", "arm64", "armv7l", "armv8l"))
    with pytest.raises(ValueError, match="runs"):
        convert.benchmark(convert.to_tflite(model), runs=0)
