"""Settings are checked before any work: a recipe refuses bad settings when it is made, ``bnas-tf run`` checks
them against the loaded data, and a refused command leaves no run folder (docs/errors.md, "Recipe settings")."""

import os
import re

import numpy as np
import pytest

from bnas_tf import data, recipes
from bnas_tf.pipeline import cli, run

GENOTYPE_ARGS = ["--genotype", "p2_bnas_cifar10"]


@pytest.mark.parametrize("command", ["run", "search", "train"])
def test_every_command_refuses_an_evaluation_network_setting_before_writing(command, tmp_path, capsys):
    extra = GENOTYPE_ARGS if command == "train" else []
    argv = [command, *extra, "--set", "reduction_cells=5", "-o", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error == f"bnas-tf {command}: error: reduction_cells must be distinct cell indices in 0..2 (cells=3), got [5]"
    )
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("cpnas", {"search_reduction_cells": (0, 0)}, "search_reduction_cells must be distinct cell indices"),
        ("cpnas", {"channels": 9}, "channels must be even (got 9)"),
        ("cpnas", {"lce_friendly": True, "op_set": ("sep_conv_3x3", "identity")}, "ops LCE does not run binary"),
        ("cpnas", {"lr_milestones": (0, 5)}, "lr_milestones must be epochs >= 1 (got [0, 5])"),
        ("evolution_vgg_small", {"image_size": 4}, "4x4 images are too small for the vgg_small backbone's 3 halvings"),
        ("evolution_vgg_small", {"initial_weights": "random"}, "initial_weights must be uniform4x or none"),
    ],
)
def test_recipes_refuse_settings_that_used_to_fail_mid_run(name, settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        recipes.get(name, "quick", settings)


def test_one_op_name_is_a_one_op_set_and_a_list_still_works():
    with pytest.raises(ValueError, match=r"at least 2 ops to search among \(got \['identity'\]\)"):
        recipes.get("cpnas", "quick", ["op_set=identity"])
    assert recipes.get("cpnas", "quick", ["op_set=identity,conv_3x3"]).op_set == ("identity", "conv_3x3")


def test_run_recipe_checks_the_search_data_before_writing(tmp_path):
    recipe = recipes.get("cpnas", "quick", ["search_cells=4", "search_reduction_cells=0,1,2,3"])
    x = np.zeros((40, 8, 8), np.uint8)  # 8x8 images: 4 halvings need 16x16
    bundle = data.from_arrays(x, np.arange(40) % 2, search_split=True)
    with pytest.raises(ValueError, match=r"^8x8 images are too small for the search network's 4 halvings"):
        run.run_recipe(recipe, str(tmp_path / "run"), search_bundle=bundle, verbose=0)
    assert not os.path.exists(tmp_path / "run")


def test_search_command_checks_the_search_data_before_writing(tmp_path, monkeypatch):
    from bnas_tf.pipeline import search
    from bnas_tf.pipeline.cli import build_parser

    x = np.zeros((40, 8, 8), np.uint8)  # 8x8 images: 4 halvings need 16x16
    monkeypatch.setattr(search, "load_search_data", lambda recipe: data.from_arrays(x, np.arange(40) % 2))
    args = build_parser().parse_args(
        ["search", "--set", "search_cells=4", "--set", "search_reduction_cells=0,1,2,3", "-o", str(tmp_path / "run")]
    )
    with pytest.raises(ValueError, match=r"^8x8 images are too small for the search network's 4 halvings"):
        search.run(args)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize(
    "tuner,settings,message",
    [
        ("OperationPruning", {"delta": float("nan")}, "delta must be a finite number >= 0"),
        ("ChildParent", {"beta": float("inf")}, "beta must be a finite number >= 0"),
        ("ChildParent", {"learning_rate": -0.1}, "learning_rate must be a finite number > 0"),
        ("OperationPruning", {"momentum": float("nan")}, "momentum must be a finite number >= 0"),
        ("OperationPruning", {"alpha_learning_rate": -1.0}, "alpha_learning_rate must be a finite number >= 0"),
    ],
)
def test_tuners_refuse_bad_numbers_before_any_training(tuner, settings, message, tmp_path):
    from bnas_tf import tuners
    from bnas_tf.space.supernet import CellSpace

    space = CellSpace(op_set=("conv_3x3", "identity"), cells=2, channels=4, nodes=2, reduction_cells=(1,))
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(tuners, tuner)(space, directory=str(tmp_path), project_name="p", **settings)
    assert not os.listdir(tmp_path)
