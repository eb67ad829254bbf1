"""Deployment-aware runs from the command line: a budgeted search's report, and published cells in `bnas-tf train`."""

import json
import os

import pytest
from test_run_command import _main, _set

from bnas_tf import recipes
from bnas_tf.pipeline import search
from bnas_tf.space import published


def test_search_with_a_size_budget_writes_the_pareto_front_and_rejections(tmp_path):
    name = "cpnas"
    run_dir = str(tmp_path / "search")
    # conv_3x3 everywhere is larger than identity everywhere at toy size; (17.2 kB vs 20.9 kB): 19 kB sits between them
    status, out, err = _main(
        [
            "search",
            "--recipe",
            name,
            *_set(name, "deploy_budget=19000", "repetitions=2", "inter_cell_skip=false"),
            "--output",
            run_dir,
            "--quiet",
        ]
    )
    assert status == 0, err
    log = json.load(open(os.path.join(run_dir, "search_log.json")))
    assert log["deployment"]["budget"] == 19000 and log["deployment"]["cost"] == "size_bytes"
    network = log["deployment"]["network"]  # the W1/A1 network the W1/A32 proxy search stands for
    assert network["binarization"]["activation_bits"] == 1
    assert {key: network[key] for key in ("cells", "channels", "reduction_cells")} == {
        "cells": 2,
        "channels": 8,
        "reduction_cells": [1],
    }
    sizes = [t["metrics"]["deploy_cost"] for t in log["trials"]]
    rejected = [t for t in log["trials"] if "over_budget" in t["metrics"]]
    assert all(t["status"] == "FAILED" and t["metrics"]["deploy_cost"] > 19000 for t in rejected)
    assert all(t["metrics"]["deploy_cost"] <= 19000 for t in log["trials"] if t["status"] == "COMPLETED")
    assert log["deploy_pareto"] and len(sizes) == len(log["trials"])
    _main(["report", run_dir])
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "Deployment objective: `size_bytes` (budget 19,000)" in report and "Pareto front" in report


def test_recipe_deploy_settings_are_checked():
    with pytest.raises(ValueError, match="deploy_cost must be one of size_bytes"):
        recipes.get("cpnas", "quick", {"deploy_cost": "latency"})
    with pytest.raises(ValueError, match="deploy_budget must be positive"):
        recipes.get("cpnas", "quick", {"deploy_budget": -1.0})
    assert search.deployment_objective(recipes.get("cpnas", "quick")) is None
    objective = search.deployment_objective(
        recipes.get("cpnas", "quick", {"deploy_penalty": 0.5, "deploy_cost": "float_macs"})
    )
    assert objective.penalty == 0.5 and objective.cost == "float_macs" and objective.network["cells"] == 3


def test_train_takes_a_published_genotype_by_name(tmp_path):
    train_dir = str(tmp_path / "train")
    status, out, err = _main(
        [
            "train",
            "--genotype",
            "p2_bnas_cifar10",
            "--recipe",
            "binary_darts",
            "--epochs",
            "1",
            *_set("binary_darts"),
            "--output",
            train_dir,
            "--quiet",
        ]
    )
    assert status == 0, err
    saved = json.load(open(os.path.join(train_dir, "genotype.json")))
    assert saved["normal"] == [list(edge) for edge in published.P2_BNAS_CIFAR10.normal]
    status, _, err = _main(
        ["train", "--genotype", "p2_nope", "--recipe", "binary_darts", "--output", str(tmp_path / "bad")]
    )
    assert status != 0 and "neither a published genotype" in err and "p2_bnas_cifar10" in err


def test_trial_lines_show_the_reason_not_the_traceback():
    from types import SimpleNamespace

    from bnas_tf.pipeline.search import trial_line

    trial = SimpleNamespace(
        trial_id="07",
        status="FAILED",
        hyperparameters=SimpleNamespace(values={"phase": "sample"}),
        message="Traceback (most recent call last):\n  File ...\nFailedTrialError: [1.0] is over "
        "the deployment budget: float_macs 9 > budget 5",
    )
    line = trial_line(trial, {"deploy_cost": 9.0}, 1.5)
    assert line.endswith("FAILED: FailedTrialError: [1.0] is over the deployment budget: float_macs 9 > budget 5")
    assert "Traceback" not in line and "\n" not in line
