"""bnas-tf run's baselines: random genotypes of the searched space, stacked binary convs and P2's cell, each
retrained with the winner's schedule and shown beside it in report.md."""

import json

import pytest
from toysize import toy_overrides

from bnas_tf import Genotype, recipes
from bnas_tf.pipeline import baselines
from bnas_tf.pipeline.run import run_recipe


def test_random_baselines_come_from_the_winners_space():
    recipe = recipes.get("cpnas", "quick", {"baselines": 3, "seed": 5})
    winner = Genotype.random(["conv_3x3", "max_pool_3x3", "identity"], seed=0, nodes=2, all_edges=True)
    randoms = baselines.random_genotypes(recipe, winner)
    assert [g.name for g in randoms] == ["random_seed6", "random_seed7", "random_seed8"]
    for genotype in randoms:
        assert genotype.nodes == 2 and len(genotype.normal) == len(winner.normal) == 5
        assert {op for op, _ in genotype.normal + genotype.reduce} <= {"conv_3x3", "max_pool_3x3", "identity"}
    two_a_node = Genotype.random("BINARY_OPS", seed=0, nodes=3, all_edges=False)
    assert all(len(g.normal) == 6 for g in baselines.random_genotypes(recipe, two_a_node))


def test_hand_designed_baseline_matches_the_winners_binary_macs():
    import numpy as np

    from bnas_tf.data import from_arrays
    from bnas_tf.deploy import costs

    recipe = recipes.get("cpnas", "quick", {"baselines": 0})
    bundle = from_arrays(np.zeros((40, 16, 16, 1), "float32"), np.arange(40) % 10, num_classes=10)
    target = costs.profile(baselines.hand_designed(recipe, bundle, 0.25))["binary_macs"]
    multiplier = baselines.hand_multiplier(recipe, bundle, target)
    assert multiplier == 0.25


def test_report_shows_the_winner_beside_its_baselines(tmp_path):
    from bnas_tf.files import atomic_write_json
    from bnas_tf.pipeline.report import write_report

    row = {"binary_macs": 1000, "float_macs": 200, "tflite_bytes": 4096, "seconds": 3.0}
    atomic_write_json(
        str(tmp_path / "metrics.json"),
        {
            "recipe": "cpnas",
            "keras": {"val_accuracy": 0.9, "test_accuracy": 0.95},
            "costs": {
                "binary_params": 10,
                "float_params": 5,
                "memory_bits": 170,
                "binary_macs": 1200,
                "float_macs": 300,
                "flops": 318.75,
                "memory_saving": 3.0,
                "speedup": 4.0,
            },
            "size": {"tflite_bytes": 5120, "keras_bytes": 9000},
            "baselines": {
                "rows": [
                    dict(row, name="random genotype (seed 1)", kind="random", test_accuracy=0.90),
                    dict(row, name="random genotype (seed 2)", kind="random", test_accuracy=0.80),
                    dict(row, name="stacked binary 3x3 convs", kind="hand", test_accuracy=0.93),
                ],
                "random_mean": 0.85,
                "seconds": 42.0,
            },
        },
    )
    report = (tmp_path / "report.md").read_text() if write_report(str(tmp_path)) else ""
    assert "## Baselines" in report
    assert "| **the searched winner** | **95.00%** | 1,200 | 300 | 5.0 KB |" in report
    assert "| stacked binary 3x3 convs | 93.00% | 1,000 | 200 | 4.0 KB |" in report
    assert "The search beat the mean of the random genotypes (85.00%): +10.00 points" in report
    assert "baselines 42 s" in report


def test_run_trains_and_records_every_baseline(tmp_path):
    import bnas_tf
    from bnas_tf.pipeline.train import load_training_data

    recipe = recipes.get("cpnas", "quick", toy_overrides("cpnas") + ["baselines=1"])
    bundle = load_training_data(recipe)
    winner = Genotype.random(["conv_3x3", "identity"], seed=0, nodes=2, all_edges=True)
    model = bnas_tf.build_network(winner, cells=2, channels=8, input_shape=bundle.input_shape)
    record = baselines.run_baselines(recipe, winner, model, str(tmp_path), bundle, verbose=0)
    rows = record["rows"]
    assert [row["kind"] for row in rows] == ["random", "published", "hand"]
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["tflite_bytes"] > 0 and row["binary_macs"] > 0
    assert record["random_mean"] == rows[0]["test_accuracy"]
    assert json.loads((tmp_path / "metrics.json").read_text())["baselines"]["rows"] == rows
    off = recipes.get("cpnas", "quick", {"baselines": 0})
    assert baselines.run_baselines(off, winner, model, str(tmp_path), bundle) == {}


@pytest.mark.slow
def test_run_writes_the_baselines_table(tmp_path):
    recipe = recipes.get("cpnas", "quick", toy_overrides("cpnas") + ["baselines=1"])
    metrics = run_recipe(recipe, str(tmp_path), verbose=0)
    assert len(metrics["baselines"]["rows"]) == 3
    report = (tmp_path / "report.md").read_text()
    assert "## Baselines" in report and "p2_bnas_cifar10 (P2)" in report
