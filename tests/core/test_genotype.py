import json

import pytest

from bnas_tf import Genotype, WidthGenotype
from bnas_tf.space.genotype import load_any


@pytest.mark.parametrize("op_set", ["DARTS_BINARY_OPS", "BINARY_OPS"])
def test_random_genotypes_are_valid_and_seeded(op_set):
    a, b, c = Genotype.random(op_set, seed=3), Genotype.random(op_set, seed=3), Genotype.random(op_set, seed=4)
    assert a == b and a != c
    expected_edges = 14 if op_set == "DARTS_BINARY_OPS" else 8
    assert len(a.normal) == len(a.reduce) == expected_edges


@pytest.mark.parametrize("seed", range(5))
def test_json_round_trip_is_exact(seed):
    g = Genotype.random("BINARY_OPS", seed=seed)
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_json(g.to_json()).to_json() == g.to_json()
    w = WidthGenotype.random("resnet18", seed=seed)
    assert WidthGenotype.from_json(w.to_json()) == w
    assert load_any(w.to_json()) == w and load_any(g.to_json()) == g


def _valid():
    return json.loads(Genotype.random("DARTS_BINARY_OPS", seed=0).to_json())


def _with(**changes):
    data = _valid()
    data.update(changes)
    return data


MALFORMED = [
    (_with(normal=[["conv_7x7", 0]] + _valid()["normal"][1:]), "unknown op 'conv_7x7'"),
    (_with(normal=[["conv_3x3", 0]] + _valid()["normal"][1:]), "not in op set"),
    (_with(normal=_valid()["normal"][:13]), "has 13 edges"),
    (_with(reduce=[["zero", 0], ["zero", 5]] + _valid()["reduce"][2:]), "input node 5 out of range 0..1"),
    (_with(reduce=[["zero", 1], ["zero", 0]] + _valid()["reduce"][2:]), "in order, got \\[1, 0\\]"),
    (_with(op_set="NAS_OPS"), "unknown op set"),
    (_with(normal_concat=[]), "normal_concat is empty"),
    (_with(reduce_concat=[2, 9]), "not an intermediate node"),
    (_with(reduce_concat=[2, 2]), "repeats a node"),
    (_with(colour="blue"), "unknown genotype fields \\['colour'\\]"),
    ({k: v for k, v in _valid().items() if k != "reduce"}, "missing 'reduce'"),
    (_with(normal="conv_3x3"), "must be a list"),
    (_with(normal=[["zero"]] + _valid()["normal"][1:]), "must be a pair"),
    (_with(normal=[["zero", "1"]] + _valid()["normal"][1:]), "input node must be an integer"),
    (_with(nodes=0), "nodes must be a positive integer"),
    (
        {"op_set": "BINARY_OPS", "normal": [["zero", 0], ["zero", 0]] * 4, "reduce": [["zero", 0], ["zero", 1]] * 4},
        "both edges come from node 0",
    ),
    (
        {"op_set": "BINARY_OPS", "normal": [["zero", 0], ["zero", 4]] * 4, "reduce": [["zero", 0], ["zero", 1]] * 4},
        "input node 4 out of range",
    ),
    ([1, 2, 3], "must be a JSON object"),
    ({"backbone": "vgg_small", "ratios": [1] * 6}, "width genotype"),
]


@pytest.mark.parametrize("data,message", MALFORMED)
def test_malformed_genotypes_give_precise_errors(data, message):
    with pytest.raises(ValueError, match=message):
        Genotype.from_dict(data)


def test_invalid_json_text():
    with pytest.raises(ValueError, match="not valid JSON"):
        Genotype.from_json("{normal: ")


@pytest.mark.parametrize(
    "data,message",
    [
        ({"backbone": "vgg_big", "ratios": [1] * 6}, "unknown backbone"),
        ({"backbone": "vgg_small", "ratios": [1] * 5}, "has 6 searchable layers"),
        ({"backbone": "vgg_small", "ratios": [1, 1, 1, 1, 1, 5]}, "ratio 5 is 5.0"),
        ({"backbone": "vgg_small", "ratios": [1] * 6, "depth": 3}, "unknown width genotype fields"),
    ],
)
def test_malformed_width_genotypes(data, message):
    with pytest.raises(ValueError, match=message):
        WidthGenotype.from_dict(data)


def test_width_channels_and_lce_rounding():
    w = WidthGenotype("vgg_small", (0.25, 0.5, 1, 2, 3, 4))
    assert w.channels() == [32, 64, 256, 512, 1536, 2048]
    assert WidthGenotype("vgg_small", (0.25,) * 6).channels(lce_friendly=True)[0] == 32
    assert all(c % 32 == 0 for c in WidthGenotype.random("resnet18", seed=1).channels(lce_friendly=True))


def test_plot_writes_a_real_png(tmp_path):
    import matplotlib.image as mpimg

    path = tmp_path / "cells.png"
    Genotype.random("BINARY_OPS", seed=0).plot(path)
    image = mpimg.imread(path)
    assert path.stat().st_size > 10_000 and image.shape[0] > 200 and image.std() > 0.05


def test_one_plot_function_draws_cell_and_width_genotypes(tmp_path):
    import matplotlib.image as mpimg

    from bnas_tf.space.plots import plot_genotype

    cells, widths = tmp_path / "cells.png", tmp_path / "widths.png"
    plot_genotype(Genotype.random("BINARY_OPS", seed=0), cells)
    plot_genotype(WidthGenotype.random("vgg_small", seed=0), widths, width_multiplier=0.5)
    cell_image, width_image = mpimg.imread(cells), mpimg.imread(widths)
    assert cell_image.shape != width_image.shape  # two cells side by side vs one bar chart
    assert width_image.std() > 0.05
