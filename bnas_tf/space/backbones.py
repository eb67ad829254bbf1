"""Width-search backbones (SPEC P3): the base channel count of every searchable layer, and the scaled width."""

from __future__ import annotations

import math

BACKBONES = {
    # VGG-small (LQ-Nets / P3): 2x128, 2x256, 2x512 convs, max pool after each pair.
    "vgg_small": (128, 128, 256, 256, 512, 512),
    # ResNet-18: stem, then 4 stages x 2 basic blocks x 2 convs.
    "resnet18": (64,) + (64,) * 4 + (128,) * 4 + (256,) * 4 + (512,) * 4,
}


def scaled_channels(base: int, ratio: float, lce_friendly: bool = False) -> int:
    """Channels of a layer with expansion ``ratio``; rounded up to a multiple of 32 when ``lce_friendly``."""
    channels = max(1, int(round(base * ratio)))
    return int(math.ceil(channels / 32) * 32) if lce_friendly else channels
