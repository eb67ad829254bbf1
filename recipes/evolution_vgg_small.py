"""Evolutionary width search on VGG-small, W1/A1 (SPEC P3; searched A 92.17% at 11.3M FLOPs on CIFAR-10).

From SPEC P3: one ratio per layer from {0.25, 0.5, 1, 2, 3, 4}, fitness
max(Acc − λ FLOPs / FLOPs(1x), 0) with λ = 4, 50 generations x 32
individuals, 10 epochs each, candidates start from the first channels of a
uniform-4x net trained once for 150 epochs (P3's "Initialization"); the best is retrained from scratch for 200
epochs at lr 0.1, x0.1 at epochs 60/120/180. Batch size, weight decay and
augmentation are not in SPEC: batch 128, crop + flip, no cutout.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_DATA, EvolutionRecipe


@dataclasses.dataclass(frozen=True)
class EvolutionVggSmall(EvolutionRecipe):
    """P3, W1/A1 VGG-small."""

    name: ClassVar[str] = "evolution_vgg_small"
    paper: ClassVar[str] = "SPEC P3 (Shen et al.): evolutionary width search, VGG-small W1/A1"

    binarization: str = "W1/A1"
    # P3 Eq. 1: DoReFa activations round(clip(x, 0, 1)). Larq Compute Engine runs them as float ops and a float
    # CONV_2D (no binary kernel, no size saving); binarization_scheme=xnor gives sign activations for LCE.
    binarization_scheme: str = "dorefa"
    backbone: str = "vgg_small"
    population_size: int = 32
    generations: int = 50
    epochs_per_candidate: int = 10
    flops_penalty: float = 4.0
    initial_weights: str | None = "uniform4x"
    initial_epochs: int | None = 150  # P3 §4: "the model uniformly widened by 4x ... with 150 epochs"
    search_batch_size: int = 128
    search_learning_rate: float = 0.1
    train_batch_size: int = 128
    train_epochs: int = 200
    train_learning_rate: float = 0.1
    lr_schedule: str = "step"
    lr_milestones: tuple[int, ...] = (60, 120, 180)
    lr_decay: float = 0.1
    cutout: int = 0


RECIPE = EvolutionVggSmall
#: 1/8 of VGG-small's widths (16..64 base channels), 2 generations of 4, 2 epochs of 40 steps per candidate;
#: P3's lam = 4 on the accuracy in percent (SPEC P3 Eq. 4).
QUICK = dict(
    QUICK_DATA,
    width_multiplier=0.125,
    population_size=4,
    generations=2,
    epochs_per_candidate=2,
    search_steps_per_epoch=40,
    initial_weights=None,
    search_learning_rate=0.2,
    lr_schedule="cosine",
    lr_milestones=(),
)
