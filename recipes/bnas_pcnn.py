"""BNAS with PCNN binarization, W1/A32 (SPEC P1 Algorithm 1 with the learnable amplitude of P1 Eq. 2-4).

The same search as :mod:`recipes.bnas_xnor` (SPEC P1 numbers), but every
binary kernel is Â ⊙ sign(W) with a learnable amplitude Â and the amplitude
loss L_Â = θ/2 Σ ||W − Â ⊙ sign(W)||² added to the task loss
(``binarization_scheme="pcnn"``). The amplitude is P1's, one per layer
(``pcnn_amplitude="layer"``: the forward pass uses the mean of the layer's
amplitude matrix); ``--set pcnn_amplitude=channel`` gives PCNN's per-channel one.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from bnas_tf.recipes.bnas_xnor import QUICK as XNOR_QUICK
from bnas_tf.recipes.bnas_xnor import BnasXnor


@dataclasses.dataclass(frozen=True)
class BnasPcnn(BnasXnor):
    """P1, W1/A32 with PCNN's learnable amplitude: the XNOR recipe with another kernel binarization."""

    name: ClassVar[str] = "bnas_pcnn"
    paper: ClassVar[str] = "SPEC P1 (Chen et al., BNAS): operation pruning, PCNN W1/A32"

    binarization_scheme: str = "pcnn"
    pcnn_amplitude: str = "layer"


RECIPE = BnasPcnn
QUICK = dict(XNOR_QUICK, auxiliary=False)
