"""The initialisation trick of SPEC P3: start each width candidate from a trained uniform-4x net.

P3 trains the uniform 4x network once and initialises every candidate with
"the first channels of it". Here that means: for each weight of the
candidate (conv kernel ``[kh, kw, c_in, c_out]``, BatchNorm
gamma/beta/mean/variance ``[c]``, PReLU alpha, dense kernel ``[c, classes]``
after global pooling) take the leading slice of the same weight of the 4x
net, ``teacher[:kh, :kw, :c_in, :c_out]``. 4x is the largest ratio in
``WIDTH_RATIOS``, so every candidate fits inside it. Optimizer state is not
inherited: each candidate starts its own SGD.

The trained 4x weights live in one ``.npz`` file in the project directory
(names and arrays in ``model.weights`` order), so a resumed search reuses
them instead of training the 4x net again. :mod:`tuners.evolution` decides
when to train and load; this module only moves arrays.
"""

from __future__ import annotations

import io

import numpy as np

from bnas_tf.files import atomic_write_bytes

#: File name of the trained uniform-4x weights inside the tuner's project directory.
UNIFORM4X_FILE = "uniform4x_weights.npz"


def first_channels(source: np.ndarray, shape) -> np.ndarray:
    """The leading ``shape`` block of ``source``: ``source[:shape[0], :shape[1], ...]``.

    Example:
        >>> first_channels(np.arange(12).reshape(3, 4), (2, 2)).tolist()
        [[0, 1], [4, 5]]
    """
    shape = tuple(int(n) for n in shape)
    if source.ndim != len(shape) or any(n > m for n, m in zip(shape, source.shape)):
        raise ValueError(f"cannot take a {shape} block of a weight of shape {source.shape}")
    return source[tuple(slice(0, n) for n in shape)]


def save_weights(path, model) -> None:
    """Write ``model.weights`` (names and values, in order) to ``path`` as ``.npz``, atomically."""
    arrays = {f"w{i:04d}": w.numpy() for i, w in enumerate(model.weights)}
    names = np.array([w.name for w in model.weights])
    buffer = io.BytesIO()
    np.savez(buffer, names=names, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_weights(path) -> list:
    """``[(name, array), ...]`` saved by :func:`save_weights`."""
    with np.load(path) as data:
        names = [str(n) for n in data["names"]]
        return [(name, data[f"w{i:04d}"]) for i, name in enumerate(names)]


def inherit_first_channels(model, teacher_weights) -> None:
    """Set every weight of ``model`` to the first channels of the matching teacher weight.

    ``teacher_weights`` comes from :func:`load_weights` on a network of the
    same backbone and settings at uniform 4x: the two share layer order and
    weight names and differ only in channel counts.
    """
    weights = model.weights
    if len(weights) != len(teacher_weights):
        raise ValueError(
            f"the uniform-4x weights hold {len(teacher_weights)} arrays but the candidate has {len(weights)}; "
            "they come from a different backbone or binarization: delete "
            f"{UNIFORM4X_FILE} from the project directory to train it again"
        )
    for weight, (name, array) in zip(weights, teacher_weights):
        if weight.name != name:
            raise ValueError(f"candidate weight {weight.name!r} does not match uniform-4x weight {name!r}")
        weight.assign(first_channels(array, weight.shape))
