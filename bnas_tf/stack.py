"""Check of the pinned stack, before TensorFlow, Larq or KerasTuner load: Larq needs Keras 2, and KerasTuner picks
Keras 3 whenever it is installed, so TensorFlow >= 2.16 breaks the pair with errors that do not say why."""

from __future__ import annotations

from importlib import metadata

_TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly")
_INSTALL = (
    "install the pinned stack: pip install 'tensorflow==2.15.1' 'larq==0.14.0' 'keras-tuner==1.4.8' "
    "'larq-compute-engine==0.16.0'"
)


def _installed(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _major_minor(version: str) -> tuple:
    return tuple(int(part) for part in version.split(".")[:2])


def check_stack() -> None:
    """Raise ImportError naming the fix when the installed TensorFlow or Keras cannot run Larq and KerasTuner.

    Reads the installed distributions' versions, so it costs no TensorFlow import.
    """
    tensorflow = _installed(*_TENSORFLOW_DISTRIBUTIONS)
    if tensorflow is not None and _major_minor(tensorflow) >= (2, 16):
        raise ImportError(
            f"bnas-tf needs TensorFlow 2.15 with Keras 2 (found TensorFlow {tensorflow}, whose Keras 3 breaks larq "
            f"and keras-tuner together); {_INSTALL}"
        )
    keras = _installed("keras")
    if keras is not None and not keras.startswith("2."):
        raise ImportError(f"bnas-tf needs Keras 2 (found Keras {keras}); {_INSTALL}")
