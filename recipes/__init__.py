"""The papers' experiments as recipes: ``get("cpnas", "quick", ["train_epochs=3"])`` returns settings (data).

One module per experiment (SPEC P1-P4), each a frozen dataclass whose field
defaults are the paper's numbers (the ``paper`` profile) plus a ``QUICK``
dict of overrides for a CPU-sized run on the embedded digits (the ``quick``
profile). ``bnas-tf run --recipe NAME --profile quick|paper --set key=value``
runs one; ``bnas-tf recipes`` lists them.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing

if typing.TYPE_CHECKING:
    from bnas_tf.recipes.base import Recipe

#: names of bnas_tf.recipes.base read through this package; they load on first use (base needs TensorFlow for
#: Binarization), so the registry below reads without TensorFlow and `bnas-tf --help` can list the recipes
_BASE_NAMES = (
    "CellRecipe",
    "ChildParentRecipe",
    "DifferentiableRecipe",
    "EvolutionRecipe",
    "PruningRecipe",
    "Recipe",
    "apply_overrides",
    "parse_assignment",
)

#: recipe name -> module (each defines RECIPE, the dataclass, and QUICK, the quick profile's overrides)
RECIPES = {
    "cpnas": "bnas_tf.recipes.cpnas",
    "bnas_1bit_ucb": "bnas_tf.recipes.bnas_1bit_ucb",
    "bnas_xnor": "bnas_tf.recipes.bnas_xnor",
    "bnas_pcnn": "bnas_tf.recipes.bnas_pcnn",
    "binary_darts": "bnas_tf.recipes.binary_darts",
    "evolution_vgg_small": "bnas_tf.recipes.evolution_vgg_small",
    "bnas_face": "bnas_tf.recipes.bnas_face",
}
PROFILES = ("quick", "paper")
#: What `bnas-tf run` runs with no arguments. At quick size a 1-bit supernet's paths score near chance after one
#: epoch, so the UCB search is close to random; Child-Parent's full-precision parent gives a real signal
#: (measured on a 2-core machine: cpnas reached 81-88% test accuracy end to end, bnas_1bit_ucb 56-79%).
DEFAULT_RECIPE = "cpnas"
DEFAULT_PROFILE = "quick"

__all__ = [
    "CellRecipe",
    "ChildParentRecipe",
    "DEFAULT_PROFILE",
    "DEFAULT_RECIPE",
    "DifferentiableRecipe",
    "EvolutionRecipe",
    "PROFILES",
    "PruningRecipe",
    "RECIPES",
    "Recipe",
    "apply_overrides",
    "describe",
    "get",
    "names",
    "parse_assignment",
]


def __getattr__(name: str):
    if name in _BASE_NAMES:
        value = getattr(_base(), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bnas_tf.recipes' has no attribute {name!r}")


def _base():
    return importlib.import_module("bnas_tf.recipes.base")


def names() -> list:
    """Every recipe name, the default first."""
    return list(RECIPES)


def _module(name):
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)} (`bnas-tf recipes` lists them)")
    return importlib.import_module(RECIPES[name])


def get(name: str = DEFAULT_RECIPE, profile: str = DEFAULT_PROFILE, overrides: list | dict | None = None) -> Recipe:
    """The settings of recipe ``name`` in ``profile``, with ``overrides`` (``["key=value"]`` or a dict) applied.

    A recipe is a frozen dataclass whose field defaults are the paper's numbers (the ``paper`` profile);
    the ``quick`` profile replaces the fields of the recipe module's ``QUICK`` dict (a CPU-sized run on
    the embedded digits). Overrides are applied last and type-checked against the fields' annotations.

    Args:
        name: a recipe of :data:`RECIPES` (default ``"cpnas"``, :data:`DEFAULT_RECIPE`).
        profile: ``"quick"`` (default) or ``"paper"``.
        overrides: ``["key=value", ...]`` strings (parsed as the field's type, as ``--set`` does) or a
            ``{key: value}`` dict of Python values; None (default) changes nothing.

    Returns:
        The :class:`~bnas_tf.recipes.base.Recipe` (data; ``bnas_tf.pipeline.run.run_recipe`` runs it).

    Raises:
        ValueError: an unknown recipe or profile, an assignment without ``=``, an unknown setting (with
            the closest names), a value that does not parse as the setting's type, or a value the
            recipe's own checks refuse.
        TypeError: a dict value of the wrong type for its setting.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    module = _module(name)
    recipe = module.RECIPE()
    if profile == "quick":
        recipe = dataclasses.replace(recipe, **module.QUICK)
    return _base().apply_overrides(recipe, overrides or [])


def describe(name: str) -> str:
    """First line of the recipe module's docstring."""
    return (_module(name).__doc__ or "").strip().splitlines()[0]


def differences(name: str) -> dict:
    """``{field: (paper value, quick value)}`` for every field the quick profile changes."""
    paper, quick = get(name, "paper").settings(), get(name, "quick").settings()
    return {key: (paper[key], quick[key]) for key in paper if paper[key] != quick[key]}
