"""Costs of real bnas-tf networks: the 1-bit/32-bit split follows the ops, FLOPs follow the /64 rule."""

import pytest

from bnas_tf import Genotype, build_network
from bnas_tf.deploy import costs


def _only(op, op_set):
    edges = [(op, s) for n in range(2, 4) for s in range(n)]
    return Genotype(normal=edges, reduce=edges, op_set=op_set, nodes=2)


@pytest.mark.parametrize("binarization", ["W1/A1", "W1/A32"])
def test_sep_conv_and_conv_networks_split_bits_as_their_layers_do(binarization):
    conv = build_network(
        _only("conv_3x3", "BINARY_OPS"),
        cells=2,
        channels=8,
        input_shape=(8, 8, 1),
        binarization=binarization,
        reduction_cells=[1],
    )
    sep = build_network(
        _only("sep_conv_3x3", "DARTS_BINARY_OPS"),
        cells=2,
        channels=8,
        input_shape=(8, 8, 1),
        binarization=binarization,
        reduction_cells=[1],
    )
    for model in (conv, sep):
        p = costs.profile(model)
        binary_kernels = sum(
            layer.kernel.shape.num_elements()
            if hasattr(layer, "kernel")
            else layer.depthwise_kernel.shape.num_elements()
            for layer in model.layers
            if getattr(layer, "kernel_quantizer", None) is not None
            or getattr(layer, "depthwise_quantizer", None) is not None
        )
        assert p["binary_params"] == binary_kernels
        assert p["binary_params"] + p["float_params"] == model.count_params()
        assert p["flops"] == pytest.approx(p["float_macs"] + p["binary_macs"] / 64)
        if binarization == "W1/A32":
            assert p["binary_macs"] == 0  # float activations: every MAC is a float MAC
        else:
            assert p["binary_macs"] > p["float_macs"] / 10
    # a 3x3 sep conv holds 2 x (9 C + C^2) kernel weights, a plain 3x3 conv 9 C^2: fewer binary params
    assert costs.profile(sep)["binary_params"] < costs.profile(conv)["binary_params"]
