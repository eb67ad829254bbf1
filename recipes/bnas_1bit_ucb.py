"""BNAS for 1-bit CNNs with the UCB bonus, W1/A1 (SPEC P1 step 2d, Eq. 10; 93.28% on CIFAR-10).

From SPEC P1: no PC-DARTS warm-up (O_smaller = O), s(o) ← s(o) + δ·sqrt(2 ln N / n),
δ = 2, T = 3, one fine-tune epoch per round, DARTS op set, 6-cell / 16-channel
search network (reductions at the 2nd and 4th cell, counting from 1), SGD momentum
0.9, lr 0.025 cosine, weight decay 5e-4; evaluation network 20 cells / 36 channels. Batch 400 as in P1's pruning phase.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_CELLS, PruningRecipe


@dataclasses.dataclass(frozen=True)
class Bnas1bitUcb(PruningRecipe):
    """P1, W1/A1 (PReLU blocks) with the UCB exploration bonus."""

    name: ClassVar[str] = "bnas_1bit_ucb"
    paper: ClassVar[str] = "SPEC P1 (Chen et al., BNAS): operation pruning + UCB, 1-bit W1/A1"

    binarization: str = "W1/A1"
    binarization_scheme: str = "xnor"
    search_batch_size: int = 400
    search_reduction_cells: tuple[int, ...] | None = (1, 3)  # "the second and the fourth" of 6 cells
    ucb: bool = True
    delta: float = 2.0
    warmup_epochs: int = 0
    repetitions: int = 3
    finetune_epochs: int = 1


RECIPE = Bnas1bitUcb
#: No fine-tune epochs between the two rounds (each would trace a mixed-mode graph); 40 steps per sampled
#: epoch, as tracing, not stepping, is what a round costs (measured: the search at 40 took hardly longer than at 20).
QUICK = dict(QUICK_CELLS, repetitions=2, finetune_epochs=0, search_steps_per_epoch=40)
