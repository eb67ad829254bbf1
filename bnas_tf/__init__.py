"""bnas-tf: binarized neural architecture search for Keras, on Larq, KerasTuner and Larq Compute Engine.

The package is layered, lowest first (a module imports only from its own layer or lower ones):

- ``bnas_tf`` itself: small helpers (atomic files, argument checks, determinism, the stack check, native log quieting);
- :mod:`bnas_tf.space` (quantizers, ops, genotypes, networks, supernet, losses) and :mod:`bnas_tf.data`;
- :mod:`bnas_tf.deploy`: costs and what Larq Compute Engine runs as binary;
- :mod:`bnas_tf.tuners` (the search algorithms) and :mod:`bnas_tf.convert` (LCE export);
- :mod:`bnas_tf.face`: face verification on searched networks;
- :mod:`bnas_tf.recipes`: the papers' experiments as settings;
- :mod:`bnas_tf.pipeline`: the ``bnas-tf`` command line and the run orchestration.

The names below load on first use, so ``bnas-tf --help`` runs without TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access)
_PUBLIC = {
    "Binarization": "bnas_tf.space.quantizers",
    "CellSpace": "bnas_tf.space.supernet",
    "Genotype": "bnas_tf.space.genotype",
    "WidthGenotype": "bnas_tf.space.genotype",
    "build_network": "bnas_tf.space.networks",
    "build_width_network": "bnas_tf.space.networks",
    "enable_determinism": "bnas_tf.determinism",
}
_SUBMODULES = {
    "ops": "bnas_tf.space.ops",
    "quantizers": "bnas_tf.space.quantizers",
    "published": "bnas_tf.space.published",
}

__all__ = sorted([*_PUBLIC, *_SUBMODULES])


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'bnas_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
