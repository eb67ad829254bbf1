"""Recipes are data: the registry, both profiles of every recipe, the paper numbers, and --set parsing."""

import dataclasses

import pytest

from bnas_tf import recipes
from bnas_tf.recipes import base

#: Paper datasets other than CIFAR-10: P1's face experiment trains on CASIA-WebFace (an image folder).
PAPER_DATASETS = {"bnas_face": "data/CASIA-WebFace"}


def test_registry_lists_the_paper_experiments_with_the_default_first():
    assert set(recipes.names()) == {
        "bnas_xnor",
        "bnas_pcnn",
        "bnas_1bit_ucb",
        "cpnas",
        "binary_darts",
        "evolution_vgg_small",
        "bnas_face",
    }
    assert recipes.names()[0] == recipes.DEFAULT_RECIPE


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_has_a_paper_and_a_smaller_quick_profile(name):
    paper, quick = recipes.get(name, "paper"), recipes.get(name, "quick")
    assert dataclasses.is_dataclass(paper) and type(paper) is type(quick)
    assert quick.dataset == "digits" and paper.dataset == PAPER_DATASETS.get(name, "cifar10")
    assert quick.train_epochs < paper.train_epochs
    assert quick.name == name and quick.strategy in (
        "operation_pruning",
        "child_parent",
        "differentiable",
        "evolution",
        "face_operation_pruning",
    )
    assert recipes.differences(name)  # the quick profile is data: overrides of the paper's fields
    if isinstance(quick, base.CellRecipe):
        assert len(quick.op_set) <= 4 and quick.search_cells <= 3 and quick.nodes <= 3
        assert quick.search_channels <= 16 and quick.channels <= 32 and quick.cells <= 3


def test_paper_profiles_carry_the_spec_numbers():
    cpnas = recipes.get("cpnas", "paper")
    assert (cpnas.beta, cpnas.repetitions, cpnas.binarization, cpnas.search_batch_size) == (2.0, 3, "W1/A1", 512)
    assert (cpnas.search_cells, cpnas.search_channels, cpnas.cells, cpnas.channels) == (6, 16, 10, 56)
    ucb = recipes.get("bnas_1bit_ucb", "paper")
    assert ucb.ucb and ucb.delta == 2.0 and ucb.binarization == "W1/A1"
    xnor, pcnn = recipes.get("bnas_xnor", "paper"), recipes.get("bnas_pcnn", "paper")
    assert (xnor.warmup_epochs, xnor.warmup_weights_only, xnor.finetune_epochs, xnor.partial_channels) == (5, 3, 1, 2)
    assert xnor.binarization_config().scheme == "xnor" and pcnn.binarization_config().scheme == "pcnn"
    assert (xnor.search_weight_decay, xnor.alpha_learning_rate, xnor.cells, xnor.channels) == (5e-4, 0.01, 20, 36)
    darts = recipes.get("binary_darts", "paper")
    assert (darts.diversity_lambda, darts.diversity_tau, darts.gamma, darts.search_epochs) == (1.0, 7.7, 3.0, 50)
    assert darts.op_set == "BINARY_OPS" and darts.inter_cell_skip and darts.search_cells == 8
    evolution = recipes.get("evolution_vgg_small", "paper")
    assert (evolution.population_size, evolution.generations, evolution.epochs_per_candidate) == (32, 50, 10)
    assert evolution.flops_penalty == 4.0 and evolution.lr_milestones == (60, 120, 180)
    assert evolution.initial_weights == "uniform4x" and evolution.train_epochs == 200
    # P3 Eq. 1: DoReFa activations round(clip(x, 0, 1)) and sign(w) * E(|w|) kernels
    binarization = evolution.binarization_config()
    assert binarization.scheme == "dorefa" and type(binarization.input_quantizer()).__name__ == "DoReFa"
    assert cpnas.kernel_loss and cpnas.kernel_loss_lambda == 1e-3  # P4 Eq. 3-4 in search and retraining
    assert not recipes.get("cpnas", "quick").kernel_loss  # measured to hurt at the quick schedule


def test_the_report_says_lce_runs_dorefa_activations_as_float_ops():
    from bnas_tf.pipeline import report

    costs = (
        "binary_params",
        "float_params",
        "memory_bits",
        "binary_macs",
        "float_macs",
        "flops",
        "memory_saving",
        "speedup",
    )
    metrics = {"costs": dict.fromkeys(costs, 1)}
    for scheme, said in (("dorefa", True), ("xnor", False)):
        text = "\n".join(report._costs_section({**metrics, "settings": {"binarization_scheme": scheme}}))
        assert ("DoReFa activations" in text and "float ops" in text) == said


def test_face_paper_profile_carries_p1_face_settings():
    face = recipes.get("bnas_face", "paper")
    assert (face.search_batch_size, face.train_batch_size, face.train_learning_rate, face.train_epochs) == (
        400,
        400,
        0.05,
        100,
    )
    assert (face.embedding_dim, face.margin_scale, face.margin) == (512, 64.0, 0.5)  # ArcFace defaults
    assert face.binarization == "W1/A1" and face.ucb and face.task == "face_verification"
    assert [spec.split("=")[0] for spec in face.verification_pairs] == ["lfw", "cfp_fp", "agedb_30"]
    quick = recipes.get("bnas_face", "quick")
    assert quick.verification_pairs == () and quick.embedding_dim == 128 and quick.verify_samples == 256
    with pytest.raises(ValueError, match="stem must be 'cifar' or 'imagenet'"):
        recipes.get("bnas_face", "quick", ["stem=vgg"])


