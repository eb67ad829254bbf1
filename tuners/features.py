"""Per-path features of a supernet: the pooled features before the classifier of every current path, the
features the face search scores by verification on held-out pairs (SPEC "P1 face recognition", P1 §4.4;
:mod:`bnas_tf.face.tuners`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bnas_tf.space.supernet import Supernet
from bnas_tf.tuners.graph_options import without_graph_optimisation


def path_features(supernet: Supernet, images, batch_size: int = 256) -> np.ndarray:
    """Pooled features (:meth:`Supernet.features`) of every current path for ``images`` (N, H, W, C):
    an array (paths, N, features), inference mode, each path seeing every image."""
    paths = supernet.paths

    def build():
        def features(x):
            return supernet.by_path(supernet.features(x, training=False))

        shape = (None,) + tuple(supernet.input_shape)
        return tf.function(features, autograph=False, input_signature=[tf.TensorSpec(shape, tf.float32)])

    features = supernet.function("features", build)
    images = np.asarray(images, dtype=np.float32)
    if not len(images):
        raise ValueError("no images to compute features of: pass at least one")
    with without_graph_optimisation():  # as the steps run: Grappler would re-optimise every shared function
        chunks = [
            features(np.tile(images[start : start + batch_size], (paths, 1, 1, 1))).numpy()
            for start in range(0, len(images), batch_size)
        ]
    return np.concatenate(chunks, axis=1)
