"""Each recipe's quick profile, shrunk to toy size, searches end to end through the Python API."""

import json
import os

import pytest
from toysize import TOY, toy_overrides

from bnas_tf import Genotype, WidthGenotype, recipes
from bnas_tf.pipeline import search
from bnas_tf.space.genotype import load_any
from bnas_tf.space.supernet import KINDS


@pytest.mark.parametrize("name", sorted(TOY))
def test_quick_profile_at_toy_size_finds_a_valid_genotype(name, tmp_path):
    recipe = recipes.get(name, "quick", toy_overrides(name))
    result = search.search(recipe, str(tmp_path), verbose=0)
    saved = load_any(str(tmp_path / "genotype.json"))
    assert saved == result.genotype
    log = json.load(open(tmp_path / "search_log.json"))
    assert log["strategy"] == recipe.strategy and log["trials"]
    assert all(t["status"] == "COMPLETED" for t in log["trials"])
    if recipe.strategy == "evolution":
        assert isinstance(saved, WidthGenotype) and saved.backbone == "vgg_small"
        assert len(log["trials"]) == recipe.population_size * recipe.generations
        assert log["pareto"] and list(saved.ratios) in [
            i["ratios"] for g in log["evolution"]["log"] for i in g["individuals"]
        ]
        return
    assert isinstance(saved, Genotype) and saved.nodes == recipe.nodes
    assert {op for kind in KINDS for op, _ in getattr(saved, kind)} <= set(recipe.op_set)
    if recipe.strategy == "differentiable":
        assert len(log["rounds"]) == recipe.search_epochs and len(saved.normal) == 2 * recipe.nodes
    else:
        assert len(log["rounds"]) == len(recipe.op_set) - 1  # one pruning round per abandoned op
        assert saved.keeps_all_edges  # P1/P4 keep every edge, one op each
    metrics = json.load(open(tmp_path / "metrics.json"))
    assert metrics["search"]["strategy"] == recipe.strategy and metrics["search"]["seconds"] > 0
    assert os.listdir(tmp_path / "logs" / "search")  # TensorBoard events of the trials
