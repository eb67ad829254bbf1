"""lce_friendly spaces: every binary conv becomes LceBconv2d and every binary input has 32k channels."""

import larq as lq
import pytest

from bnas_tf import Genotype, WidthGenotype, build_network, build_width_network
from bnas_tf.convert import inspect, to_tflite
from bnas_tf.space.supernet import CellSpace


def _binary_convs(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, lq.layers.QuantConv2D) and layer.input_quantizer is not None
    ]


# ~30 s each on 2 cores: seed 1 (with inter-cell skips) in the default suite, 0 and 2 with -m slow
@pytest.mark.parametrize("seed", [pytest.param(0, marks=pytest.mark.slow), 1, pytest.param(2, marks=pytest.mark.slow)])
def test_random_lce_friendly_cell_networks_are_fully_binary(seed):
    genotype = Genotype.random("LCE_FRIENDLY_OPS", seed=seed)
    model = build_network(
        genotype,
        cells=3,
        channels=20,
        num_classes=10,
        input_shape=(16, 16, 1),
        binarization="W1/A1",
        inter_cell_skip=seed % 2 == 1,
        lce_friendly=True,
    )
    convs = _binary_convs(model)
    assert convs and all(conv.input.shape[-1] % 32 == 0 for conv in convs)
    assert inspect(to_tflite(model))["ops"].get("LceBconv2d", 0) == len(convs)


def test_lce_friendly_width_network_is_fully_binary():
    model = build_width_network(
        WidthGenotype("vgg_small", (0.25, 0.25, 0.5, 0.25, 0.25, 0.25)),
        num_classes=10,
        input_shape=(16, 16, 1),
        binarization="W1/A1",
        lce_friendly=True,
    )
    convs = _binary_convs(model)
    assert all(conv.input.shape[-1] % 32 == 0 and conv.filters % 32 == 0 for conv in convs)
    assert inspect(to_tflite(model))["ops"].get("LceBconv2d", 0) == len(convs)


def test_lce_friendly_refuses_what_lce_runs_as_float():
    with pytest.raises(ValueError, match="ops LCE does not run binary: sep_conv_3x3"):
        build_network(
            Genotype(
                normal=[("sep_conv_3x3", s) for n in range(2, 6) for s in range(n)],
                reduce=[("zero", s) for n in range(2, 6) for s in range(n)],
            ),
            input_shape=(16, 16, 1),
            binarization="W1/A1",
            lce_friendly=True,
        )
    with pytest.raises(ValueError, match="needs 1-bit activations"):
        build_network(
            Genotype.random("LCE_FRIENDLY_OPS"), input_shape=(16, 16, 1), binarization="W1/A32", lce_friendly=True
        )
    with pytest.raises(ValueError, match="op_set='LCE_FRIENDLY_OPS'"):
        CellSpace(op_set="DARTS_BINARY_OPS", lce_friendly=True)
    assert CellSpace(op_set="LCE_FRIENDLY_OPS", channels=20, lce_friendly=True).channels == 32
