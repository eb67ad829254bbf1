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
#: The default `bnas-tf run`: a search with signal at CPU size, chosen by measurement on the embedded digits.
#: Four ops of P2's binary-friendly set with Zeroise (random genotypes of it pay for their zeros and pools),
#: 3 nodes, a W1/A32 proxy child searched 40 steps an epoch (W1/A1 paths score near chance after one short
#: epoch and favour parameter-free ops: 91.6% test with a direct 1-bit search against 95.5% with the proxy, seed
#: 1, 20 epochs), retrained W1/A1 at 3 cells x 32 channels with inter-cell skips for 30 epochs; two random
#: genotypes, stacked binary convs and P2's cell are retrained beside it (`--set baselines=0` skips them). No
#: kernel-level CP loss: at the quick schedule it cost 25 points of test accuracy (benchmarks/README.md).
QUICK = dict(
    QUICK_CELLS,
    repetitions=2,
    kernel_loss=False,
    op_set=("conv_3x3", "dilated_conv_3x3", "max_pool_3x3", "zero"),
    nodes=3,
    search_channels=16,
    search_steps_per_epoch=40,
    search_binarization="W1/A32",
    channels=32,
    inter_cell_skip=True,
    train_epochs=30,
    baselines=2,
)
