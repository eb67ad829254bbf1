"""CP-NAS: Child-Parent search for 1-bit CNNs, W1/A1 (SPEC P4 Algorithm 1; 95.27% on CIFAR-10).

From SPEC P4: a binarized child and a full-precision parent share each sampled
architecture; z = A_C + β (A_P − A_C) with β = 2 (CIFAR), indicator
e = softmax(mean z) over the edge, T = 3, K = 8 DARTS ops (105 epochs), 6 search
cells with reductions "in the second and the fourth" (cells 2 and 4 counting from 1); search
data 50% of train for weights, 5% for evaluation, batch 512, SGD lr 0.025
cosine, momentum 0.9, weight decay 5e-4; evaluation network 10 cells / 56
channels (P4's smallest; 72 and 112 are the others).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_CELLS, ChildParentRecipe


@dataclasses.dataclass(frozen=True)
class Cpnas(ChildParentRecipe):
    """P4, 1-bit child (W1/A1) scored against its full-precision parent."""

    name: ClassVar[str] = "cpnas"
    paper: ClassVar[str] = "SPEC P4 (Zhuo et al., CP-NAS): Child-Parent search, 1-bit W1/A1"

    binarization: str = "W1/A1"
    search_batch_size: int = 512
    search_reduction_cells: tuple[int, ...] | None = (1, 3)  # "the second and the fourth" of 6 cells
    repetitions: int = 3
    beta: float = 2.0
    cells: int = 10
    channels: int = 56


RECIPE = Cpnas
#: The quick profile trains without the kernel-level CP loss: on the default `bnas-tf run` (seed 0, digits) it
#: cost 26 points of test accuracy (58.8% with, 85.2% without) at the quick schedule's few epochs.
QUICK = dict(QUICK_CELLS, repetitions=2, kernel_loss=False)
