"""BNAS with PCNN binarization, W1/A32 (SPEC P1 Algorithm 1 with the learnable amplitude of P1 Eq. 2-4).

The same search as :mod:`recipes.bnas_xnor` (SPEC P1 numbers), but every
binary kernel is Â ⊙ sign(W) with a learnable amplitude Â and the amplitude
loss L_Â = θ/2 Σ ||W − Â ⊙ sign(W)||² added to the task loss
(``binarization_scheme="pcnn"``).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_CELLS, PruningRecipe


@dataclasses.dataclass(frozen=True)
class BnasPcnn(PruningRecipe):
    """P1, W1/A32 with PCNN's learnable amplitude."""

    name: ClassVar[str] = "bnas_pcnn"
    paper: ClassVar[str] = "SPEC P1 (Chen et al., BNAS): operation pruning, PCNN W1/A32"

    binarization: str = "W1/A32"
    binarization_scheme: str = "pcnn"
    search_batch_size: int = 128
    partial_channels: int = 2
    alpha_learning_rate: float = 0.01
    repetitions: int = 3
    warmup_epochs: int = 5
    warmup_weights_only: int = 3
    finetune_epochs: int = 1
    tflite_weights: str = "int8"  # W1/A32 runs as float CONV_2D in LCE: int8 storage is 4x smaller, exact for ±scale


RECIPE = BnasPcnn
QUICK = dict(QUICK_CELLS, repetitions=2, warmup_epochs=1, warmup_weights_only=1, finetune_epochs=1)
