"""ImageNet evaluation networks cost what P2 reports: DARTS' ImageNet stem (C/2, C, C), not a 3C-wide one."""

import pytest

from bnas_tf import build_network
from bnas_tf.deploy import costs
from bnas_tf.space import published

# P2 Table 7 (and §5.4's text): BNAS-D has ~1.48e8 FLOPs, BNAS-E ~1.63e8 (FLOPs = float MACs + binary MACs / 64).
TABLE_7_FLOPS = {"BNAS-D": 1.48e8, "BNAS-E": 1.63e8}


def _imagenet_network(cells, channels, input_shape, num_classes):
    return build_network(
        published.P2_BNAS_IMAGENET,
        cells=cells,
        channels=channels,
        num_classes=num_classes,
        input_shape=input_shape,
        binarization="W1/A1",
        inter_cell_skip=True,
        stem="imagenet",
    )


def test_imagenet_stem_is_darts_and_the_first_cell_reduces_its_quarter_resolution_output():
    model = _imagenet_network(cells=3, channels=8, input_shape=(64, 64, 3), num_classes=10)
    assert [model.get_layer(f"stem{i}_conv").filters for i in range(3)] == [4, 8, 8]
    # c_{k-2} of cell 0 is the 1/4-resolution stem output (DARTS' stem0), c_{k-1} the 1/8 one (stem1)
    assert model.get_layer("cell0_pre0_conv_a").input_shape == (None, 16, 16, 8)
    assert model.get_layer("cell0_pre0_bn").output_shape == (None, 8, 8, 8)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(TABLE_7_FLOPS))
def test_p2_imagenet_networks_cost_table_7_flops(variant):
    # cells/channels as trained in P2 (Table 5; src/train_imagenet.py's configs), kept in the published record
    size = published.info("p2_bnas_imagenet").trained_as[variant]
    model = _imagenet_network(size["cells"], size["channels"], input_shape=(224, 224, 3), num_classes=1000)
    profile = costs.profile(model)
    assert profile["flops"] == pytest.approx(TABLE_7_FLOPS[variant], rel=0.10)
    # the full-precision part is the stem and the classifier only
    float_layers = {row["name"] for row in profile["layers"] if row["float_macs"]}
    assert float_layers == {"stem0_conv", "stem1_conv", "stem2_conv", "logits"}