def test_overrides_are_parsed_by_the_field_types():
    recipe = recipes.get(
        "cpnas",
        "quick",
        [
            "train_epochs=3",
            "beta=0.5",
            "auxiliary=yes",
            "op_set=conv_3x3,identity",
            "search_reduction_cells=none",
            "reduction_cells=1",
            "image_size=none",
            "lr_milestones=2,4",
        ],
    )
    assert recipe.train_epochs == 3 and recipe.beta == 0.5 and recipe.auxiliary is True
    assert recipe.op_set == ("conv_3x3", "identity") and recipe.search_reduction_cells is None
    assert recipe.reduction_cells == (1,) and recipe.image_size is None and recipe.lr_milestones == (2, 4)
    assert recipes.get("cpnas", "quick", ["op_set=BINARY_OPS"]).op_set == "BINARY_OPS"  # a named op set
    python = recipes.get("cpnas", "quick", {"train_epochs": 2, "beta": 1, "op_set": ["conv_3x3", "identity"]})
    assert python.train_epochs == 2 and python.beta == 1.0 and python.op_set == ("conv_3x3", "identity")
    for bad in ({"train_epochs": 2.5}, {"auxiliary": 1}, {"image_size": True}, {"op_set": 3}):
        with pytest.raises(TypeError, match=f"setting '{next(iter(bad))}' takes"):
            recipes.get("cpnas", "quick", bad)


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("train_epoch=3", r"unknown setting 'train_epoch' for recipe 'cpnas'; did you mean train_epochs"),
        ("colour=blue", r"unknown setting 'colour'"),
        ("train_epochs=three", r"setting 'train_epochs' takes int, got 'three'"),
        ("beta=high", r"setting 'beta' takes float"),
        ("auxiliary=maybe", r"setting 'auxiliary' takes true or false"),
        ("lr_milestones=1,x", r"comma-separated list of int"),
        ("train_epochs", r"--set takes key=value"),
        ("train_epochs=0", r"train_epochs must be positive"),
        ("binarization=W2/A2", r"binarization must be one of"),
        ("search_binarization=W2/A2", r"search_binarization must be one of .* or unset"),
        ("lr_schedule=step", r"needs lr_milestones"),
        ("tflite_weights=int8", r"for W1/A32 networks"),
    ],
)
def test_bad_overrides_say_what_is_wrong(assignment, message):
    with pytest.raises(ValueError, match=message):
        recipes.get("cpnas", "quick", [assignment])


def test_unknown_recipe_and_profile():
    with pytest.raises(ValueError, match="unknown recipe 'darts'; known recipes: cpnas"):
        recipes.get("darts")
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        recipes.get("cpnas", "fast")


def test_lce_friendly_reaches_the_search_space():
    from bnas_tf.pipeline import search

    space = search.cell_space(recipes.get("cpnas", "quick", ["lce_friendly=true", "op_set=conv_3x3,max_pool_3x3,zero"]))
    assert space.lce_friendly and space.channels == 32  # rounded up to LCE's 32-channel words
    with pytest.raises(ValueError, match="ops LCE does not run binary"):
        search.cell_space(recipes.get("cpnas", "quick", ["lce_friendly=true", "op_set=sep_conv_3x3,identity"]))


def test_search_binarization_is_a_proxy_for_the_supernet_only():
    """A proxy search (W1/A32 supernet for a W1/A1 network): the tuner's supernet gets it, retraining and the
    deployment costs keep the recipe's binarization; unset, the search uses the recipe's."""
    import types

    from bnas_tf.pipeline import search
    from bnas_tf.space.quantizers import W1A1, W1A32

    bundle = types.SimpleNamespace(num_classes=10)
    proxy = recipes.get("bnas_1bit_ucb", "quick", ["search_binarization=W1/A32"])
    assert proxy.binarization_config() == W1A1
    assert search._supernet_settings(proxy, bundle)["binarization"] == W1A32
    assert proxy.deployed_network_settings()["binarization"] == W1A1.get_config()
    direct = recipes.get("bnas_1bit_ucb", "quick")
    assert search._supernet_settings(direct, bundle)["binarization"] == W1A1
    assert "binarization" not in direct.deployed_network_settings()
    # P1 searches the 1-bit network directly; at digits size the quick profile searches a W1/A32 proxy
    assert recipes.get("bnas_face", "paper").search_binarization is None
    quick = recipes.get("bnas_face", "quick")
    assert quick.search_binarization == "W1/A32" and quick.binarization_config() == W1A1
    assert (quick.repetitions, quick.search_steps_per_epoch) == (3, 80)  # P1's T = 3 (benchmarks/face_vs_random.py)
    assert search._supernet_settings(quick, bundle)["binarization"] == W1A32
