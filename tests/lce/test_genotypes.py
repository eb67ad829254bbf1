"""bnas_tf.space.published: the published P2 cells as library data."""

import json
from importlib import resources

import pytest

import bnas_tf
from bnas_tf.space import ops, published
from bnas_tf.space.genotype import Genotype


def test_names_and_module_constants():
    assert published.names() == ("p2_bnas_cifar10", "p2_bnas_imagenet")
    assert published.get("p2_bnas_cifar10") is published.P2_BNAS_CIFAR10
    assert published.get(" P2_BNAS_ImageNet ") is published.P2_BNAS_IMAGENET


@pytest.mark.parametrize("name", ["p2_bnas_cifar10", "p2_bnas_imagenet"])
def test_published_cells_are_mapped_to_our_op_names(name):
    record = published.info(name)
    genotype = record.genotype
    assert isinstance(genotype, Genotype)
    assert genotype.name == name and genotype.op_set == "BINARY_OPS"
    source = json.loads((resources.files("bnas_tf.space") / "published_cells" / f"{name}.json").read_text())
    for cell in ("normal", "reduce"):
        expected = tuple((ops.P2_OP_NAMES[op], node) for op, node in source[cell])
        assert getattr(genotype, cell) == expected
        assert getattr(record, f"source_{cell}") == tuple(tuple(edge) for edge in source[cell])
    assert record.source == source["source"] and record.paper == source["paper"]
    assert dict(record.trained_as) == json.loads(json.dumps(source["trained_as"]))
    assert Genotype.from_json(genotype.to_json()) == genotype  # exact round trip, metadata kept apart


def test_paper_settings_are_readable():
    assert published.info("p2_bnas_cifar10").trained_as["BNAS-A"]["channels"] == 36
    with pytest.raises(TypeError):
        published.info("p2_bnas_cifar10").trained_as["BNAS-A"]["cells"] = 8  # read-only library data


def test_published_genotype_builds():
    model = bnas_tf.build_network(
        published.P2_BNAS_IMAGENET, cells=2, channels=8, input_shape=(16, 16, 1), binarization="W1/A1"
    )
    assert model.output_shape == (None, 10)


def test_unknown_name_lists_the_published_ones():
    with pytest.raises(ValueError, match="p2_bnas_cifar10, p2_bnas_imagenet"):
        published.get("bnas_a")


def test_from_dict_validates():
    good = {
        "name": "x",
        "op_set": "BINARY_OPS",
        "normal": [["bin_conv_3x3", 0], ["none", 1]] * 4,
        "reduce": [["max_pool_3x3", 0], ["none", 1]] * 4,
        "paper": "p",
    }
    assert published.from_dict(good).genotype.normal[0] == ("conv_3x3", 0)
    with pytest.raises(ValueError, match="unknown op 'bin_sep_conv'"):
        published.from_dict({**good, "normal": [["bin_sep_conv", 0], ["none", 1]] * 4})
    with pytest.raises(ValueError, match="'name'"):
        published.from_dict({k: v for k, v in good.items() if k != "name"})
    with pytest.raises(ValueError, match="missing 'reduce'"):
        published.from_dict({k: v for k, v in good.items() if k != "reduce"})
