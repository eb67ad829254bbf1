"""Binary differentiable search with diversity and Zeroise, W1/A1 (SPEC P2; BNAS-A 92.70% on CIFAR-10).

From SPEC P2: the binary-friendly op set (Table 3, Zeroise included), 8-cell /
16-channel search network with inter-cell skip connections, 50 epochs of
first-order DARTS at batch 64, SGD momentum 0.9, lr 0.025 cosine, weight
decay 3e-4, diversity L = L_S − λ H(α) e^(−t/τ) with λ = 1, τ = 7.7, Zeroise
rule γ = 3 (P2's code default); evaluation network BNAS-A, 20 cells / 36
channels, inter-cell skips kept. Retraining as P2 §5 (CIFAR-10): 600 epochs,
batch 256, SGD momentum 0.9, weight decay 3e-6, one-cycle learning rate
between 5e-2 and 4e-4; as P2's code (``train.py``): no auxiliary head, no
cutout, no gradient clipping (its drop-path 0.2 is not offered).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.base import QUICK_CELLS, DifferentiableRecipe


@dataclasses.dataclass(frozen=True)
class BinaryDarts(DifferentiableRecipe):
    """P2, W1/A1, DARTS with the diversity regulariser and the Zeroise rule."""

    name: ClassVar[str] = "binary_darts"
    paper: ClassVar[str] = "SPEC P2 (Singh, Kim, Choi, BNAS): differentiable search with diversity and Zeroise, W1/A1"

    binarization: str = "W1/A1"
    op_set: str | tuple[str, ...] = "BINARY_OPS"
    search_cells: int = 8
    search_channels: int = 16
    inter_cell_skip: bool = True
    search_batch_size: int = 64
    search_weight_decay: float = 3e-4
    search_epochs: int = 50
    diversity_lambda: float = 1.0
    diversity_tau: float = 7.7
    gamma: float = 3.0
    # --- retraining (P2 §5; P2's code)
    train_epochs: int = 600
    train_batch_size: int = 256
    train_weight_decay: float = 3e-6
    lr_schedule: str = "one_cycle"
    train_learning_rate: float = 5e-2
    lr_min: float = 4e-4
    auxiliary: bool = False
    cutout: int = 0
    gradient_clip: float = 0.0


RECIPE = BinaryDarts
#: Zeroise stays in the quick op set: the Zeroise rule is what this recipe is about. α lr 0.01 (DARTS: 3e-4)
#: so that α moves visibly in 3 epochs. The retraining keeps the schedule the quick profiles were measured with
#: (cosine, weight decay 3e-4, auxiliary head, clipping at 5).
QUICK = dict(
    QUICK_CELLS,
    lr_schedule="cosine",
    lr_min=0.0,
    train_weight_decay=3e-4,
    auxiliary=True,
    gradient_clip=5.0,
    op_set=("zero", "conv_3x3", "max_pool_3x3"),
    search_epochs=3,
    inter_cell_skip=True,
    alpha_learning_rate=0.01,
)
