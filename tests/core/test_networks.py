import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import Genotype, WidthGenotype, build_network, build_width_network


def _train(model, x, y, steps=12):
    model.compile(tf.keras.optimizers.Adam(0.01), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=64, epochs=steps // 4, steps_per_epoch=4, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize(
    "op_set,binarization",
    [
        ("BINARY_OPS", "W1/A32"),
        ("BINARY_OPS", "W1/A1"),
        ("DARTS_BINARY_OPS", "W1/A1"),
        pytest.param("DARTS_BINARY_OPS", "W1/A32", marks=pytest.mark.slow),  # ~40 s of model.fit tracing on 2 cores
    ],
)
def test_random_genotype_network_trains_with_decreasing_loss(op_set, binarization, digits):
    x, y = digits
    cells = 2 if op_set == "DARTS_BINARY_OPS" else 3  # a normal and a reduction cell: all 8 DARTS ops of this genotype
    model = build_network(
        Genotype.random(op_set, seed=2),
        cells=cells,
        channels=8,
        num_classes=10,
        input_shape=(16, 16, 1),
        binarization=binarization,
        inter_cell_skip=op_set == "BINARY_OPS",
    )
    assert model.output_shape == (None, 10)
    losses = _train(model, x[:256], y[:256])
    assert losses[-1] < losses[0]


def test_zeroise_edges_never_reach_the_graph():
    genotype = Genotype.random("BINARY_OPS", seed=0)
    model = build_network(genotype, cells=2, channels=8, input_shape=(16, 16, 1))
    assert not any(type(layer).__name__ == "Zero" and "_e" in layer.name for layer in model.layers)
    # the published P2 cell has nodes whose inputs are all Zeroise: they output zeros
    all_zero = Genotype(
        normal=[["zero", 0], ["zero", 1]] * 4, reduce=[["max_pool_3x3", 0], ["zero", 1]] * 4, op_set="BINARY_OPS"
    )
    model = build_network(all_zero, cells=2, channels=8, input_shape=(16, 16, 1), reduction_cells=[1])
    assert model(np.zeros((1, 16, 16, 1), "float32")).shape == (1, 10)


def test_reduction_positions_auxiliary_head_and_stems():
    genotype = Genotype.random("DARTS_BINARY_OPS", seed=1)
    model = build_network(
        genotype, cells=6, channels=8, input_shape=(16, 16, 1), reduction_cells=[1, 3], auxiliary=True
    )
    assert isinstance(model.output, list) and len(model.outputs) == 2
    assert model.get_layer("cell5_concat").output_shape == (None, 4, 4, 4 * 8 * 4)
    model = build_network(genotype, cells=2, channels=8, input_shape=(64, 64, 3), stem="imagenet")
    assert model.get_layer("stem2_bn").output_shape[1] == 8


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(channels=0), "channels must be a positive integer"),
        (dict(channels=7), "channels must be even"),
        (dict(cells=0), "cells must be a positive integer"),
        (dict(num_classes=1), "num_classes must be at least 2"),
        (dict(input_shape=(2, 2, 1)), "too small for 2 halvings"),
        (dict(input_shape=(16, 16)), "input_shape must be"),
        (dict(reduction_cells=[5]), "reduction_cells must be distinct"),
        (dict(stem="big"), "stem must be"),
        (dict(binarization="W3/A3"), "unknown binarization"),
    ],
)
def test_bad_network_arguments(kwargs, message):
    args = dict(cells=3, channels=8, input_shape=(16, 16, 1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_network(Genotype.random("BINARY_OPS", seed=0), **args)


@pytest.mark.parametrize("backbone", ["vgg_small", "resnet18"])
def test_width_networks_follow_their_gene(backbone):
    gene = WidthGenotype.random(backbone, seed=0)
    model = build_width_network(gene, num_classes=10, input_shape=(16, 16, 1), binarization="W1/A1")
    conv_widths = [
        layer.filters for layer in model.layers if hasattr(layer, "filters") and "shortcut" not in layer.name
    ]
    assert conv_widths == gene.channels()
    assert model.output_shape == (None, 10)
    with pytest.raises(ValueError, match="too small"):
        build_width_network(gene, input_shape=(4, 4, 1))
