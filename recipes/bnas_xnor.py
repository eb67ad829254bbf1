"""BNAS with XNOR binarization, W1/A32 (SPEC P1 Algorithm 1, CIFAR-10 headline 96.06-96.53%).

From SPEC P1: DARTS op set (K = 8), 6-cell / 16-channel search network (reductions
at the 2nd and 4th cell, counting from 1: P1 and P4 say "the second and the fourth"), PC-DARTS
warm-up of L = 5 epochs (3 weights only), T = 3 repetitions, V = 1 fine-tune
epoch per round, partial channels C = 2, SGD momentum 0.9, lr 0.025 cosine,
weight decay 5e-4, α lr 0.01; evaluation network 20 cells / 36 channels.
P1 uses batch 128 for the warm-up and 400 for pruning; the tuner takes one
dataset, so the search runs at 128. Retraining follows DARTS (recipes.base).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_CELLS, PruningRecipe


@dataclasses.dataclass(frozen=True)
class BnasXnor(PruningRecipe):
    """P1, W1/A32 with XNOR sign + mean-|W| scale."""

    name: ClassVar[str] = "bnas_xnor"
    paper: ClassVar[str] = "SPEC P1 (Chen et al., BNAS): operation pruning, XNOR W1/A32"

    binarization: str = "W1/A32"
    binarization_scheme: str = "xnor"
    search_batch_size: int = 128
    partial_channels: int = 2
    search_reduction_cells: tuple[int, ...] | None = (1, 3)  # "the second and the fourth" of 6 cells
    alpha_learning_rate: float = 0.01
    repetitions: int = 3
    warmup_epochs: int = 5
    warmup_weights_only: int = 3
    finetune_epochs: int = 1
    tflite_weights: str = "int8"  # W1/A32 runs as float CONV_2D in LCE: int8 storage is 4x smaller, exact for ±scale


RECIPE = BnasXnor
#: CPU profile: a 1-epoch warm-up (weights only) and one fine-tune epoch keep every P1 phase in the run;
#: the auxiliary head is on so the quick runs exercise it.
QUICK = dict(QUICK_CELLS, repetitions=2, warmup_epochs=1, warmup_weights_only=1, finetune_epochs=1, auxiliary=True)
