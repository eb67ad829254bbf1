"""Import-time check of the pinned stack: Larq needs Keras 2 and KerasTuner picks Keras 3 when it is installed."""
from __future__ import annotations


def check_stack() -> None:
    import tensorflow as tf

    major, minor = (int(p) for p in tf.__version__.split(".")[:2])
    if (major, minor) >= (2, 16):
        raise ImportError(
            f"bnas-tf needs TensorFlow 2.15 with Keras 2 (found TensorFlow {tf.__version__}, whose Keras 3 breaks larq "
            f"and keras-tuner together); install the pinned stack: pip install 'tensorflow==2.15.1' 'larq==0.14.0' "
            f"'keras-tuner==1.4.8' 'larq-compute-engine==0.16.0'"
        )
    import keras

    if not keras.__version__.startswith("2."):
        raise ImportError(f"bnas-tf needs Keras 2 (found Keras {keras.__version__}); install tensorflow==2.15.1")
